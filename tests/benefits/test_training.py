"""Training on planted effects: refusals, the right benefit per member, budget and eligibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.benefits.config import BenefitsConfig
from loyalty_ml.benefits.data import pipeline_features, validate_offer_log
from loyalty_ml.benefits.train import BenefitsTrainResult, train_benefits
from loyalty_ml.errors import LoyaltyError
from tests.benefits.fixtures import BEST, planted_dataset, planted_log

FAST = {
    "lightgbm": {
        "n_estimators": 40,
        "num_leaves": 7,
        "min_child_samples": 40,
        "learning_rate": 0.1,
    },
    "cross_fit_folds": 2,
    "feature_source": "pipeline",  # Feast is covered in test_features.py
}
CATALOGUE_ARMS = ("none", "coupon_50", "coupon_500_100")  # min tiers normal / silver


def _cfg(**kw: object) -> BenefitsConfig:
    return BenefitsConfig.model_validate({**FAST, **kw})


def _offers(**over: object) -> pd.DataFrame:
    log = planted_log(1200, seed=3)
    log["offered_at"] = pd.Timestamp("2024-02-01", tz="UTC")
    for k, v in over.items():
        log[k] = v
    return log


# ----------------------------------------------------------------------------- refusals


def test_refuses_log_without_control() -> None:
    log = _offers()
    log = log[log["benefit_id"] != "none"]
    with pytest.raises(LoyaltyError, match="no control offers"):
        validate_offer_log(log, _cfg())


def test_refuses_single_benefit() -> None:
    with pytest.raises(LoyaltyError, match="single benefit"):
        validate_offer_log(_offers(benefit_id="none"), _cfg())


@pytest.mark.parametrize("bad", [0.0, 1.2, np.nan])
def test_refuses_propensities_outside_unit_interval(bad: float) -> None:
    log = _offers()
    log.loc[5, "propensity"] = bad
    with pytest.raises(LoyaltyError, match=r"outside \(0, 1\]"):
        validate_offer_log(log, _cfg())


def test_refuses_arm_with_too_few_observations() -> None:
    log = _offers()
    with pytest.raises(LoyaltyError, match=r"too few observations.*coupon"):
        validate_offer_log(log, _cfg(min_observations_per_arm=len(log)))


def test_missing_offers_table_is_a_clear_error() -> None:
    ds = planted_dataset(600)
    ds.offers = None
    with pytest.raises(LoyaltyError, match="offers"):
        train_benefits(ds, config=_cfg(), trials=0, track=False)


# ----------------------------------------------------------------------------- planted effects


@pytest.fixture(scope="module")
def trained() -> tuple[BenefitsTrainResult, pd.DataFrame, pd.Series]:
    ds = planted_dataset(7000, seed=0, nonuniform=True, arms=CATALOGUE_ARMS)
    res = train_benefits(ds, config=_cfg(), objective="revenue", trials=0, track=False)
    ents = pd.DataFrame(
        {
            "member_id": ds.members["member_id"],
            "event_timestamp": pd.Timestamp("2024-03-01", tz="UTC"),
        }
    )
    feats = pipeline_features(ds, ents)
    seg = ds.members.set_index("member_id")["segment"]
    return res, feats, seg


def test_known_effects_pick_the_right_benefit(trained: tuple) -> None:
    res, feats, seg = trained
    assert res.objective == "revenue"
    assert res.costs == {"none": 0.0, "coupon_50": 50.0, "coupon_500_100": 100.0}
    assert res.cost_sources["coupon_50"] == "policy catalogue"
    a = res.matcher.assign(feats)
    want = seg.loc[a["member_id"]].map(lambda s: CATALOGUE_ARMS[BEST[s]]).to_numpy()
    accuracy = (
        pd.Series(a["benefit_id"].to_numpy() == want)
        .groupby(seg.loc[a["member_id"]].to_numpy())
        .mean()
    )
    assert (accuracy > 0.9).all(), accuracy
    assert set(a.columns) == {
        "member_id",
        "benefit_id",
        "expected_uplift",
        "expected_net_value",
        "cost",
        "propensity",
    }
    # Segment c: no benefit pays -> none.
    assert (a.loc[seg.loc[a["member_id"]].to_numpy() == "c", "benefit_id"] == "none").mean() > 0.9
    ev = res.evaluation.set_index("policy")
    assert ev.loc["learned", "dr"] > ev.loc["everyone: coupon_50", "dr"]
    assert ev.loc["learned", "dr_diff_lo"] > 0  # confidently better than the best single arm
    assert set(res.learner_table["learner"]) == {"t", "x", "dr", "ensemble"}


def test_score_rows_and_reasons(trained: tuple) -> None:
    res, feats, _ = trained
    s = res.matcher.score(feats.head(5))
    assert list(s.columns) == [
        "member_id",
        "benefit_id",
        "expected_uplift",
        "expected_net_value",
        "cost",
        "eligible",
        "reason",
    ]
    assert len(s) == 5 * 3
    none = s[s["benefit_id"] == "none"]
    assert (none["expected_net_value"] == 0).all() and none["eligible"].all()
    pos = s[(s["benefit_id"] != "none")]
    assert ((pos["expected_net_value"] <= 0) == (pos["reason"] == "net_value_not_positive")).all()


@pytest.mark.parametrize("budget", [0.0, 1000.0, 25_000.0, 1e9])
def test_budget_never_exceeded(trained: tuple, budget: float) -> None:
    res, feats, _ = trained
    a = res.matcher.assign(feats, budget=budget)
    assert a["cost"].sum() <= budget + 1e-6
    if budget == 0:
        assert (a["benefit_id"] == "none").all()
    if budget == 1e9:  # a budget that does not bind gives the unconstrained answer's value
        free = res.matcher.assign(feats)
        assert a["expected_net_value"].sum() == pytest.approx(
            free["expected_net_value"].sum(), rel=1e-6
        )


def test_ineligible_benefits_never_chosen(trained: tuple) -> None:
    res, feats, _ = trained
    states = pd.DataFrame({"member_id": feats["member_id"], "tier": "normal"})
    states.loc[states.index % 2 == 0, "tier"] = "gold"
    a = res.matcher.assign(feats, states, at="2024-03-01")
    normal = states.set_index("member_id").loc[a["member_id"], "tier"].to_numpy() == "normal"
    assert not (a.loc[normal, "benefit_id"] == "coupon_500_100").any()
    assert (a.loc[~normal, "benefit_id"] == "coupon_500_100").any()  # gold members still get it
    s = res.matcher.score(feats.head(4), states.head(4), at="2024-03-01")
    blocked = s[(s["benefit_id"] == "coupon_500_100") & ~s["eligible"]]
    assert len(blocked) == 2 and (blocked["reason"] == "tier_too_low").all()


def test_matcher_round_trip(trained: tuple, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from loyalty_ml.benefits.matcher import BenefitMatcher

    res, feats, _ = trained
    path = res.matcher.save(tmp_path)
    again = BenefitMatcher.load(path.parent)
    pd.testing.assert_frame_equal(again.assign(feats.head(50)), res.matcher.assign(feats.head(50)))
    conv = again.with_objective("conversion")
    assert conv.objective == "conversion" and len(conv.assign(feats.head(10))) == 10


def test_budget_goes_to_the_right_members_when_the_decision_uses_averages() -> None:
    """Shrinkage 0 (every member of a benefit gets its average net value, which is negative for
    both benefits here): the budgeted allocation must still rank members by their own expected
    net value, so the budget goes to segment a (coupon_50) and b (coupon_500_100), never c."""
    ds = planted_dataset(7000, seed=0, nonuniform=True, arms=CATALOGUE_ARMS)
    cfg = _cfg(decision={"tune": False, "shrinkage": 0.0})
    res = train_benefits(ds, config=cfg, objective="revenue", trials=0, track=False)
    assert res.matcher.decision.shrinkage == 0.0 and res.matcher.calibration is not None
    ents = pd.DataFrame(
        {
            "member_id": ds.members["member_id"],
            "event_timestamp": pd.Timestamp("2024-03-01", tz="UTC"),
        }
    )
    feats = pipeline_features(ds, ents)
    seg = ds.members.set_index("member_id")["segment"]
    budget = 40_000.0  # room for a fraction of segments a and b
    a = res.matcher.assign(feats, budget=budget)
    assert a["cost"].sum() <= budget + 1e-6
    given = a[a["benefit_id"] != "none"]
    assert len(given) >= 300
    want = seg.loc[given["member_id"]].map(lambda s: CATALOGUE_ARMS[BEST[s]]).to_numpy()
    assert (given["benefit_id"].to_numpy() == want).mean() > 0.9
    assert (given["expected_net_value"] > 0).all()
