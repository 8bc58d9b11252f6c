"""``train_benefits``: offers log + point-in-time features -> uplift models -> decision layer ->
evaluation table -> MLflow run (parent + children, plots) -> registration and the champion gate."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.benefits.config import BenefitsConfig, ObjectiveChoice, load_benefits_config
from loyalty_ml.benefits.core import (
    CoreResult,
    Prepared,
    fit_benefit_model,
    policy_value,
    prepared_from_arrays,
)
from loyalty_ml.benefits.data import (
    FeatureProvider,
    FeatureSource,
    benefit_costs,
    infer_schema,
    margin_rate_from_products,
    offer_features,
    resolve_objective,
    validate_offer_log,
)
from loyalty_ml.benefits.matcher import BenefitMatcher
from loyalty_ml.contract.io import Dataset
from loyalty_ml.errors import ConfigError
from loyalty_ml.timeutil import to_utc

log = logging.getLogger(__name__)
EXPERIMENT = "benefits"


@dataclass
class BenefitsTrainResult:
    matcher: BenefitMatcher
    objective: str
    objective_reason: str
    learner: str
    evaluation: pd.DataFrame
    learner_table: pd.DataFrame
    decision_table: pd.DataFrame
    metrics: dict[str, float]
    costs: dict[str, float]
    cost_sources: dict[str, str]
    model_name: str
    as_of: pd.Timestamp
    warnings: list[str] = field(default_factory=list)
    run_id: str | None = None
    model_uri: str | None = None
    gate: Any | None = None  # tracking.GateDecision
    core: CoreResult | None = None


def _load_policy_or_none() -> Any | None:
    try:
        from loyalty_ml.policy import load_policy

        return load_policy()
    except (ImportError, ConfigError) as exc:
        log.warning("policy catalogue unavailable (%s): costs from the offers log", exc)
        return None


def prepare_training(
    dataset: Dataset,
    as_of: object | None,
    config: BenefitsConfig,
    objective: ObjectiveChoice | None,
    feature_provider: FeatureProvider | None = None,
    policy: Any | None = None,
) -> tuple[Prepared, Any, pd.DataFrame, dict[str, Any]]:
    """(prepared arrays, feature schema, raw features, context) from a data set."""
    t = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
    cut = dataset.as_of(t)
    dataset.require("offers", purpose="benefit matching")
    offer_log = validate_offer_log(cut.offers, config)
    warnings: list[str] = []
    pol = policy if policy is not None else _load_policy_or_none()
    if pol is not None:
        pol, warnings = pol.with_offer_log_benefits(offer_log.frame)
    orders = cut.orders
    eov = float(orders["amount"].mean()) if len(orders) else None
    costs, sources = benefit_costs(offer_log.arms, offer_log, pol, config.cost_overrides, eov)
    costs_known = any(sources[a] != "unknown (0)" and costs[a] > 0 for a in offer_log.arms[1:])
    margin_rate = config.margin_rate or margin_rate_from_products(cut)
    obj, reason = resolve_objective(
        objective, config, margin_rate, costs_known, offer_log.has_revenue
    )
    provider = feature_provider or FeatureSource(config.feature_source, config.feature_service)
    features = offer_features(cut, offer_log, provider)
    feature_line = (
        provider.describe() if isinstance(provider, FeatureSource) else "features: custom provider"
    )
    schema = infer_schema(features)
    X = schema.transform(features)
    frame = offer_log.frame
    data = prepared_from_arrays(
        X,
        frame["benefit_id"].tolist(),
        frame["propensity"].to_numpy(),
        frame["converted"].to_numpy(),
        frame["revenue"].to_numpy() if offer_log.has_revenue else None,
        offer_log.arms,
        costs,
        obj,
        margin_rate,
        config.conversion_value,
        frame["member_id"].to_numpy(),
    )
    context = {
        "as_of": t,
        "objective_reason": reason,
        "costs": costs,
        "cost_sources": sources,
        "warnings": warnings,
        "policy": pol,
        "features": feature_line,
    }
    return data, schema, features, context


def train_benefits(
    dataset: Dataset,
    as_of: object | None = None,
    config: BenefitsConfig | None = None,
    objective: ObjectiveChoice | None = None,
    trials: int | None = None,
    name: str | None = None,
    *,
    feature_provider: FeatureProvider | None = None,
    policy: Any | None = None,
    track: bool = True,
    register: bool = True,
    announce: Callable[[str], None] | None = None,
) -> BenefitsTrainResult:
    """Train, evaluate and (with ``track``) log/register a benefit matcher for ``dataset``.

    ``announce`` receives the objective line (and cost warnings) as soon as they are known,
    before any model is fitted (the CLI prints them at the start).
    """
    from loyalty_ml.tracking import registered_model_name

    config = config or load_benefits_config()
    n_trials = config.optuna.trials if trials is None else trials
    data, schema, features, ctx = prepare_training(
        dataset, as_of, config, objective, feature_provider, policy
    )
    model_name = registered_model_name("benefits", dataset.name, name)
    log.info("%s; %s", ctx["objective_reason"], ctx["features"])
    if announce is not None:
        announce(ctx["objective_reason"])
        announce(ctx["features"])
        for warning in ctx["warnings"]:
            announce(f"warning: {warning}")
    result = BenefitsTrainResult(
        matcher=None,  # type: ignore[arg-type]
        objective=data.objective,
        objective_reason=ctx["objective_reason"],
        learner="",
        evaluation=pd.DataFrame(),
        learner_table=pd.DataFrame(),
        decision_table=pd.DataFrame(),
        metrics={},
        costs=ctx["costs"],
        cost_sources=ctx["cost_sources"],
        model_name=model_name,
        as_of=ctx["as_of"],
        warnings=ctx["warnings"],
    )
    if not track:
        core = fit_benefit_model(data, schema, config, n_trials)
        return _fill(result, core)

    import mlflow

    from loyalty_ml.tracking import child_run, parent_run, register_and_gate

    def tracker(
        kind: str, run_name: str, params: dict[str, Any], metrics: dict[str, float]
    ) -> None:
        with child_run(run_name, tags={"kind": kind}):
            mlflow.log_params({k: v for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})

    tags = {"dataset": dataset.name, "objective": data.objective, "family": "benefits"}
    with parent_run(EXPERIMENT, f"benefits-{dataset.name}", tags=tags) as run:
        mlflow.log_params(
            {
                "as_of": str(ctx["as_of"]),
                "objective": data.objective,
                "arms": ",".join(data.arms),
                "n_offers": len(data),
                "trials": n_trials,
                "features": ctx["features"][:250],
                "margin_rate": data.margin_rate,
                **{f"cost_{a}": c for a, c in ctx["costs"].items()},
            }
        )
        core = fit_benefit_model(data, schema, config, n_trials, tracker)
        _fill(result, core)
        mlflow.log_params({"learner": core.learner, **core.matcher.metadata.get("params", {})})
        mlflow.log_metrics({k: v for k, v in core.metrics.items() if np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = Path(tmp)
            _log_tables_and_plots(core, tmpdir)
            model_dir = tmpdir / "model_files"
            artifact = core.matcher.save(model_dir)
            mlflow.log_artifacts(str(tmpdir / "report"), artifact_path="report")
            _log_pyfunc(artifact)
        result.run_id = run.info.run_id
        result.model_uri = f"runs:/{run.info.run_id}/model"
        if register:
            val_features = features.iloc[core.validation_index].reset_index(drop=True)

            def evaluate_champion(uri: str) -> float:
                champ = BenefitMatcher.load(uri)
                return champion_value(champ, val_features, core, config.gate.metric)

            metric = config.gate.metric
            result.gate = register_and_gate(
                model_uri=result.model_uri,
                name=model_name,
                metric=metric,
                new_score=core.metrics[metric],
                evaluate_champion=evaluate_champion,
                margin=config.gate.margin,
                tags={"objective": data.objective, "learner": core.learner},
            )
            mlflow.set_tags({"gate": result.gate.alias, "gate_reason": result.gate.reason})
    return result


def champion_value(
    champion: BenefitMatcher, val_features: pd.DataFrame, core: CoreResult, metric: str
) -> float:
    """The champion's policy value on the new model's validation slice (same rows, same reward)."""
    va = core.validation
    _, net = champion.net_matrix(val_features)
    ids = val_features["member_id"].astype(str).reset_index(drop=True)
    choice_names = np.asarray(champion.arms, dtype=object)[
        champion.choose_arms(ids, net, None, None)
    ]
    index = {a: i for i, a in enumerate(va.arms)}
    choice = np.array([index.get(a, -1) for a in choice_names], dtype=np.int64)
    q = None if metric == "policy_value_ips" else core.q_validation
    if q is not None:
        q = np.c_[q, np.zeros(len(q))]  # unknown arms (-1) read a zero outcome model
    _contrib, value = policy_value(choice, va, q)
    if metric == "policy_value_snips":
        pi = (choice == va.arm).astype(float)
        w = pi / va.propensity
        return float((w * va.reward()).sum() / max(w.sum(), 1e-12))
    return value


def _fill(result: BenefitsTrainResult, core: CoreResult) -> BenefitsTrainResult:
    result.matcher = core.matcher
    result.learner = core.learner
    result.evaluation = core.evaluation
    result.learner_table = core.learner_table
    result.decision_table = core.decision_table
    result.metrics = core.metrics
    result.core = core
    return result


def _log_tables_and_plots(core: CoreResult, tmpdir: Path) -> None:
    from loyalty_ml.benefits.plots import curves_figure, effects_figure

    report = tmpdir / "report"
    report.mkdir(parents=True, exist_ok=True)
    core.evaluation.to_csv(report / "policy_evaluation.csv", index=False)
    core.learner_table.to_csv(report / "learners.csv", index=False)
    if len(core.decision_table):
        core.decision_table.to_csv(report / "decision_tuning.csv", index=False)
    if len(core.tuning_table):
        core.tuning_table.to_csv(report / "optuna_trials.csv", index=False)
    va = core.validation
    y = va.outcome(va.primary) * va.scale()
    w = 1.0 / va.propensity
    curves_figure(report / "qini_curves.png", va.arms, y, va.arm, w, core.validation_effects)
    curves_figure(
        report / "uplift_curves.png", va.arms, y, va.arm, w, core.validation_effects, "uplift"
    )
    effects_figure(
        report / "effect_distributions.png",
        va.arms,
        core.validation_effects[core.learner],
        va.objective,
    )


def _log_pyfunc(artifact: Path) -> None:
    import mlflow

    from loyalty_ml.benefits.pyfunc import MatcherModel

    mlflow.pyfunc.log_model(
        name="model",
        python_model=MatcherModel(),
        artifacts={"matcher": str(artifact)},
        pip_requirements=["lightgbm", "pandas", "numpy"],
    )
