"""The numerical core of ``train benefits``, free of I/O: compare learners, tune LightGBM with
Optuna, tune the decision layer out of fold, evaluate on a held-out slice, and build the
:class:`BenefitMatcher`. ``train.py`` wraps it with data loading and MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from loyalty_ml.benefits import estimators as est
from loyalty_ml.benefits.config import BenefitsConfig, Objective
from loyalty_ml.benefits.data import FeatureSchema, reward
from loyalty_ml.benefits.decision import (
    DecisionParams,
    NetCalibration,
    choose,
    cost_in_objective_units,
    dr_net_pseudo_outcomes,
    fit_net_calibration,
    net_values,
)
from loyalty_ml.benefits.evaluation import baseline_policies, evaluate_policies
from loyalty_ml.benefits.learners import EnsembleModel, UpliftModel, fit_learner, lgbm_params
from loyalty_ml.benefits.matcher import BenefitMatcher
from loyalty_ml.benefits.metrics import qini_auc_score
from loyalty_ml.errors import LoyaltyError

log = logging.getLogger(__name__)
Model = UpliftModel | EnsembleModel
# Callback for tracking: (kind, name, params, metrics) -> None; kind is "trial" or "learner".
Tracker = Callable[[str, str, dict[str, Any], dict[str, float]], None]


@dataclass
class Prepared:
    """Aligned arrays of one training table (rows = offers)."""

    X: pd.DataFrame
    arm: NDArray[np.int64]  # index into arms
    propensity: NDArray[np.float64]
    converted: NDArray[np.float64]
    revenue: NDArray[np.float64]
    member_id: NDArray[Any]
    arms: list[str]
    costs: NDArray[np.float64]  # currency per arm
    objective: Objective
    margin_rate: float | None = None
    conversion_value: float | None = None
    has_revenue: bool = True

    def __len__(self) -> int:
        return len(self.arm)

    @property
    def unit_costs(self) -> NDArray[np.float64]:
        return cost_in_objective_units(self.objective, self.costs, self.conversion_value)

    @property
    def primary(self) -> str:
        return "conversion" if self.objective == "conversion" else "revenue"

    def outcome(self, name: str) -> NDArray[np.float64]:
        return self.converted if name == "conversion" else self.revenue

    def reward(self) -> NDArray[np.float64]:
        return reward(
            self.objective,
            self.converted,
            self.revenue,
            self.costs[self.arm],
            self.margin_rate,
            self.conversion_value,
        )

    def scale(self) -> float:
        """Objective units per unit of the primary outcome."""
        return (self.margin_rate or 0.0) if self.objective == "margin" else 1.0

    def subset(self, idx: NDArray[np.int64]) -> Prepared:
        return Prepared(
            self.X.iloc[idx].reset_index(drop=True),
            self.arm[idx],
            self.propensity[idx],
            self.converted[idx],
            self.revenue[idx],
            self.member_id[idx],
            self.arms,
            self.costs,
            self.objective,
            self.margin_rate,
            self.conversion_value,
            self.has_revenue,
        )


def stratified_split(
    arm: NDArray[np.int64], share: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(train, held-out) row indices, the held-out share taken within each arm."""
    rng = np.random.default_rng(seed)
    held: list[NDArray[np.int64]] = []
    for a in np.unique(arm):
        rows = np.flatnonzero(arm == a)
        rng.shuffle(rows)
        held.append(rows[: round(len(rows) * share)])
    test = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(arm)), test)
    return train, test


def fit_model(
    kind: str,
    data: Prepared,
    outcome: str,
    params: dict[str, Any],
    config: BenefitsConfig,
    seed: int,
) -> Model:
    arms = data.arms
    arm_names = np.asarray(arms, dtype=object)[data.arm]
    y = data.outcome(outcome)
    prm = lgbm_params(params, seed, config.num_threads)
    if kind == "ensemble":
        members = [
            fit_learner(
                k,
                data.X,
                arm_names,
                y,
                data.propensity,
                arms,
                prm,
                folds=config.cross_fit_folds,
                seed=seed,
            )
            for k in config.learners
        ]
        return EnsembleModel("ensemble", list(arms), members)
    return fit_learner(
        kind,
        data.X,
        arm_names,
        y,
        data.propensity,
        arms,
        prm,
        folds=config.cross_fit_folds,
        seed=seed,  # type: ignore[arg-type]
    )


def objective_effect(model: Model, X: pd.DataFrame, data: Prepared) -> NDArray[np.float64]:
    """Effect matrix in objective units from a model of the primary outcome."""
    return model.predict_uplift(X) * data.scale()


def q_matrix(t_model: Model, X: pd.DataFrame, data: Prepared) -> NDArray[np.float64]:
    """Outcome-model reward under each arm (objective units, net of cost): DR's ``q``."""
    mu0 = t_model.predict_baseline(X)
    mu = mu0[:, None] + t_model.predict_uplift(X)
    return mu * data.scale() - data.unit_costs[None, :]


def hajek_effects(
    y: NDArray[np.float64], arm: NDArray[np.int64], propensity: NDArray[np.float64], n_arms: int
) -> NDArray[np.float64]:
    """Per-arm mean outcome minus control's, each a self-normalised IPS (Hajek) mean."""
    w = 1.0 / propensity
    means = np.array([(w[arm == j] * y[arm == j]).sum() / w[arm == j].sum() for j in range(n_arms)])
    return means - means[0]


def arm_effects(data: Prepared) -> NDArray[np.float64]:
    """Per-arm average effect in objective units."""
    y = data.outcome(data.primary) * data.scale()
    return hajek_effects(y, data.arm, data.propensity, len(data.arms))


def default_arm(centers: NDArray[np.float64], unit_costs: NDArray[np.float64]) -> int:
    net = centers - unit_costs
    net[0] = 0.0
    return int(np.argmax(net))


def policy_value(
    choice: NDArray[np.int64], data: Prepared, q: NDArray[np.float64] | None
) -> tuple[NDArray[np.float64], float]:
    """Per-row DR (or IPS without q) contributions and their mean."""
    pi = (choice == data.arm).astype(float)
    r = data.reward()
    if q is None:
        c = est.ips_contributions(r, data.propensity, pi)
    else:
        rows = np.arange(len(choice))
        c = est.dr_contributions(r, data.propensity, pi, q[rows, data.arm], q[rows, choice])
    return c, float(c.mean())


# ----------------------------------------------------------------------------- decision tuning


@dataclass
class DecisionTuning:
    params: DecisionParams
    table: pd.DataFrame
    gain: float
    gain_lo: float
    fallback: bool


def tune_decision(
    effect: NDArray[np.float64],
    q: NDArray[np.float64],
    data: Prepared,
    centers: NDArray[np.float64],
    config: BenefitsConfig,
    gate: NDArray[np.bool_] | None = None,
) -> DecisionTuning:
    """Grid over (shrinkage, switch margin) on out-of-fold effects; keep the point with the best
    lower confidence bound of its paired gain over the default policy (everyone gets the default
    arm), so a personalised policy is used only when it is confidently better."""
    z = config.decision.confidence_z
    d = default_arm(centers.copy(), data.unit_costs)
    base_choice = np.full(len(data), d)
    base_c, _ = policy_value(base_choice, data, q)
    scale = float(np.std(data.reward())) or 1.0
    rows = []
    best = (0.0, DecisionParams(0.0, 0.0, d), 0.0, 0.0)  # (lcb, params, gain, lo)
    for lam in config.decision.shrinkage_grid:
        net = _gated(net_values(effect, centers, lam, data.unit_costs), gate)
        for m in config.decision.switch_margin_grid:
            params = DecisionParams(lam, m * scale, d)
            choice = choose(net, None, params)
            c, v = policy_value(choice, data, q)
            diff = est.paired_difference(c, base_c)
            lcb = diff.value - z * diff.se if np.isfinite(diff.se) else diff.value
            rows.append(
                {
                    "shrinkage": lam,
                    "switch_margin": m * scale,
                    "value": v,
                    "gain": diff.value,
                    "gain_lcb": lcb,
                    "share_switched": float((choice != d).mean()),
                }
            )
            if not config.decision.require_confident_gain:
                lcb = diff.value
            if lcb > best[0] + 1e-12:
                best = (lcb, params, diff.value, diff.value - est.Z95 * diff.se)
    table = pd.DataFrame(rows)
    fallback = best[0] <= 0
    return DecisionTuning(best[1], table, best[2], best[3], fallback)


def _gated(net: NDArray[np.float64], gate: NDArray[np.bool_] | None) -> NDArray[np.float64]:
    """Net values with the benefits not confidently profitable (``gate`` False) at most 0."""
    if gate is None:
        return net
    out = np.where(gate, net, np.minimum(net, 0.0))
    out[:, 0] = 0.0
    return out


def calibrate_effects(
    oof_eff: NDArray[np.float64], oof_q: NDArray[np.float64], data: Prepared, config: BenefitsConfig
) -> NetCalibration:
    """Net-effect calibration from out-of-fold effects and DR pseudo-outcomes (training slice)."""
    phi = dr_net_pseudo_outcomes(oof_q, data.arm, data.propensity, data.reward())
    dc = config.decision
    return fit_net_calibration(
        oof_eff, phi, dc.calibration_bins, dc.calibration_min_rows, dc.net_confidence_z
    )


def calibrated(
    raw: NDArray[np.float64], calib: NetCalibration | None, unit_costs: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None]:
    """(objective effect to decide on, confidence gate) from a learner's raw effect."""
    if calib is None:
        return raw, None
    eff = calib.net(raw) + unit_costs[None, :]
    eff[:, 0] = 0.0
    return eff, calib.lower(raw) > 0


def crossfit_calibrated(
    oof_eff: NDArray[np.float64], oof_q: NDArray[np.float64], data: Prepared, config: BenefitsConfig
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(calibrated effect, gate) per training row from a calibration fitted on the *other*
    cross-fitting folds, so the gate can be judged on rows it was not fitted on."""
    fold = oof_folds(len(data), config)
    eff = np.zeros_like(oof_eff)
    gate = np.zeros(oof_eff.shape, dtype=bool)
    for f in range(config.cross_fit_folds):
        fit_idx, use_idx = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        calib = calibrate_effects(oof_eff[fit_idx], oof_q[fit_idx], data.subset(fit_idx), config)
        e, g = calibrated(oof_eff[use_idx], calib, data.unit_costs)
        eff[use_idx], gate[use_idx] = e, g  # type: ignore[assignment]
    return eff, gate


def oof_folds(n: int, config: BenefitsConfig) -> NDArray[np.int64]:
    """The cross-fitting fold of each training row (the same as :func:`out_of_fold`'s)."""
    rng = np.random.default_rng(config.seed + 7)
    return rng.integers(0, config.cross_fit_folds, n)


# ----------------------------------------------------------------------------- optuna


def tune_params(
    data: Prepared, config: BenefitsConfig, trials: int, tracker: Tracker | None = None
) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    """Optuna over (learner, LightGBM knobs): fit on 75% of the training slice, score the greedy
    policy's DR value on the other 25%. Returns the best params found per learner."""
    base = dict(config.lightgbm)
    best: dict[str, dict[str, Any]] = {k: dict(base) for k in config.learners}
    if trials <= 0:
        return best, pd.DataFrame()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    inner_tr, inner_va = stratified_split(data.arm, 0.25, config.seed + 1)
    tr, va = data.subset(inner_tr), data.subset(inner_va)
    t_ref = fit_model("t", tr, tr.primary, base, config, config.seed)
    q = q_matrix(t_ref, va.X, va)
    centers = arm_effects(tr)
    d = default_arm(centers.copy(), tr.unit_costs)
    space = config.optuna.space
    scores: dict[str, float] = {}
    rows = []

    def objective(trial: Any) -> float:
        kind = trial.suggest_categorical("learner", list(config.learners))
        params = dict(base)
        for key, (lo, hi) in space.items():
            if key in ("num_leaves", "min_child_samples", "n_estimators"):
                params[key] = trial.suggest_int(key, int(lo), int(hi), log=key != "num_leaves")
            elif key == "learning_rate":
                params[key] = trial.suggest_float(key, lo, hi, log=True)
            else:
                params[key] = trial.suggest_float(key, lo, hi)
        model = fit_model(kind, tr, tr.primary, params, config, config.seed)
        eff = objective_effect(model, va.X, va)
        choice = choose(
            net_values(eff, centers, 1.0, va.unit_costs), None, DecisionParams(1.0, 0.0, d)
        )
        _, value = policy_value(choice, va, q)
        prev = scores.get(kind)
        if prev is None or value > prev:
            scores[kind] = value
            best[kind] = params
        rows.append({"trial": trial.number, "learner": kind, **params, "value_dr": value})
        if tracker:
            tracker(
                "trial",
                f"trial-{trial.number:03d}-{kind}",
                {"learner": kind, **params},
                {"value_dr": value},
            )
        return value

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed)
    )
    study.optimize(objective, n_trials=trials, timeout=config.optuna.timeout_s)
    return best, pd.DataFrame(rows)


# ----------------------------------------------------------------------------- fit


@dataclass
class CoreResult:
    matcher: BenefitMatcher
    learner: str
    learner_table: pd.DataFrame
    evaluation: pd.DataFrame  # policies on the validation slice
    decision_table: pd.DataFrame
    tuning_table: pd.DataFrame
    validation_effects: dict[str, NDArray[np.float64]]  # objective-unit effects per learner
    validation: Prepared
    validation_index: NDArray[np.int64]
    q_validation: NDArray[np.float64]
    metrics: dict[str, float] = field(default_factory=dict)


def fit_benefit_model(
    data: Prepared,
    schema: FeatureSchema,
    config: BenefitsConfig,
    trials: int = 0,
    tracker: Tracker | None = None,
    refit: bool = True,
) -> CoreResult:
    """Compare learners on a held-out slice, tune the decision out of fold, evaluate, refit."""
    if len(data.arms) < 2:
        raise LoyaltyError("need the control arm and at least one benefit")
    train_idx, val_idx = stratified_split(data.arm, config.validation_share, config.seed)
    tr, va = data.subset(train_idx), data.subset(val_idx)
    best_params, tuning = tune_params(tr, config, trials, tracker)
    centers = arm_effects(tr)
    d = default_arm(centers.copy(), tr.unit_costs)
    greedy = DecisionParams(1.0, 0.0, d)

    # Learners on the primary outcome, scored on the validation slice.
    models: dict[str, Model] = {}
    for kind in config.learners:
        models[kind] = fit_model(kind, tr, tr.primary, best_params[kind], config, config.seed)
    if config.ensemble and len(config.learners) > 1:
        models["ensemble"] = EnsembleModel(
            "ensemble", list(data.arms), [m for m in models.values() if isinstance(m, UpliftModel)]
        )
    t_model = models.get("t") or fit_model(
        "t", tr, tr.primary, dict(config.lightgbm), config, config.seed
    )
    q_va = q_matrix(t_model, va.X, va)
    effects = {k: objective_effect(m, va.X, va) for k, m in models.items()}
    rows = []
    for kind, eff in effects.items():
        choice = choose(net_values(eff, centers, 1.0, va.unit_costs), None, greedy)
        _, value = policy_value(choice, va, q_va)
        _, ips_value = policy_value(choice, va, None)
        row: dict[str, Any] = {"learner": kind, "value_dr": value, "value_ips": ips_value}
        for j, arm in enumerate(data.arms[1:], start=1):
            pair = (va.arm == 0) | (va.arm == j)
            row[f"qini_{arm}"] = qini_auc_score(
                va.outcome(va.primary)[pair],
                eff[pair, j],
                (va.arm[pair] == j).astype(int),
                sample_weight=1.0 / va.propensity[pair],
            )
        rows.append(row)
        if tracker:
            params = (
                best_params.get(kind, {})
                if kind != "ensemble"
                else {"members": ",".join(config.learners)}
            )
            tracker(
                "learner",
                f"learner-{kind}",
                params,
                {k: float(v) for k, v in row.items() if k != "learner"},
            )
    learner_table = (
        pd.DataFrame(rows).sort_values("value_dr", ascending=False).reset_index(drop=True)
    )
    chosen = str(learner_table.loc[0, "learner"])
    log.info("learners on validation:\n%s", learner_table.to_string(index=False))

    # Decision tuning on out-of-fold effects of the chosen learner (training slice only);
    # the same out-of-fold effects calibrate the net value and its confidence bound.
    calib: NetCalibration | None = None
    if config.decision.tune or config.decision.calibrate:
        oof_eff, oof_q = out_of_fold(chosen, tr, best_params, config)
        if config.decision.calibrate:
            calib = calibrate_effects(oof_eff, oof_q, tr, config)
    if config.decision.tune:
        eff_oof, gate_oof = calibrated(oof_eff, calib, tr.unit_costs)
        tuning_d = tune_decision(eff_oof, oof_q, tr, centers, config, gate_oof)
        decision, decision_table = tuning_d.params, tuning_d.table
    else:
        decision = DecisionParams(config.decision.shrinkage, config.decision.switch_margin, d)
        decision_table = pd.DataFrame()

    # Policies on the validation slice.
    eff_va, gate_va = calibrated(effects[chosen], calib, va.unit_costs)

    def decide(params: DecisionParams) -> NDArray[np.int64]:
        net = _gated(net_values(eff_va, centers, params.shrinkage, va.unit_costs), gate_va)
        return choose(net, None, params)

    learned = decide(decision)
    confirmed = True
    if config.decision.require_confident_gain and (learned != decision.default_arm).any():
        # Held-out confirmation: personalise only if it also beats the default arm on the
        # validation slice (gain - confirm_z * se > 0): the best of many out-of-fold grid points
        # is optimistic, the validation slice is an independent check.
        base = np.full(len(va), decision.default_arm)
        c_learned, _ = policy_value(learned, va, q_va)
        c_base, _ = policy_value(base, va, q_va)
        check = est.paired_difference(c_learned, c_base)
        if not check.value - config.decision.confirm_z * check.se > 0:
            confirmed = False
            decision = DecisionParams(0.0, 0.0, decision.default_arm)
            learned = decide(decision)
    gate_check: dict[str, float] = {}
    if gate_va is not None:
        # The net-value gate withholds benefits that are not confidently worth their cost. With
        # heavy-tailed rewards that bound is wide and the gate can withhold a profitable benefit
        # from everyone. Keep it only where it does not lower the policy value measured on every
        # row not used to fit it: cross-fitted on the training slice (calibration fitted on the
        # other folds) plus the validation slice, with the same decision parameters and without
        # the gate (value + gate_keep_z * se >= 0; z = 0: by the point estimate).
        ungated = choose(
            net_values(effects[chosen], centers, decision.shrinkage, va.unit_costs),
            None,
            decision,
        )
        if (ungated != learned).any():
            eff_cf, gate_cf = crossfit_calibrated(oof_eff, oof_q, tr, config)
            tr_gated = choose(
                _gated(net_values(eff_cf, centers, decision.shrinkage, tr.unit_costs), gate_cf),
                None,
                decision,
            )
            tr_ungated = choose(
                net_values(oof_eff, centers, decision.shrinkage, tr.unit_costs), None, decision
            )
            diff = est.paired_difference(
                np.r_[policy_value(tr_gated, tr, oof_q)[0], policy_value(learned, va, q_va)[0]],
                np.r_[policy_value(tr_ungated, tr, oof_q)[0], policy_value(ungated, va, q_va)[0]],
            )
            gate_check = {"gate_gain": diff.value, "gate_gain_se": diff.se}
            # A personalised decision was tuned and confirmed *with* the gate; dropping the gate
            # there (same parameters, never tuned without it) needs the confirmation's strength.
            keep_z = config.decision.gate_keep_z
            if decision.shrinkage > 0:
                keep_z = max(keep_z, config.decision.confirm_z)
            if diff.value + keep_z * diff.se < 0:
                calib, gate_va, eff_va = None, None, effects[chosen]
                learned = ungated
    greedy_choice = choose(net_values(effects[chosen], centers, 1.0, va.unit_costs), None, greedy)
    pols = {"learned": learned, "learned (greedy, no shrinkage)": greedy_choice}
    pols.update(baseline_policies(len(va), data.arms))
    evaluation = evaluate_policies(pols, va.arm, va.propensity, va.reward(), q_va)

    # Final models: refit on all rows (both outcomes) with the chosen learner.
    fit_on = data if refit else tr
    outcomes = ["conversion", "revenue"] if data.has_revenue else ["conversion"]
    final: dict[str, Model] = {}
    for outcome in outcomes:
        if not refit and outcome == tr.primary:
            final[outcome] = models[chosen]
            continue
        final[outcome] = fit_model(
            chosen, fit_on, outcome, _params_for(chosen, best_params, config), config, config.seed
        )
    final_centers = arm_effects(fit_on) if refit else centers
    matcher = BenefitMatcher(
        arms=list(data.arms),
        schema=schema,
        models=final,  # type: ignore[arg-type]
        objective=data.objective,
        costs={a: float(c) for a, c in zip(data.arms, data.costs, strict=True)},
        centers=[float(c) for c in final_centers],
        decision=DecisionParams(
            decision.shrinkage,
            decision.switch_margin,
            default_arm(final_centers.copy(), data.unit_costs),
        ),
        margin_rate=data.margin_rate,
        conversion_value=data.conversion_value,
        exploration=config.exploration,
        calibration=calib,
        learner=chosen,
        metadata={
            "params": _params_for(chosen, best_params, config),
            "outcome_centers": {
                o: hajek_effects(
                    fit_on.outcome(o), fit_on.arm, fit_on.propensity, len(data.arms)
                ).tolist()
                for o in outcomes
            },
        },
    )
    ev = evaluation.set_index("policy")
    metrics = {
        "policy_value_dr": float(ev.loc["learned", "dr"]),
        "policy_value_ips": float(ev.loc["learned", "ips"]),
        "policy_value_snips": float(ev.loc["learned", "snips"]),
        "policy_gain_vs_best_single_dr": float(ev.loc["learned", "dr_diff"]),
        "policy_gain_vs_best_single_ips": float(ev.loc["learned", "ips_diff"]),
        "shrinkage": decision.shrinkage,
        "switch_margin": decision.switch_margin,
        "share_personalised": float((learned != decision.default_arm).mean()),
        "personalisation_confirmed": float(confirmed),
        "net_value_gate": float(calib is not None),
        **gate_check,
        "share_given_benefit": float((learned != 0).mean()),
    }
    return CoreResult(
        matcher,
        chosen,
        learner_table,
        evaluation,
        decision_table,
        tuning,
        effects,
        va,
        val_idx,
        q_va,
        metrics,
    )


def _params_for(
    kind: str, best: dict[str, dict[str, Any]], config: BenefitsConfig
) -> dict[str, Any]:
    return best.get(kind, dict(config.lightgbm))


def out_of_fold(
    kind: str, data: Prepared, best_params: dict[str, dict[str, Any]], config: BenefitsConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Out-of-fold objective effects of ``kind`` and T-learner ``q`` for every row."""
    fold = oof_folds(len(data), config)
    eff = np.zeros((len(data), len(data.arms)))
    q = np.zeros_like(eff)
    for f in range(config.cross_fit_folds):
        tr_idx, te_idx = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        tr, te = data.subset(tr_idx), data.subset(te_idx)
        if kind == "ensemble":
            members = [
                fit_model(
                    k, tr, tr.primary, _params_for(k, best_params, config), config, config.seed
                )
                for k in config.learners
            ]
            model: Model = EnsembleModel("ensemble", list(data.arms), members)  # type: ignore[arg-type]
            t_model = (
                members[list(config.learners).index("t")]
                if "t" in config.learners
                else fit_model("t", tr, tr.primary, dict(config.lightgbm), config, config.seed)
            )
        else:
            model = fit_model(
                kind, tr, tr.primary, _params_for(kind, best_params, config), config, config.seed
            )
            t_model = (
                model
                if kind == "t"
                else fit_model(
                    "t", tr, tr.primary, _params_for("t", best_params, config), config, config.seed
                )
            )
        eff[te_idx] = objective_effect(model, te.X, te)
        q[te_idx] = q_matrix(t_model, te.X, te)
    return eff, q


def prepared_from_arrays(
    X: pd.DataFrame,
    arm: Sequence[str],
    propensity: Sequence[float],
    converted: Sequence[float],
    revenue: Sequence[float] | None,
    arms: Sequence[str],
    costs: dict[str, float],
    objective: Objective,
    margin_rate: float | None = None,
    conversion_value: float | None = None,
    member_id: Sequence[Any] | None = None,
) -> Prepared:
    index = {a: i for i, a in enumerate(arms)}
    arm_idx = np.array([index[str(a)] for a in arm], dtype=np.int64)
    n = len(arm_idx)
    return Prepared(
        X.reset_index(drop=True),
        arm_idx,
        np.asarray(propensity, dtype=np.float64),
        np.asarray(converted, dtype=np.float64),
        np.zeros(n) if revenue is None else np.asarray(revenue, dtype=np.float64),
        np.asarray(member_id if member_id is not None else np.arange(n).astype(str), dtype=object),
        list(arms),
        np.array([costs.get(a, 0.0) for a in arms], dtype=np.float64),
        objective,
        margin_rate,
        conversion_value,
        revenue is not None,
    )
