"""Tiny synthetic shops for churn tests (deterministic, a few hundred members)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.contract.io import Dataset

START = pd.Timestamp("2024-01-01", tz="UTC")


def synthetic_shop(n_members: int = 600, days: int = 540, seed: int = 0) -> Dataset:
    """Members with a buying rate and a dropout day; orders are Poisson until dropout."""
    rng = np.random.default_rng(seed)
    join = rng.integers(0, days // 2, n_members)
    rate = rng.gamma(2.0, 1 / 40.0, n_members)  # orders per day
    dropout = join + rng.exponential(250, n_members)
    rows = []
    for m in range(n_members):
        end = min(days, dropout[m])
        n = rng.poisson(rate[m] * max(end - join[m], 0))
        stamps = np.sort(rng.uniform(join[m], end, n))
        for k, s in enumerate(stamps):
            rows.append((f"o{m}-{k}", f"m{m}", s, float(rng.gamma(2, 20)), rng.random() < 0.05))
    orders = pd.DataFrame(rows, columns=["order_id", "member_id", "day", "amount", "returned"])
    orders["ordered_at"] = START + pd.to_timedelta(orders["day"], unit="D")
    orders["status"] = np.where(orders["returned"], "returned", "completed")
    orders["discount"] = 0.0
    members = pd.DataFrame(
        {
            "member_id": [f"m{m}" for m in range(n_members)],
            "joined_at": START + pd.to_timedelta(join, unit="D"),
        }
    )
    for frame in (members, orders):
        for col in ("member_id", "order_id", "status"):
            if col in frame:
                frame[col] = frame[col].astype("string")
    return Dataset(
        members=members,
        orders=orders[["order_id", "member_id", "ordered_at", "amount", "discount", "status"]],
        name="tiny-shop",
    )


@pytest.fixture(scope="session")
def tiny_shop() -> Dataset:
    return synthetic_shop()
