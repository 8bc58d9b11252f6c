"""The ``--as-of`` convention: an inclusive UTC instant; a date alone means 00:00:00 UTC."""

from __future__ import annotations

import pandas as pd

from loyalty_ml.errors import LoyaltyError


def to_utc(value: object) -> pd.Timestamp:
    """Parse a date or timestamp; naive values are UTC, aware values are converted to UTC."""
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise LoyaltyError(f"not a date or timestamp: {value!r}") from exc
    if ts is pd.NaT:
        raise LoyaltyError(f"not a date or timestamp: {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc_series(values: pd.Series) -> pd.Series:
    """Vectorised ``to_utc`` for a column; unparseable values become NaT."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return parsed.astype("datetime64[ns, UTC]")
