"""The simulated period as day indices, with the shop's seasonality and promotion calendar."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from loyalty_ml.simulate.config import SimulatorConfig

NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class Calendar:
    """Day 0 is the first simulated day; ``days`` are simulated, ``horizon`` more are latent only
    (the truth needs intensities after the end to say who would churn)."""

    start: pd.Timestamp  # 00:00 UTC of day 0
    days: int
    horizon: int
    season: np.ndarray  # order-rate factor per day (length days + horizon)
    promo_boost: np.ndarray  # promotion intensity boost per day (0 outside promotions)
    promo_discount: np.ndarray  # promotion discount rate per day
    month: np.ndarray  # 1..12 per day

    @property
    def total(self) -> int:
        return self.days + self.horizon

    @property
    def end_exclusive(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=self.days)

    def day_start(self, day: np.ndarray) -> pd.DatetimeIndex:
        """00:00 UTC of each day index (works for negative indices too)."""
        ns = self.start.value + np.asarray(day, dtype=np.int64) * NS_PER_DAY
        return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")

    def stamps(self, day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """int64 nanoseconds since the epoch for (day index, second of day)."""
        return (
            self.start.value
            + np.asarray(day, dtype=np.int64) * NS_PER_DAY
            + np.asarray(seconds, dtype=np.int64) * 10**9
        )


def build_calendar(cfg: SimulatorConfig) -> Calendar:
    cal = cfg.calendar
    end = pd.Timestamp(cfg.end_date, tz="UTC")
    start = end - pd.Timedelta(days=cfg.days - 1)
    total = cfg.days + cfg.max_horizon_days
    dates = pd.date_range(start, periods=total, freq="D")
    doy = dates.dayofyear.to_numpy()
    season = 1 + cal.seasonal_amplitude * np.cos(2 * np.pi * (doy - cal.seasonal_peak_doy) / 365.25)
    weekend = np.where(dates.dayofweek.to_numpy() >= 5, cal.weekend_factor, 1.0)
    boost = np.zeros(total)
    discount = np.zeros(total)
    years = sorted(set(dates.year))
    for mmdd, length, lift, rate in cal.promotions.values():
        for year in years:
            first = pd.Timestamp(f"{year}-{mmdd}", tz="UTC")
            offset = (first - start).days
            lo, hi = max(offset, 0), min(offset + length, total)
            if lo < hi:
                boost[lo:hi] = np.maximum(boost[lo:hi], lift)
                discount[lo:hi] = np.maximum(discount[lo:hi], rate)
    return Calendar(
        start=start,
        days=cfg.days,
        horizon=cfg.max_horizon_days,
        season=season * weekend,
        promo_boost=boost,
        promo_discount=discount,
        month=dates.month.to_numpy(),
    )
