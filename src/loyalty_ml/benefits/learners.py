"""Multi-arm meta-learners on LightGBM: T-, X-, DR-, transformed-outcome and shared-baseline
multiplicative learner.

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

LearnerName = Literal["t", "x", "dr", "to", "m"]
LEARNERS: tuple[LearnerName, ...] = ("t", "x", "dr", "to", "m")

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


def available_cores() -> int:
    """CPU cores this process may run on (affinity-aware, e.g. under taskset or a cgroup)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def lgbm_params(
    params: dict[str, Any] | None, seed: int, num_threads: int | None = None
) -> dict[str, Any]:
    """LightGBM keyword arguments: defaults < ``params``; ``num_threads`` None = all cores."""
    merged = {**DEFAULT_PARAMS, **(params or {})}
    merged.update(random_state=seed, n_jobs=num_threads or available_cores(), verbose=-1)
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
        return _predict(self.baseline, _as_matrix(X, self.baseline))

    def predict_uplift(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """``(n, n_arms)``: effect of each arm versus control; column 0 (control) is 0.

        The frame is converted to LightGBM's matrix once and each distinct model predicts once
        (a T-learner's control model is in every arm's effect): LightGBM's own pandas
        conversion per call was ~80% of a one-member ``/benefits`` request."""
        out = np.zeros((len(X), len(self.arms)))
        models = [m for arm in self.arms[1:] for _, m in self.effects[arm]]
        matrix = _as_matrix(X, *models)
        predicted: dict[int, NDArray[np.float64]] = {}
        for j, arm in enumerate(self.arms[1:], start=1):
            for weight, model in self.effects[arm]:
                if id(model) not in predicted:
                    predicted[id(model)] = _predict(model, matrix)
                out[:, j] += weight * predicted[id(model)]
        return out


def _predict(model: Any, X: Any, **kwargs: Any) -> NDArray[np.float64]:
    """A fitted LightGBM estimator's prediction straight from its booster (what the sklearn
    wrapper calls, minus its per-call input validation); other models' own ``predict``."""
    booster = getattr(model, "booster_", None) if not isinstance(X, pd.DataFrame) else None
    predict = booster.predict if booster is not None else model.predict
    return np.asarray(predict(X, **kwargs), dtype=np.float64)


def _pandas_categorical(model: Any) -> list[list[Any]] | None:
    """The category levels a LightGBM model was trained with (in its categorical columns'
    order); None for a model without a booster (constants) or without categoricals."""
    inner = getattr(model, "baseline", model)
    booster = getattr(inner, "booster_", None)
    return getattr(booster, "pandas_categorical", None) if booster is not None else None


def _as_matrix(X: pd.DataFrame, *models: Any) -> pd.DataFrame | NDArray[np.float64]:
    """``X`` as LightGBM reads a pandas frame — categoricals re-levelled to the training levels
    and replaced by their codes (missing → NaN), everything float64 — so that several models
    share one conversion. ``X`` unchanged when the models disagree on the levels."""
    if not isinstance(X, pd.DataFrame):
        return X
    trained = [lv for lv in map(_pandas_categorical, models) if lv is not None]
    if len({repr(lv) for lv in trained}) > 1:
        return X
    known = trained[0] if trained else None
    cat_cols = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    if cat_cols and (known is None or len(known) != len(cat_cols)):
        return X
    out = np.empty((len(X), X.shape[1]), dtype=np.float64)
    cats = iter(known or [])
    for i, col in enumerate(X.columns):
        values = X[col]
        if col in cat_cols:
            codes = values.cat.set_categories(next(cats)).cat.codes.to_numpy()
            out[:, i] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, i] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    return out


def _arm_masks(arm: NDArray[Any], arms: Sequence[str]) -> list[NDArray[np.bool_]]:
    masks = [arm == a for a in arms]
    for a, m in zip(arms, masks, strict=True):
        if not m.any():
            raise LoyaltyError(f"arm {a!r} has no logged rows")
    return masks


@dataclass
class _Fit:
    """Inputs shared by every learner: arm masks, IPW weights and per-arm outcome models."""

    X: pd.DataFrame
    arm: NDArray[Any]
    y: NDArray[np.float64]
    propensity: NDArray[np.float64]
    arms: list[str]
    params: dict[str, Any]
    masks: list[NDArray[np.bool_]] = field(init=False)
    w: NDArray[np.float64] = field(init=False)
    _mu: dict[int, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.masks = _arm_masks(self.arm, self.arms)
        self.w = 1.0 / self.propensity

    def fit(self, mask: NDArray[np.bool_] | slice, target: NDArray[np.float64]) -> Any:
        """An outcome/effect regressor on the rows ``mask`` (target aligned with those rows)."""
        return _safe_fit(self.X[mask], target, self.w[mask], self.params)

    def mu(self, j: int) -> Any:
        """``mu_j(x)``: outcome model of arm ``j`` fitted on that arm's rows (IPW-weighted)."""
        if j not in self._mu:
            m = self.masks[j]
            self._mu[j] = self.fit(m, self.y[m])
        return self._mu[j]

    @property
    def mus(self) -> list[Any]:
        return [self.mu(j) for j in range(len(self.arms))]

    def treated(self) -> list[tuple[int, str]]:
        return list(enumerate(self.arms))[1:]


def fit_t(f: _Fit) -> UpliftModel:
    """One outcome model per arm; effect = mu_k(x) - mu_0(x)."""
    mus = f.mus
    effects = {a: [(1.0, mus[j]), (-1.0, mus[0])] for j, a in f.treated()}
    return UpliftModel("t", f.arms, mus[0], effects)


def fit_x(f: _Fit) -> UpliftModel:
    """X-learner (Künzel et al. 2019), each arm against control: impute individual effects with
    the other group's outcome model, fit them, and blend by the arm's share of the pair."""
    mus, m0 = f.mus, f.masks[0]
    effects: dict[str, list[tuple[float, Any]]] = {}
    for j, a in f.treated():
        mk = f.masks[j]
        tau1 = f.fit(mk, f.y[mk] - mus[0].predict(f.X[mk]))
        tau0 = f.fit(m0, mus[j].predict(f.X[m0]) - f.y[m0])
        # g = weighted share of arm k within {control, k}; tau = g*tau0 + (1-g)*tau1.
        g = float(f.w[mk].sum() / (f.w[mk].sum() + f.w[m0].sum()))
        effects[a] = [(g, tau0), (1.0 - g, tau1)]
    return UpliftModel("x", f.arms, mus[0], effects)


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


def fit_dr(f: _Fit, folds: int = 3, seed: int = 0) -> UpliftModel:
    """DR-learner (Kennedy 2020): regress cross-fitted doubly robust pseudo-outcomes on x."""
    mu = cross_fit_outcomes(f.X, f.arm, f.y, f.propensity, f.arms, f.params, folds, seed)
    phi = dr_pseudo_outcomes(f.arm, f.y, f.propensity, f.arms, mu)
    ones = np.ones(len(f.y))
    effects = {a: [(1.0, _safe_fit(f.X, phi[:, j], ones, f.params))] for j, a in f.treated()}
    return UpliftModel("dr", f.arms, f.mu(0), effects)


def fit_to(f: _Fit) -> UpliftModel:
    """Transformed-outcome (IPW pseudo-outcome) learner: regress ``y * (1[a=k] - 1[a=0]) / p``
    on x, whose conditional mean is the effect of arm k (Athey & Imbens 2016); rows of other
    arms carry 0. One model per arm, fitted directly on the effect (no outcome models)."""
    ones = np.ones(len(f.y))
    is0 = f.arm == f.arms[0]
    effects = {}
    for _, a in f.treated():
        z = f.y * ((f.arm == a).astype(float) - is0.astype(float)) / f.propensity
        effects[a] = [(1.0, _safe_fit(f.X, z, ones, f.params))]
    return UpliftModel("to", f.arms, f.mu(0), effects)


class _ScaledBaseline:
    """``mu_k(x)`` of the multiplicative learner: the shared baseline times the arm's multiplier
    (log link), or plus the arm's shift (identity link, outcomes with negative values)."""

    def __init__(self, baseline: Any, shift: float, log_link: bool) -> None:
        self.baseline, self.shift, self.log_link = baseline, shift, log_link

    def predict(self, X: pd.DataFrame) -> NDArray[np.float64]:
        raw = _predict(self.baseline, X, raw_score=True)
        return np.exp(raw + self.shift) if self.log_link else raw + self.shift


def fit_m(f: _Fit) -> UpliftModel:
    """Shared-baseline multiplicative learner: one outcome model on *every* row (IPW weights, so
    each arm counts as the whole population; Poisson log link for non-negative outcomes), then one
    multiplier per arm, ``mu_k(x) = b(x) * exp(c_k)`` with ``c_k`` the log ratio of the arm's
    weighted outcome to the baseline's prediction on the arm's rows. Effect =
    ``b(x) * (exp(c_k) - exp(c_0))``: proportional to the member's baseline.

    Why: effects of offers on purchase rates scale with how much the member buys. A T-learner
    fits one model per arm on a few hundred to a few thousand rows each; with the regularisation
    that needs, the small arms' models are much smoother than the control model and their
    difference is *anti*-correlated with the true effect (measured on the simulator: correlation
    -0.28 on average over 11 benefits with 8k members). Here every arm shares the baseline, so
    the effect ranking is the baseline's ranking, estimated on all rows; the price is that
    member-level differences in the *relative* effect are not modelled (per-arm correction
    trees on top of ``b(x)`` were measured: noisier, lower policy value at 8k and 20k members).
    """
    y, w = f.y, f.w
    log_link = bool(np.all(y >= 0))
    params = {**f.params, "objective": "poisson" if log_link else "regression"}
    if len(np.unique(y)) < 2:
        const = _Constant(float(y[0]) if len(y) else 0.0)  # no outcome variation: no effect
        return UpliftModel(
            "m", f.arms, const, {a: [(1.0, const), (-1.0, const)] for _, a in f.treated()}
        )
    base = _regressor(params)
    base.fit(f.X, y, sample_weight=w / w.mean())
    raw = np.asarray(base.predict(f.X, raw_score=True), dtype=np.float64)
    mus: list[Any] = []
    for m in f.masks:
        if log_link:
            num = float((w[m] * y[m]).sum())
            den = float((w[m] * np.exp(raw[m])).sum())
            # An arm with no positive outcome: a tiny multiplier rather than log(0).
            shift = float(np.log(max(num, 1e-12 * den) / den)) if den > 0 else 0.0
        else:
            shift = float(np.average(y[m] - raw[m], weights=w[m]))
        mus.append(_ScaledBaseline(base, shift, log_link))
    effects = {a: [(1.0, mus[j]), (-1.0, mus[0])] for j, a in f.treated()}
    return UpliftModel("m", f.arms, mus[0], effects)


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
    if kind not in LEARNERS:
        raise LoyaltyError(f"unknown learner {kind!r}; choose from {', '.join(LEARNERS)}")
    f = _Fit(
        X,
        np.asarray(arm, dtype=object),
        np.asarray(y, dtype=np.float64),
        np.asarray(propensity, dtype=np.float64),
        list(arms),
        params,
    )
    if kind == "t":
        return fit_t(f)
    if kind == "x":
        return fit_x(f)
    if kind == "to":
        return fit_to(f)
    if kind == "m":
        return fit_m(f)
    return fit_dr(f, folds=folds, seed=seed)


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
