"""Run an experiment file: every variant x every time-based fold through the job's training
entry point, metrics logged into the MLflow experiment ``exp-<name>`` (one parent run, one child
per variant, one metric step per fold) and saved as ``LOYALTY_HOME/experiments/<name>/``.

Training calls run with ``track=False, register=False``: experiments compare, they never promote
a model, and the job's own MLflow runs would land in the job's experiment, not this one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.experiments.spec import RUNNER_KEYS, ExperimentSpec, load_spec
from loyalty_ml.settings import get_settings


@dataclass
class ExperimentResult:
    spec: ExperimentSpec
    metrics: pd.DataFrame  # long: variant, fold, as_of, metric, value
    out_dir: Path
    run_id: str | None = None
    table: pd.DataFrame | None = None
    plot_path: Path | None = None


def _dotted(model: Any, overrides: dict[str, Any]) -> Any:
    """A copy of a pydantic config with dotted-key overrides (validated again)."""
    data = model.model_dump()
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return type(model).model_validate(data)


def fold_dates(spec: ExperimentSpec, dataset: Any) -> list[pd.Timestamp]:
    from loyalty_ml.timeutil import to_utc

    latest = to_utc(spec.as_of) if spec.as_of else dataset.latest_timestamp()
    return [latest - pd.Timedelta(days=k * spec.fold_spacing_days) for k in range(spec.folds)]


@contextlib.contextmanager
def _churn_provider(
    provider_name: str, families: list[str] | None, cache: dict[Any, pd.DataFrame]
) -> Iterator[None]:
    """Memoise churn features per origin across variants and folds (folds 30 days apart share
    most origins; recomputing them dominated run time), and support feature-family ablation.

    ``train_churn`` takes a provider *name*, so its ``resolve_provider`` is swapped for the
    duration of the call. Valid because one experiment run always reads the same data set and a
    provider only sees the data cut at the origin.
    """
    import loyalty_ml.churn.job as job
    from loyalty_ml.churn.features import bgnbd_features
    from loyalty_ml.timeutil import to_utc

    original = job.resolve_provider
    base: Any
    if families:
        from loyalty_ml.features.pipeline import build_member_features

        label = "pipeline-" + "+".join(families)

        def _restricted(dataset: Any, as_of: pd.Timestamp) -> pd.DataFrame:
            frame = build_member_features(dataset, to_utc(as_of), families=list(families)).copy()
            frame["member_id"] = frame["member_id"].astype("string")
            return frame.merge(bgnbd_features(dataset, as_of), on="member_id", how="left")

        base = _restricted
    else:
        label, base = original(provider_name)

    def provider(dataset: Any, as_of: pd.Timestamp) -> pd.DataFrame:
        key = (label, pd.Timestamp(as_of))
        if key not in cache:
            cache[key] = base(dataset, as_of)
        return cache[key].copy()

    job.resolve_provider = lambda name="auto": (label, provider)  # type: ignore[assignment]
    try:
        yield
    finally:
        job.resolve_provider = original


def _train_once(
    spec: ExperimentSpec,
    dataset: Any,
    as_of: pd.Timestamp,
    overrides: dict[str, Any],
    features: dict[Any, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """One training; returns {metric: value} (recs: {method: {metric: value}})."""
    config_overrides = {k: v for k, v in overrides.items() if k not in RUNNER_KEYS}
    if spec.job == "churn":
        from loyalty_ml.churn.config import load_churn_config
        from loyalty_ml.churn.job import train_churn

        cfg = _dotted(load_churn_config(), config_overrides)
        families = overrides.get("families")
        with _churn_provider(overrides.get("provider", "auto"), families, features or {}):
            res = train_churn(
                dataset,
                as_of,
                cfg,
                spec.trials,
                track=False,
                register=False,
                backtest=False,
                plots=False,
            )
        return dict(res.gate_metrics)
    if spec.job == "recs":
        from loyalty_ml.recs.config import load_recs_config
        from loyalty_ml.recs.train import train_recs

        cfg = _dotted(load_recs_config(), config_overrides)
        recs = train_recs(dataset, as_of, cfg, spec.trials or None, track=False, register=False)
        return {"__methods__": recs.metrics}
    from loyalty_ml.benefits.config import load_benefits_config
    from loyalty_ml.benefits.train import train_benefits

    cfg = _dotted(load_benefits_config(), config_overrides)
    benefits = train_benefits(
        dataset, as_of, cfg, None, spec.trials or None, track=False, register=False
    )
    return dict(benefits.metrics)


def _variant_metrics(
    spec: ExperimentSpec, raw: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, float]:
    if spec.job == "recs":
        methods = raw["__methods__"]
        method = overrides.get("method", "blend")
        return {k: float(v) for k, v in methods.get(method, {}).items()}
    return {k: float(v) for k, v in raw.items() if isinstance(v, int | float | np.number)}


def run_experiment(
    name_or_path: str | Path | ExperimentSpec,
    *,
    dataset: Any = None,
    folds: int | None = None,
    variants: list[str] | None = None,
    track: bool = True,
    compare: bool = True,
    progress: Any = None,
    overrides: dict[str, Any] | None = None,
) -> ExperimentResult:
    """Run all variants over the time-based folds; returns the long metrics frame (and, with
    ``compare``, the comparison table and plot). ``dataset`` skips loading ``spec.data``."""
    spec = name_or_path if isinstance(name_or_path, ExperimentSpec) else load_spec(name_or_path)
    if folds is not None:
        spec = spec.model_copy(update={"folds": folds})
    if overrides:
        # e.g. {"provider": "builtin"} for a cheap demo run; merged under each variant's own.
        spec = spec.model_copy(update={"base": {**spec.base, **overrides}})
    if dataset is None:
        from loyalty_ml.contract.validate import load_valid_dataset

        dataset = load_valid_dataset(spec.data_path())
    chosen = [v for v in spec.variants if not variants or v.name in variants]
    dates = fold_dates(spec, dataset)
    out_dir = get_settings().path("experiments", spec.name, ".keep").parent
    rows: list[dict[str, Any]] = []
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    features: dict[Any, pd.DataFrame] = {}
    for variant in chosen:
        overrides = {**spec.base, **variant.overrides}
        for k, as_of in enumerate(dates):
            # recs variants that differ only by `method` share one training per fold.
            key = (
                repr(sorted((o, repr(v)) for o, v in overrides.items() if o != "method")),
                str(as_of),
            )
            start = time.perf_counter()
            if spec.job != "recs" or key not in cache:
                cache[key] = _train_once(spec, dataset, as_of, overrides, features)
            metrics = _variant_metrics(spec, cache[key], overrides)
            seconds = time.perf_counter() - start
            if progress:
                progress(
                    f"{variant.name} fold {k} ({as_of.date()}): {spec.metric}={metrics.get(spec.metric, float('nan')):.4f}"
                )
            for metric, value in {**metrics, "seconds": seconds}.items():
                rows.append(
                    {
                        "variant": variant.name,
                        "fold": k,
                        "as_of": as_of,
                        "metric": metric,
                        "value": value,
                    }
                )
    frame = pd.DataFrame(rows, columns=["variant", "fold", "as_of", "metric", "value"])
    frame.to_csv(out_dir / "metrics.csv", index=False)
    (out_dir / "spec.json").write_text(spec.model_dump_json(indent=2))
    result = ExperimentResult(spec, frame, out_dir)
    if compare:
        from loyalty_ml.experiments.compare import compare_frame

        result.table, result.plot_path = compare_frame(frame, spec, out_dir)
    if track:
        result.run_id = _log(spec, frame, result)
    return result


def _log(spec: ExperimentSpec, frame: pd.DataFrame, result: ExperimentResult) -> str:
    import mlflow

    from loyalty_ml.tracking import child_run, parent_run

    tags = {"job": spec.job, "experiment_file": spec.name}
    with parent_run(
        spec.mlflow_experiment, f"{spec.name}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}", tags
    ) as run:
        mlflow.log_params(
            {"job": spec.job, "data": spec.data, "folds": spec.folds, "metric": spec.metric}
        )
        mlflow.log_text(spec.model_dump_json(indent=2), "spec.json")
        for variant in spec.variants:
            part = frame[frame["variant"] == variant.name]
            if part.empty:
                continue
            with child_run(variant.name, {**tags, "variant": variant.name}):
                flat = {**spec.base, **variant.overrides}
                mlflow.log_params({k[:250]: str(v)[:500] for k, v in flat.items()})
                for row in part.itertuples(index=False):
                    mlflow.log_metric(_metric_key(row.metric), float(row.value), step=int(row.fold))
                if result.table is not None:
                    mine = result.table[result.table["variant"] == variant.name]
                    for r in mine.itertuples(index=False):
                        mlflow.log_metrics(
                            {
                                f"{_metric_key(r.metric)}_mean": float(r.mean),
                                f"{_metric_key(r.metric)}_ci_half": float(r.ci_half),
                            }
                        )
        if result.plot_path is not None:
            mlflow.log_artifact(str(result.plot_path))
            mlflow.log_artifact(str(result.out_dir / "comparison.csv"))
        return str(run.info.run_id)


def _metric_key(name: str) -> str:
    # MLflow metric names allow [A-Za-z0-9_-./ ]; "ndcg@10" becomes "ndcg_at_10".
    return name.replace("@", "_at_")
