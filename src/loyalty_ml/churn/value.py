"""Value segments (high / mid / low / high_potential) from the expected 12-month spend.

The value model itself is BG/NBD expected transactions x Gamma-Gamma expected spend per
transaction, fitted point-in-time by the feature provider (``value__expected_spend_365d``).
Segment cut-offs are quantiles of the training population, frozen into the model artifact so one
member scores the same alone as in a batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

VALUE_COLUMN = "value__expected_spend_365d"
PAST_COLUMN = "value__past_spend_365d"
SEGMENTS = ("high", "high_potential", "mid", "low")


@dataclass(frozen=True)
class SegmentCuts:
    low_cut: float
    high_cut: float
    potential_ratio: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def fit_segment_cuts(
    value: np.ndarray, low_quantile: float, high_quantile: float, potential_ratio: float
) -> SegmentCuts:
    v = np.asarray(value, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return SegmentCuts(0.0, 0.0, potential_ratio)
    return SegmentCuts(
        float(np.quantile(v, low_quantile)), float(np.quantile(v, high_quantile)), potential_ratio
    )


def assign_segments(value: np.ndarray, past_spend: np.ndarray, cuts: SegmentCuts) -> np.ndarray:
    """high: value >= high cut; high_potential: value >= low cut and >= ratio x past-year spend;
    mid: value >= low cut; low: the rest (and unknown value)."""
    v = np.nan_to_num(np.asarray(value, dtype=float), nan=-np.inf)
    past = np.nan_to_num(np.asarray(past_spend, dtype=float))
    out = np.full(len(v), "low", dtype=object)
    out[v >= cuts.low_cut] = "mid"
    out[(v >= cuts.low_cut) & (v >= cuts.potential_ratio * past) & (v > 0)] = "high_potential"
    out[v >= cuts.high_cut] = "high"
    return out


def risk_bands(p: np.ndarray, thresholds: list[float], labels: list[str]) -> np.ndarray:
    idx = np.searchsorted(
        np.asarray(thresholds, dtype=float), np.asarray(p, dtype=float), side="right"
    )
    return np.asarray(labels, dtype=object)[idx]
