"""``loyalty score``: the best-benefit columns follow the at-risk list's choice rule."""

from __future__ import annotations

import pandas as pd
import pytest

import loyalty_ml.campaigns.batch as batch
from loyalty_ml.cli.score import _with_best_benefit


def test_best_eligible_benefit_per_member(monkeypatch: pytest.MonkeyPatch) -> None:
    options = pd.DataFrame(
        {
            "member_id": ["a", "a", "a", "b", "b"],
            "benefit_id": ["none", "coupon_10", "vip", "none", "coupon_10"],
            "expected_net_value": [0.0, 3.0, 9.0, 0.0, -2.0],
            "cost": [0.0, 10.0, 30.0, 0.0, 10.0],
            "eligible": [True, True, False, True, True],  # `vip` is above a's tier
        }
    )
    monkeypatch.setattr(batch, "benefit_options", lambda *a, **k: options)
    scores = pd.DataFrame({"member_id": ["a", "b"], "churn_probability": [0.7, 0.4]})
    out = _with_best_benefit(scores, None, "models:/benefits-x@champion", None)
    best = out.set_index("member_id")
    assert best.loc["a", "best_benefit"] == "coupon_10"  # the ineligible vip is never chosen
    assert best.loc["b", "best_benefit"] == "none"  # nothing is worth its cost
    assert best.loc["a", "best_benefit_cost"] == 10.0
    assert list(out["churn_probability"]) == [0.7, 0.4]


def test_scores_stand_when_no_benefit_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: object, **kwargs: object) -> pd.DataFrame:
        raise LookupError("no champion")

    monkeypatch.setattr(batch, "benefit_options", missing)
    scores = pd.DataFrame({"member_id": ["a"], "churn_probability": [0.7]})
    assert _with_best_benefit(scores, None, "models:/x@champion", None).equals(scores)
