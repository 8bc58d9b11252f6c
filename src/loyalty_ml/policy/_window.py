"""Vectorised "sum of values per member in a time window" over many (member, time) queries.

Events are sorted once by a packed int64 key (member code in the high bits, seconds in the low
bits); a prefix sum then answers any window ``(lo, hi]`` for millions of queries with two
``searchsorted`` calls. This is what keeps replay and the contact policy O(n log n) without a
Python loop over members.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_SHIFT = 35  # 2**35 s ≈ 1,088 years of seconds per member code
_OFFSET = 1 << 34  # times are stored as seconds + offset so dates before 1970 stay positive
_NS = 1_000_000_000
NO_TIME = np.iinfo(np.int64).min  # marker for a missing time in int64 second arrays


def to_secs(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """UTC timestamps → int64 seconds since the epoch (sub-second parts are floored)."""
    idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).tz_localize(None)
    out = idx.as_unit("ns").asi8 // _NS
    # NaT becomes the "no time" marker rather than a date in 1677.
    return np.where(idx.isna(), NO_TIME, out)


def pack(codes: np.ndarray, secs: np.ndarray) -> np.ndarray:
    return (np.asarray(codes, dtype=np.int64) << _SHIFT) + (np.asarray(secs, np.int64) + _OFFSET)


class KeyedCumsum:
    """Prefix sums of ``values`` ordered by (member code, time)."""

    def __init__(self, codes: np.ndarray, secs: np.ndarray, values: np.ndarray | None = None):
        keys = pack(codes, secs)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        vals = np.ones(len(keys)) if values is None else np.asarray(values, dtype=float)[order]
        self.csum = np.concatenate([[0.0], np.cumsum(vals)])

    def prefix(self, codes: np.ndarray, secs: np.ndarray, inclusive: bool = True) -> np.ndarray:
        """Sum over the member's events with time <= secs (``inclusive``) or < secs."""
        side = "right" if inclusive else "left"
        # Lower bound of the member's block: key of (code, -inf).
        base = np.searchsorted(self.keys, np.asarray(codes, np.int64) << _SHIFT, side="left")
        idx = np.searchsorted(self.keys, pack(codes, secs), side=side)
        return self.csum[idx] - self.csum[base]

    def window(
        self,
        codes: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        lo_inclusive: bool = False,
        hi_inclusive: bool = True,
    ) -> np.ndarray:
        """Sum over events with lo < t <= hi (bounds' inclusivity configurable)."""
        upper = self.prefix(codes, hi, inclusive=hi_inclusive)
        lower = self.prefix(codes, lo, inclusive=not lo_inclusive)
        return upper - lower


class LastValue:
    """The value of each member's latest record at or before (or strictly before) a time."""

    def __init__(self, codes: np.ndarray, secs: np.ndarray, *columns: np.ndarray):
        keys = pack(codes, secs)
        order = np.argsort(keys, kind="stable")  # stable: equal keys keep processing order
        self.keys = keys[order]
        self.columns = [np.asarray(c)[order] for c in columns]

    def lookup(
        self, codes: np.ndarray, secs: np.ndarray, defaults: tuple, inclusive: bool = True
    ) -> list[np.ndarray]:
        codes = np.asarray(codes, np.int64)
        side = "right" if inclusive else "left"
        idx = np.searchsorted(self.keys, pack(codes, secs), side=side) - 1
        base = np.searchsorted(self.keys, codes << _SHIFT, side="left")
        found = idx >= base
        safe = np.where(found, idx, 0)
        out = []
        for col, default in zip(self.columns, defaults, strict=True):
            if len(col) == 0:
                out.append(np.full(len(codes), default, dtype=np.asarray(default).dtype))
                continue
            out.append(np.where(found, col[safe], default))
        return out
