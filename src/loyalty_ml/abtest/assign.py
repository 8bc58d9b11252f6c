"""Deterministic hash-based assignment of members to variants, and the exposure log.

A member's bucket is ``sha256(salt + ":" + member_id)`` read as a 64-bit fraction in [0, 1): the
same on every machine, process and restart (Python's ``hash()`` is randomised per process, so it
is never used). The salt defaults to the experiment name, so one member lands independently in
different experiments. Arms are laid out on [0, 1) in sorted-name order, so the YAML key order
never changes who gets what.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EXPOSURE_COLUMNS = ["experiment", "variant", "member_id", "exposed_at", "context"]
_SCALE = float(2**64)


def _bucket(salt: str, member_id: object) -> float:
    digest = hashlib.sha256(f"{salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def _layout(splits: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    if not splits or any(w < 0 for w in splits.values()) or sum(splits.values()) <= 0:
        raise ValueError(f"invalid splits {dict(splits)!r}: need non-negative weights, sum > 0")
    names = sorted(splits)
    weights = np.array([float(splits[n]) for n in names])
    edges = np.cumsum(weights / weights.sum())
    edges[-1] = 1.0  # rounding must never leave a bucket past the last arm
    return names, edges


def with_holdout(
    splits: Mapping[str, float], holdout: float = 0.1, control: str = "control"
) -> dict[str, float]:
    """Add a ``control`` arm of share ``holdout`` (others scaled down) unless one exists."""
    if control in splits:
        return dict(splits)
    total = sum(splits.values())
    out = {k: (1 - holdout) * v / total for k, v in splits.items()}
    out[control] = holdout
    return out


def assign_variant(
    experiment: str, member_id: object, splits: Mapping[str, float], salt: str | None = None
) -> str:
    """The variant of one member (stable across processes and restarts)."""
    names, edges = _layout(splits)
    u = _bucket(salt if salt is not None else experiment, member_id)
    return names[int(np.searchsorted(edges, u, side="right"))]


def in_control(experiment: str, member_id: object, share: float, salt: str | None = None) -> bool:
    """Whether a member falls in a holdout of ``share``: the ``control`` arm of the two-arm split
    ``{"control": share, "treatment": 1 - share}`` (``control`` sorts first, so it is the bucket
    range [0, share)). Campaign holdouts use this with the campaign id as the experiment, so
    ``loyalty ab analyze`` reconstructs a campaign's control group with the same hash."""
    if share <= 0:
        return False
    return _bucket(salt if salt is not None else experiment, member_id) < share


def assign_variants(
    experiment: str,
    member_ids: Iterable[object],
    splits: Mapping[str, float],
    salt: str | None = None,
) -> np.ndarray:
    """Vectorised ``assign_variant`` over many members (same answer, element by element)."""
    names, edges = _layout(splits)
    key = salt if salt is not None else experiment
    u = np.fromiter((_bucket(key, m) for m in member_ids), dtype=float)
    idx = np.minimum(np.searchsorted(edges, u, side="right"), len(names) - 1)
    return np.asarray(names, dtype=object)[idx]


def exposure_record(
    experiment: str,
    variant: str,
    member_id: object,
    exposed_at: pd.Timestamp | str | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    stamp = pd.Timestamp(exposed_at) if exposed_at is not None else pd.Timestamp.now(tz="UTC")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return {
        "experiment": experiment,
        "variant": variant,
        "member_id": str(member_id),
        "exposed_at": stamp.tz_convert("UTC").isoformat(),
        "context": json.dumps(dict(context or {}), sort_keys=True, default=str),
    }


def append_exposures(records: Iterable[Mapping[str, str]], path: Path | str) -> Path:
    """Append rows to a CSV exposure log (header on creation). One write per call keeps lines
    whole when several workers append to the same file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    new = not target.exists() or target.stat().st_size == 0
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPOSURE_COLUMNS, lineterminator="\n")
    if new:
        writer.writeheader()
    for row in records:
        writer.writerow({c: row.get(c, "") for c in EXPOSURE_COLUMNS})
    with target.open("a", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())
    return target


def read_exposures(path: Path | str) -> pd.DataFrame:
    """Read an exposure log (.csv or .parquet); member ids are strings."""
    target = Path(path)
    if target.suffix == ".parquet":
        frame = pd.read_parquet(target)
    else:
        frame = pd.read_csv(target, dtype={"member_id": str, "variant": str, "experiment": str})
    missing = {"experiment", "variant", "member_id"} - set(frame.columns)
    if missing:
        from loyalty_ml.errors import ContractError

        raise ContractError(f"{target}: exposure log lacks columns {sorted(missing)}")
    frame["member_id"] = frame["member_id"].astype(str)
    if "exposed_at" in frame:
        frame["exposed_at"] = pd.to_datetime(frame["exposed_at"], utc=True, format="ISO8601")
    return frame


class Assigner:
    """Config-driven assignment for the service: ``assign(experiment, member_id)`` plus
    ``expose(...)`` that returns the variant and appends the exposure."""

    def __init__(self, config: Any = None, log_path: Path | str | None = None) -> None:
        from loyalty_ml.abtest.config import load_ab_config

        self.config = config or load_ab_config()
        self.log_path = Path(log_path) if log_path else self.config.exposures_path()

    def splits(self, experiment: str) -> dict[str, float]:
        spec = self.config.experiments.get(experiment)
        if spec is None:
            raise KeyError(f"unknown experiment {experiment!r}")
        return dict(spec.splits)

    def assign(self, experiment: str, member_id: object) -> str:
        spec = self.config.experiments[experiment]
        return assign_variant(experiment, member_id, spec.splits, spec.salt)

    def expose(
        self, experiment: str, member_id: object, context: Mapping[str, Any] | None = None
    ) -> str:
        variant = self.assign(experiment, member_id)
        append_exposures(
            [exposure_record(experiment, variant, member_id, context=context)], self.log_path
        )
        return variant
