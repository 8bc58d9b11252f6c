"""Allocation: one option per member, within budget, never negative value; gap vs exact DP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from loyalty_ml.errors import LoyaltyError
from loyalty_ml.policy import allocate, allocate_exact

from .conftest import fast_and_deep

option = st.tuples(
    st.integers(0, 5),  # member
    st.integers(0, 3),  # option
    st.integers(-20, 100),  # value
    st.integers(0, 40),  # cost
)


def _frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["member_id", "option_id", "value", "cost"])
    df["member_id"] = "m" + df["member_id"].astype(str)
    df["option_id"] = "o" + df["option_id"].astype(str)
    return df.drop_duplicates(["member_id", "option_id"]).reset_index(drop=True)


def _allocation_invariants_and_gap(rows, budget) -> None:
    cands = _frame(rows)
    chosen = allocate(cands, budget)
    assert chosen["cost"].sum() <= budget
    assert chosen["member_id"].is_unique
    assert (chosen["value"] > 0).all()
    exact = allocate_exact(cands, budget)
    assert exact["cost"].sum() <= budget and exact["member_id"].is_unique
    # Greedy never beats the optimum (and the DP is checked against it on every case).
    assert chosen["value"].sum() <= exact["value"].sum() + 1e-9


test_allocation_invariants_and_gap, test_allocation_invariants_and_gap_deep = fast_and_deep(
    (
        st.lists(option, max_size=24),
        st.integers(0, 120),
    ),
    25,
    500,
)(_allocation_invariants_and_gap)


def test_greedy_gap_small_cases_documented() -> None:
    """Mean greedy/optimal value ratio on random small cases (number quoted in docs/policy.md)."""
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(40):
        n = rng.integers(2, 7)
        rows = [
            (m, o, int(rng.integers(1, 100)), int(rng.integers(1, 40)))
            for m in range(n)
            for o in range(rng.integers(1, 4))
        ]
        cands = _frame(rows)
        budget = int(rng.integers(10, 120))
        opt = allocate_exact(cands, budget)["value"].sum()
        if opt > 0:
            ratios.append(allocate(cands, budget)["value"].sum() / opt)
    print(f"greedy/optimal: mean {np.mean(ratios):.3f}, min {np.min(ratios):.3f}")
    assert np.mean(ratios) >= 0.95
    assert np.min(ratios) >= 0.6


def test_worked_example() -> None:
    cands = pd.DataFrame(
        {
            "member_id": ["a", "a", "b", "c"],
            "option_id": ["coupon_50", "vip_service_48h", "double_points", "coupon_1000_300"],
            "value": [60.0, 45.0, 10.0, -5.0],
            "cost": [50.0, 15.0, 2.0, 300.0],
        }
    )
    chosen = allocate(cands, 20)
    assert list(chosen["option_id"]) == ["vip_service_48h", "double_points"]
    assert chosen.attrs["total_cost"] == 17.0
    # With room, member a moves up its hull to the higher-value coupon (45 -> 60 for 35 more).
    assert list(allocate(cands, 1000)["option_id"]) == ["coupon_50", "double_points"]


def test_bad_input() -> None:
    with pytest.raises(LoyaltyError, match="cost"):
        allocate(pd.DataFrame({"member_id": ["a"], "option_id": ["x"], "value": [1]}), 10)
    with pytest.raises(LoyaltyError, match="budget"):
        allocate(_frame([(0, 0, 1, 1)]), -1)
