"""Synthetic offer logs with planted effects: the right benefit per member is known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loyalty_ml.contract.io import Dataset, coerce_table
from loyalty_ml.contract.schema import MEMBERS, OFFERS, ORDERS

ARMS = ("none", "coupon", "shipping")
# Conversion rate by segment and arm position: arm 1 works for "a", arm 2 for "b", none for "c".
RATES = {"a": (0.10, 0.45, 0.12), "b": (0.10, 0.11, 0.50), "c": (0.20, 0.18, 0.19)}
BEST = {"a": 1, "b": 2, "c": 0}  # index of the right arm per segment
REVENUE_PER_CONVERSION = 400.0


def planted_log(
    n: int = 9000, seed: int = 0, nonuniform: bool = True, arms: tuple[str, ...] = ARMS
) -> pd.DataFrame:
    """One offer per member; the logging policy is non-uniform and depends on the segment."""
    rng = np.random.default_rng(seed)
    seg = rng.choice(["a", "b", "c"], size=n)
    noise = rng.normal(size=n)
    if nonuniform:
        probs = {"a": [0.2, 0.2, 0.6], "b": [0.3, 0.5, 0.2], "c": [0.5, 0.25, 0.25]}
    else:
        probs = {s: [1 / 3] * 3 for s in "abc"}
    p = np.array([probs[s] for s in seg])
    u = rng.random(n)[:, None]
    arm_idx = (u > p.cumsum(axis=1)).sum(axis=1)
    arm = np.array(arms, dtype=object)[arm_idx]
    rate = np.array([RATES[s][a] for s, a in zip(seg, arm_idx, strict=True)])
    conv = (rng.random(n) < rate).astype(int)
    return pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(n)],
            "segment": seg,
            "noise": noise,
            "benefit_id": arm,
            "propensity": p[np.arange(n), arm_idx],
            "converted": conv,
            "revenue": conv * REVENUE_PER_CONVERSION,
        }
    )


def planted_dataset(
    n: int = 9000, seed: int = 0, nonuniform: bool = True, arms: tuple[str, ...] = ARMS
) -> Dataset:
    frame = planted_log(n, seed, nonuniform, arms)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    members = pd.DataFrame(
        {
            "member_id": frame["member_id"],
            "joined_at": t0,
            "segment": frame["segment"],
            "noise": frame["noise"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": "o" + frame["member_id"],
            "member_id": frame["member_id"],
            "ordered_at": t0 + pd.Timedelta(days=10),
            "amount": 100.0,
        }
    )
    offers = pd.DataFrame(
        {
            "offer_id": "f" + frame["member_id"],
            "member_id": frame["member_id"],
            "offered_at": t0 + pd.Timedelta(days=30),
            "benefit_id": frame["benefit_id"],
            "propensity": frame["propensity"],
            "converted": frame["converted"],
            "revenue": frame["revenue"],
        }
    )
    return Dataset(
        members=coerce_table(members, MEMBERS),
        orders=coerce_table(orders, ORDERS),
        offers=coerce_table(offers, OFFERS),
        name="planted",
    )
