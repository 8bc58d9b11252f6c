"""Tier order, product tier filter, points to earn and benefit eligibility (scalar == vectorised)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_ml.errors import ConfigError, LoyaltyError
from loyalty_ml.policy import (
    MemberState,
    allowed_for_tier,
    eligibility,
    eligibility_reasons,
    eligible_matrix,
    points_to_earn,
    tier_index,
)

from .conftest import policy_with

TIERS = ["normal", "silver", "gold", "diamond"]


def test_tier_index(cfg) -> None:
    assert [tier_index(t, cfg) for t in TIERS] == [0, 1, 2, 3]
    assert list(tier_index(np.array(["gold", "normal"]), cfg)) == [2, 0]
    with pytest.raises(ConfigError, match="platinum"):
        tier_index("platinum", cfg)


def test_allowed_for_tier(cfg) -> None:
    products = ["normal", "gold", None, "diamond", ""]
    assert list(allowed_for_tier(products, "gold", cfg)) == [True, True, True, False, True]
    assert allowed_for_tier("gold", "silver", cfg) is False
    assert allowed_for_tier(None, "normal", cfg) is True
    assert list(allowed_for_tier(["gold", "gold"], ["silver", "diamond"], cfg)) == [False, True]
    with pytest.raises(LoyaltyError, match="vip"):
        allowed_for_tier(["vip"], "gold", cfg)


@pytest.mark.parametrize(
    ("tier", "price", "at", "birth_month", "points"),
    [
        ("normal", 100, "2025-05-01", None, 100),  # 1 point per unit
        ("silver", 100, "2025-05-01", None, 120),
        ("gold", 100, "2025-05-01", None, 150),
        ("diamond", 100, "2025-05-01", None, 200),
        ("gold", 100, "2025-05-31 23:00", 5, 300),  # birthday month doubles
        ("gold", 100, "2025-06-01", 5, 150),
        ("normal", 29.99, "2025-05-01", None, 29),  # whole points, floored
        ("silver", 0.5, "2025-05-01", None, 0),
    ],
)
def test_points_to_earn_table(cfg, tier, price, at, birth_month, points) -> None:
    assert points_to_earn(tier, price, at, cfg, birth_month=birth_month) == points


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(TIERS),
            st.floats(0, 10_000, allow_nan=False),
            st.integers(1, 12),
            st.one_of(st.none(), st.integers(1, 12)),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_points_vectorised_matches_scalar(rows) -> None:
    from loyalty_ml.policy import load_policy

    cfg = load_policy()
    tiers, prices, months, births = zip(*rows, strict=True)
    at = [pd.Timestamp(2025, m, 10, tz="UTC") for m in months]
    bm = [np.nan if b is None else b for b in births]
    vec = points_to_earn(list(tiers), list(prices), at, cfg, birth_month=bm)
    for i, row in enumerate(rows):
        assert vec[i] == points_to_earn(row[0], row[1], at[i], cfg, birth_month=row[3])
        assert vec[i] >= 0


def test_eligibility_reasons_table(cfg) -> None:
    silver = MemberState("m", "silver", birth_month=3, used_month={"coupon_200_50": 2})
    at = "2025-03-10"
    assert eligibility(silver, "none", at, cfg).allowed
    assert eligibility(silver, "coupon_50", at, cfg).allowed
    assert eligibility(silver, "coupon_200_50", at, cfg).reason == "monthly_limit"
    assert eligibility(silver, "coupon_1000_300", at, cfg).reason == "tier_too_low"
    assert eligibility(silver, "birthday_pack", at, cfg).allowed
    assert eligibility(silver, "birthday_pack", "2025-04-01", cfg).reason == "not_birth_month"
    assert eligibility(silver, "nope", at, cfg).reason == "unknown_benefit"
    used = MemberState("m", "normal", birth_month=3, used_year={"birthday_pack": 1})
    assert eligibility(used, "birthday_pack", at, cfg).reason == "yearly_limit"
    # Transition period: a downgraded gold member keeps gold benefits.
    moved = MemberState("m", "silver", benefit_tier="gold")
    assert eligibility(moved, "coupon_1000_300", at, cfg).allowed


def test_validity_window() -> None:
    def edit(raw: dict) -> None:
        raw["benefits"]["coupon_50"]["valid_from"] = "2025-01-01"
        raw["benefits"]["coupon_50"]["valid_until"] = "2025-06-30"

    cfg = policy_with(edit)
    state = MemberState("m", "normal")
    assert eligibility(state, "coupon_50", "2024-12-31", cfg).reason == "not_yet_valid"
    assert eligibility(state, "coupon_50", "2025-03-01", cfg).allowed
    assert eligibility(state, "coupon_50", "2025-07-01", cfg).reason == "expired"


@settings(max_examples=10, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(TIERS),
            st.one_of(st.none(), st.sampled_from(TIERS)),
            st.one_of(st.none(), st.integers(1, 12)),
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 12),
)
def test_matrix_matches_scalar(rows, month) -> None:
    from loyalty_ml.policy import load_policy

    cfg = load_policy()
    at = pd.Timestamp(2025, month, 15, tz="UTC")
    states = pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(len(rows))],
            "tier": [r[0] for r in rows],
            "benefit_tier": [r[1] for r in rows],
            "birth_month": [np.nan if r[2] is None else r[2] for r in rows],
            "used_month__vip_service_48h": [r[3] for r in rows],
            "used_month__coupon_200_50": [r[3] for r in rows],
            "used_year__birthday_pack": [r[4] % 2 for r in rows],
            "used_year__points_gift_2000": [r[4] for r in rows],
        }
    )
    reasons = eligibility_reasons(states, None, at, cfg)
    allowed = eligible_matrix(states, None, at, cfg)
    for i, (_, row) in enumerate(states.iterrows()):
        for bid in cfg.benefit_ids:
            e = eligibility(row, bid, at, cfg)
            assert reasons.iloc[i][bid] == e.reason
            assert bool(allowed.iloc[i][bid]) == e.allowed
