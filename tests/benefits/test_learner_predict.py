"""Scoring shares one LightGBM matrix and one prediction per distinct model across arms (the
/benefits hot path); it must give exactly what each model's own pandas prediction gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.benefits.learners import LEARNERS, fit_learner, lgbm_params

ARMS = ["none", "coupon", "shipping"]


def _frame(rng: np.random.Generator, n: int, levels: list[str]) -> pd.DataFrame:
    region = rng.choice(["north", "south", "east", None], n).astype(object)
    return pd.DataFrame(
        {
            "spend": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 50.0, n)),
            "region": pd.Categorical(region, categories=levels),
            "visits": rng.poisson(3, n).astype(float),
        }
    )


def _per_model_uplift(model, X: pd.DataFrame) -> np.ndarray:
    out = np.zeros((len(X), len(model.arms)))
    for j, arm in enumerate(model.arms[1:], start=1):
        for weight, m in model.effects[arm]:
            out[:, j] += weight * np.asarray(m.predict(X), dtype=np.float64)
    return out


@pytest.mark.parametrize("kind", LEARNERS)
def test_shared_matrix_prediction_equals_each_models_own(kind: str) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    X = _frame(rng, n, ["east", "north", "south"])
    arm = rng.choice(ARMS, n)
    lift = np.where(X["region"] == "north", 20.0, 5.0) * (arm == "coupon") + 8.0 * (
        arm == "shipping"
    )
    y = np.maximum(0.0, np.nan_to_num(X["spend"].to_numpy()) * 0.2 + lift + rng.normal(0, 5, n))
    params = lgbm_params({"n_estimators": 30, "num_leaves": 8, "min_child_samples": 20}, 0, 1)
    model = fit_learner(kind, X, arm, y, np.full(n, 1 / 3), ARMS, params, folds=2)

    # Scoring frames list the levels in another order (LightGBM re-levels them to training's),
    # include missing values, and may be a single row (the /benefits request).
    scoring = _frame(np.random.default_rng(9), 400, ["south", "north", "east"])
    for frame in (scoring, scoring.iloc[[7]]):
        assert np.array_equal(model.predict_uplift(frame), _per_model_uplift(model, frame))
        assert np.array_equal(
            model.predict_baseline(frame), np.asarray(model.baseline.predict(frame), float)
        )
