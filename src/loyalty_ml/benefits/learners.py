"""Multi-arm meta-learners on LightGBM: T-, X- and DR-learner.

Every learner is fitted on one logged outcome (``y``) with the arm actually offered and its logged
propensity, and predicts an ``(n, n_arms)`` matrix of incremental effects versus control (column 0,
the control arm, is all zeros) plus the control baseline. Rows are weighted by ``1/propensity`` so
that non-uniform logging policies do not bias the per-arm fits (Horvitz-Thompson reweighting);
the DR-learner's pseudo-outcome uses the propensity directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from loyalty_ml.errors import LoyaltyError

LearnerName = Literal["t", "x", "dr"]
LEARNERS: tuple[LearnerName, ...] = ("t", "x", "dr")

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 150,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 200,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


def lgbm_params(params: dict[str, Any] | None, seed: int, num_threads: int) -> dict[str, Any]:
    merged = {**DEFAULT_PARAMS, **(params or {})}
    merged.update(random_state=seed, n_jobs=num_threads, verbose=-1)
    return merged


def _regressor(params: dict[str, Any]) -> Any:
    import lightgbm as lgb

    return lgb.LGBMRegressor(**params)


def _fit_outcome(
    X: pd.DataFrame, y: NDArray[np.float64], w: NDArray[np.float64], params: dict[str, Any]
) -> Any:
    """One outcome model. L2 regression for both 0/1 and amounts: it estimates the mean, which
    is what effects are differences of (a binary log-loss fit gives the same mean, slower)."""
    if len(X) == 0:
        raise LoyaltyError("an arm has no rows to fit an outcome model on")
    model = _regressor(params)
    model.fit(X, y, sample_weight=w / w.mean())
    return model


class _Constant:
    """Stand-in model for a constant target (LightGBM refuses to fit one)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, X: pd.DataFrame) -> NDArray[np.float64]:
        return np.full(len(X), self.value)


def _safe_fit(
    X: pd.DataFrame, y: NDArray[np.float64], w: NDArray[np.float64], params: dict[str, Any]
) -> Any:
    if len(np.unique(y)) < 2:
        return _Constant(float(y[0]) if len(y) else 0.0)
    return _fit_outcome(X, y, w, params)


@dataclass
class UpliftModel:
    """A fitted learner: predicts baseline and per-arm effects for one outcome."""

    kind: LearnerName
    arms: list[str]
    baseline: Any  # model of the control outcome mu_0(x)
    effects: dict[str, list[tuple[float, Any]]] = field(default_factory=dict)
    # effect of arm k = sum(weight * model.predict(X)) over the listed (weight, model) pairs

    def predict_baseline(self, X: pd.DataFrame) -> NDArray[np.float64]:
        return np.asarray(self.baseline.predict(X), dtype=np.float64)

    def predict_uplift(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """``(n, n_arms)``: effect of each arm versus control; column 0 (control) is 0."""
        out = np.zeros((len(X), len(self.arms)))
        for j, arm in enumerate(self.arms[1:], start=1):
            for weight, model in self.effects[arm]:
                out[:, j] += weight * np.asarray(model.predict(X), dtype=np.float64)
        return out


def _arm_masks(arm: NDArray[Any], arms: Sequence[str]) -> list[NDArray[np.bool_]]:
    masks = [arm == a for a in arms]
    for a, m in zip(arms, masks, strict=True):
        if not m.any():
            raise LoyaltyError(f"arm {a!r} has no logged rows")
    return masks


def fit_t(
    X: pd.DataFrame,
    arm: NDArray[Any],
    y: NDArray[np.float64],
    propensity: NDArray[np.float64],
    arms: Sequence[str],
    params: dict[str, Any],
) -> UpliftModel:
    """One outcome model per arm; effect = mu_k(x) - mu_0(x)."""
    masks = _arm_masks(arm, arms)
    w = 1.0 / propensity
    mus = [_safe_fit(X[m], y[m], w[m], params) for m in masks]
    effects = {a: [(1.0, mus[j]), (-1.0, mus[0])] for j, a in enumerate(arms) if j > 0}
    return UpliftModel("t", list(arms), mus[0], effects)


def fit_x(
    X: pd.DataFrame,
    arm: NDArray[Any],
    y: NDArray[np.float64],
    propensity: NDArray[np.float64],
    arms: Sequence[str],
    params: dict[str, Any],
) -> UpliftModel:
    """X-learner (Künzel et al. 2019), each arm against control: impute individual effects with
    the other group's outcome model, fit them, and blend by the arm's share of the pair."""
    masks = _arm_masks(arm, arms)
    w = 1.0 / propensity
    mus = [_safe_fit(X[m], y[m], w[m], params) for m in masks]
    m0 = masks[0]
    effects: dict[str, list[tuple[float, Any]]] = {}
    for j, a in enumerate(arms):
        if j == 0:
            continue
        mk = masks[j]
        d_treated = y[mk] - mus[0].predict(X[mk])
        d_control = mus[j].predict(X[m0]) - y[m0]
        tau1 = _safe_fit(X[mk], d_treated, w[mk], params)
        tau0 = _safe_fit(X[m0], d_control, w[m0], params)
        # g = weighted share of arm k within {control, k}; tau = g*tau0 + (1-g)*tau1.
        g = float(w[mk].sum() / (w[mk].sum() + w[m0].sum()))
        effects[a] = [(g, tau0), (1.0 - g, tau1)]
    return UpliftModel("x", list(arms), mus[0], effects)


def cross_fit_outcomes(
    X: pd.DataFrame,
    arm: NDArray[Any],
    y: NDArray[np.float64],
    propensity: NDArray[np.float64],
    arms: Sequence[str],
    params: dict[str, Any],
    folds: int,
    seed: int,
) -> NDArray[np.float64]:
    """Out-of-fold predictions ``mu_a(x_i)`` for every row and arm, ``(n, n_arms)``."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, size=len(X))
    w = 1.0 / propensity
    out = np.zeros((len(X), len(arms)))
    for f in range(folds):
        train, held = fold != f, fold == f
        if not held.any():
            continue
        for j, a in enumerate(arms):
            m = train & (arm == a)
            if not m.any():
                raise LoyaltyError(f"arm {a!r} has too few rows for {folds}-fold cross-fitting")
            out[held, j] = _safe_fit(X[m], y[m], w[m], params).predict(X[held])
    return out


def dr_pseudo_outcomes(
    arm: NDArray[Any],
    y: NDArray[np.float64],
    propensity: NDArray[np.float64],
    arms: Sequence[str],
    mu: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``phi_k = mu_k - mu_0 + 1[a=k](y - mu_k)/p - 1[a=0](y - mu_0)/p`` for every arm k>0;
    column 0 is zeros. Only the logged arm's propensity is needed."""
    out = np.zeros((len(y), len(arms)))
    is0 = arm == arms[0]
    corr0 = np.where(is0, (y - mu[:, 0]) / propensity, 0.0)
    for j, a in enumerate(arms):
        if j == 0:
            continue
        isk = arm == a
        corrk = np.where(isk, (y - mu[:, j]) / propensity, 0.0)
        out[:, j] = mu[:, j] - mu[:, 0] + corrk - corr0
    return out


def fit_dr(
    X: pd.DataFrame,
    arm: NDArray[Any],
    y: NDArray[np.float64],
    propensity: NDArray[np.float64],
    arms: Sequence[str],
    params: dict[str, Any],
    folds: int = 3,
    seed: int = 0,
) -> UpliftModel:
    """DR-learner (Kennedy 2020): regress cross-fitted doubly robust pseudo-outcomes on x."""
    masks = _arm_masks(arm, arms)
    mu = cross_fit_outcomes(X, arm, y, propensity, arms, params, folds, seed)
    phi = dr_pseudo_outcomes(arm, y, propensity, arms, mu)
    ones = np.ones(len(y))
    effects = {a: [(1.0, _safe_fit(X, phi[:, j], ones, params))] for j, a in enumerate(arms) if j}
    baseline = _safe_fit(X[masks[0]], y[masks[0]], 1.0 / propensity[masks[0]], params)
    return UpliftModel("dr", list(arms), baseline, effects)


def fit_learner(
    kind: LearnerName,
    X: pd.DataFrame,
    arm: NDArray[Any],
    y: NDArray[np.float64],
    propensity: NDArray[np.float64],
    arms: Sequence[str],
    params: dict[str, Any],
    *,
    folds: int = 3,
    seed: int = 0,
) -> UpliftModel:
    arm = np.asarray(arm, dtype=object)
    y = np.asarray(y, dtype=np.float64)
    propensity = np.asarray(propensity, dtype=np.float64)
    if kind == "t":
        return fit_t(X, arm, y, propensity, arms, params)
    if kind == "x":
        return fit_x(X, arm, y, propensity, arms, params)
    if kind == "dr":
        return fit_dr(X, arm, y, propensity, arms, params, folds=folds, seed=seed)
    raise LoyaltyError(f"unknown learner {kind!r}; choose from {', '.join(LEARNERS)}")


@dataclass
class EnsembleModel:
    """Average of several learners' effects (baseline from the first)."""

    kind: str
    arms: list[str]
    members: list[UpliftModel]

    def predict_baseline(self, X: pd.DataFrame) -> NDArray[np.float64]:
        return self.members[0].predict_baseline(X)

    def predict_uplift(self, X: pd.DataFrame) -> NDArray[np.float64]:
        return np.mean([m.predict_uplift(X) for m in self.members], axis=0)
