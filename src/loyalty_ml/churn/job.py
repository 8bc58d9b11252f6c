"""The churn training job (wiring): snapshots -> features -> labels -> LightGBM (+ Optuna) ->
calibration on a later slice -> backtest vs baselines -> MLflow run, plots, registry gate.

Time layout for ``as_of`` = A, horizon H, spacing S (all origins have complete horizons by A):

- final model: training origins ``A - H - k*S`` (k = 1..n_train), calibration origin ``A - H``;
  the gate compares raw-score AUC of the new model and the champion on the calibration origin
  (the booster never trained on it).
- backtest (honest, reported): everything shifted by H — evaluation origin ``A - H`` labelled up to
  A, calibration origin ``A - 2H``, training origins before it; the model and the baselines are
  scored on the same evaluation members.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.churn.baselines import BASELINES, PROBABILISTIC, baseline_scores
from loyalty_ml.churn.calibration import fit_calibrator
from loyalty_ml.churn.config import ChurnConfig, load_churn_config
from loyalty_ml.churn.features import (
    FeatureProvider,
    feature_columns,
    provider_batch,
    resolve_provider,
)
from loyalty_ml.churn.labels import build_labels, snapshot_origins
from loyalty_ml.churn.metrics import churn_metrics
from loyalty_ml.churn.model import (
    ChurnModel,
    build_reason_map,
    prepare_matrix,
    resolve_threads,
    train_booster,
)
from loyalty_ml.churn.reasons import shared_reason_codes
from loyalty_ml.churn.value import VALUE_COLUMN, SegmentCuts, fit_segment_cuts
from loyalty_ml.contract.io import Dataset
from loyalty_ml.errors import LoyaltyError
from loyalty_ml.timeutil import to_utc

log = logging.getLogger(__name__)
MIN_ROWS = 50


@dataclass
class ChurnTrainResult:
    model: ChurnModel
    model_name: str
    as_of: pd.Timestamp
    provider: str
    gate_metrics: dict[str, float]
    backtest: dict[str, dict[str, float]] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    n_rows: dict[str, int] = field(default_factory=dict)
    best_params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    gate_alias: str | None = None
    gate_reason: str | None = None
    model_version: str | None = None
    run_id: str | None = None
    model_uri: str | None = None
    study_name: str | None = None
    local_path: Path | None = None
    # The evaluation slice (origin as_of - H, complete labels): features, labels and, when the
    # backtest ran, every scorer's score per member (model = backtest model, calibrated).
    eval_frame: pd.DataFrame | None = None
    eval_scores: pd.DataFrame | None = None

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per scorer on the backtest slice (or the gate slice when no backtest ran)."""
        source = self.backtest or {"model": self.gate_metrics}
        rows = []
        for name, m in source.items():
            rows.append(
                {
                    "scorer": name,
                    "auc": m.get("auc"),
                    "pr_auc": m.get("pr_auc"),
                    "log_loss": m.get("log_loss"),
                    "brier": m.get("brier"),
                    "ece": m.get("ece"),
                    "lift_10": m.get("lift_10"),
                    "capture_10": m.get("capture_10"),
                }
            )
        return rows


@dataclass
class Slices:
    """Features + labels per origin, computed once and shared by the fits."""

    dataset: Dataset
    provider: FeatureProvider
    horizon: int
    definition: str
    data_end: pd.Timestamp
    frames: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict)
    excluded: dict[pd.Timestamp, dict[str, int]] = field(default_factory=dict)
    _feats: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict, repr=False)

    def get(self, origin: pd.Timestamp) -> pd.DataFrame:
        if origin not in self.frames:
            labels = build_labels(
                self.dataset,
                origin,
                self.horizon,
                definition=self.definition,
                data_end=self.data_end,
            )
            self.excluded[origin] = labels.excluded
            if len(labels.frame) == 0:
                self.frames[origin] = pd.DataFrame()
            else:
                feats = self._feats.pop(origin, None)
                if feats is None:
                    feats = self.provider(self.dataset.as_of(origin), origin)
                feats = feats.assign(member_id=feats["member_id"].astype("string"))
                frame = feats.merge(
                    labels.frame[["member_id", "churned"]], on="member_id", how="inner"
                )
                frame["origin"] = origin
                self.frames[origin] = frame
        return self.frames[origin]

    def prefetch(self, origins: list[pd.Timestamp], batch: Any | None) -> None:
        """Features of every origin with complete labels in one provider pass (when the provider
        has a batch form); ``get`` then only joins the labels."""
        if batch is None:
            return
        todo = [o for o in dict.fromkeys(origins) if o not in self.frames and o not in self._feats]
        todo = [o for o in todo if o + pd.Timedelta(days=self.horizon) <= self.data_end]
        self._feats.update(batch(self.dataset, todo))

    def usable(self, origin: pd.Timestamp) -> bool:
        frame = self.get(origin)
        return len(frame) >= MIN_ROWS and frame["churned"].nunique() == 2

    def stack(self, origins: list[pd.Timestamp]) -> pd.DataFrame:
        return pd.concat([self.get(o) for o in origins], ignore_index=True)


def _plan(
    anchor: pd.Timestamp, cfg: ChurnConfig, slices: Slices, earliest: pd.Timestamp
) -> tuple[list[pd.Timestamp], pd.Timestamp] | None:
    """(training origins, calibration origin) with calibration at ``anchor``; None if unusable."""
    if anchor < earliest or not slices.usable(anchor):
        return None
    spacing = cfg.snapshots.spacing_days
    train = snapshot_origins(
        anchor - pd.Timedelta(days=spacing), spacing, cfg.snapshots.n_train, earliest=earliest
    )
    train = [o for o in train if slices.usable(o)]
    if not train:
        return None
    return train, anchor


def _lgb_params(cfg: ChurnConfig, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = {"objective": "binary", "verbose": -1, **cfg.lightgbm}
    if cfg.monotone:
        params["monotone_patterns"] = [list(p) for p in cfg.monotone]
    params.update(overrides or {})
    params["num_threads"] = resolve_threads(params.get("num_threads", 0))
    return params


def _fit(
    slices: Slices,
    train: list[pd.Timestamp],
    cal: pd.Timestamp,
    features: list[str],
    params: dict[str, Any],
    method: str,
) -> tuple[Any, Any, pd.DataFrame, np.ndarray]:
    """Booster on the training origins, calibrator on the (later) calibration origin."""
    tr = slices.stack(train)
    params = dict(params)
    params.pop("early_stopping_rounds", None)
    booster = train_booster(prepare_matrix(tr, features), tr["churned"].to_numpy(), params)
    cal_frame = slices.get(cal)
    raw = booster.predict(prepare_matrix(cal_frame, features), raw_score=True)
    calibrator = fit_calibrator(1 / (1 + np.exp(-raw)), cal_frame["churned"].to_numpy(), method)
    return booster, calibrator, cal_frame, raw


def _search_value(trial: Any, name: str, spec: list[Any]) -> Any:
    lo, hi, kind = spec[0], spec[1], spec[2] if len(spec) > 2 else "float"
    if kind == "log":
        return trial.suggest_float(name, float(lo), float(hi), log=True)
    if kind == "int":
        return trial.suggest_int(name, int(lo), int(hi))
    if kind == "int_log":
        return trial.suggest_int(name, int(lo), int(hi), log=True)
    return trial.suggest_float(name, float(lo), float(hi))


def tune(
    slices: Slices,
    train: list[pd.Timestamp],
    features: list[str],
    cfg: ChurnConfig,
    trials: int,
    study_name: str,
    storage: str,
    track: bool,
) -> tuple[dict[str, Any], Any]:
    """Optuna over expanding-window time folds of the training origins, with pruning.

    Fold f validates on the f-th latest training origin, training on every origin before it; the
    trial's AUC after each fold is reported so the median pruner can stop weak trials early."""
    import optuna

    from loyalty_ml.tracking import child_run

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n_folds = max(1, min(cfg.optuna.n_folds, len(train) - 1))
    if len(train) < 2:
        raise LoyaltyError("tuning needs at least two training origins (try a smaller spacing)")
    folds = [(train[: len(train) - f], train[len(train) - f]) for f in range(n_folds, 0, -1)]
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
        if cfg.optuna.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction=cfg.optuna.direction,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=42),
        pruner=pruner,
    )
    base = _lgb_params(cfg)

    def objective(trial: optuna.Trial) -> float:
        from sklearn.metrics import roc_auc_score

        params = dict(base)
        for name, spec in cfg.optuna.search_space.items():
            params[name] = _search_value(trial, name, spec)
        scores, iters = [], []
        ctx = child_run(f"trial-{trial.number}") if track else _null()
        with ctx:
            for step, (fold_train, fold_valid) in enumerate(folds):
                tr = slices.stack(fold_train)
                va = slices.get(fold_valid)
                booster = train_booster(
                    prepare_matrix(tr, features),
                    tr["churned"].to_numpy(),
                    params,
                    valid=(prepare_matrix(va, features), va["churned"].to_numpy()),
                )
                pred = booster.predict(
                    prepare_matrix(va, features), num_iteration=booster.best_iteration or None
                )
                scores.append(float(roc_auc_score(va["churned"], pred)))
                iters.append(int(booster.best_iteration or params.get("num_boost_round", 300)))
                trial.report(float(np.mean(scores)), step)
                if track:
                    import mlflow

                    mlflow.log_metric("fold_auc", scores[-1], step=step)
                if trial.should_prune():
                    if track:
                        import mlflow

                        mlflow.set_tag("state", "pruned")
                        mlflow.log_params({k: params[k] for k in cfg.optuna.search_space})
                    raise optuna.TrialPruned()
            trial.set_user_attr("num_boost_round", int(np.mean(iters)))
            if track:
                import mlflow

                mlflow.log_params({k: params[k] for k in cfg.optuna.search_space})
                mlflow.log_metric("cv_auc", float(np.mean(scores)))
                mlflow.set_tag("state", "complete")
        return float(np.mean(scores))

    study.optimize(objective, n_trials=trials, gc_after_trial=False)
    best = dict(study.best_trial.params)
    best["num_boost_round"] = study.best_trial.user_attrs.get(
        "num_boost_round", base.get("num_boost_round", 300)
    )
    return best, study


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _evaluate(
    booster: Any,
    calibrator: Any,
    frame: pd.DataFrame,
    features: list[str],
    dataset: Dataset | None,
    origin: pd.Timestamp,
    horizon: int,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Metrics of the model and every baseline on the same members of one slice."""
    raw = booster.predict(prepare_matrix(frame, features), raw_score=True)
    p = calibrator(1 / (1 + np.exp(-raw)))
    y = frame["churned"].to_numpy()
    scores = {"model": p}
    metrics = {"model": churn_metrics(y, p)}
    if dataset is not None:
        base = baseline_scores(dataset, origin, horizon)
        aligned = frame[["member_id"]].merge(base, on="member_id", how="left")
        for name in BASELINES:
            s = aligned[name].to_numpy(dtype=float)
            s = np.nan_to_num(s, nan=np.nanmedian(s))
            scores[name] = s
            metrics[name] = churn_metrics(y, s, probabilities=name in PROBABILISTIC)
    return metrics, scores


def train_churn(
    dataset: Dataset,
    as_of: object | None = None,
    config: ChurnConfig | None = None,
    trials: int = 0,
    name: str | None = None,
    *,
    provider: str = "auto",
    track: bool = True,
    register: bool = True,
    backtest: bool = True,
    plots: bool = True,
    experiment: str = "churn",
    out_dir: Path | str | None = None,
) -> ChurnTrainResult:
    """Train, evaluate, log and (optionally) register a churn model. The lead's pipeline and the
    CLI call this; ``track=False`` runs without MLflow (tests, benchmarks)."""
    from loyalty_ml.settings import get_settings
    from loyalty_ml.tracking import registered_model_name, safe_name

    cfg = config or load_churn_config()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    t_asof = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
    data = dataset.as_of(t_asof)
    horizon = cfg.label.horizon_days
    provider_name, provider_fn = resolve_provider(provider)
    slices = Slices(data, provider_fn, horizon, cfg.label.definition, t_asof)
    earliest = data.members["joined_at"].min()
    model_name = registered_model_name("churn", dataset.name, name)
    spacing = cfg.snapshots.spacing_days
    candidates = [
        anchor - pd.Timedelta(days=spacing * k)
        for anchor in (t_asof - pd.Timedelta(days=horizon), t_asof - pd.Timedelta(days=2 * horizon))
        for k in range(cfg.snapshots.n_train + 1)
    ]
    slices.prefetch([o for o in candidates if o >= earliest], provider_batch(provider_name))

    final = _plan(t_asof - pd.Timedelta(days=horizon), cfg, slices, earliest)
    if final is None:
        raise LoyaltyError(
            f"not enough history for a {horizon}-day churn label before {t_asof.date()}: need "
            f"members joined by {(t_asof - pd.Timedelta(days=horizon + cfg.snapshots.spacing_days)).date()}"
            " (try a shorter --horizon or an earlier snapshot spacing)"
        )
    train_origins, cal_origin = final
    features = feature_columns(slices.get(cal_origin))
    timings["features_labels_s"] = time.perf_counter() - started

    params = _lgb_params(cfg)
    best_params: dict[str, Any] = {}
    study_name = None
    run_ctx = _null()
    if track:
        from loyalty_ml.tracking import parent_run

        run_ctx = parent_run(
            experiment,
            f"{model_name}-{t_asof:%Y%m%d}",
            tags={"dataset": dataset.name, "model_name": model_name, "provider": provider_name},
        )
    result: ChurnTrainResult
    with run_ctx as run:
        if trials > 0:
            t0 = time.perf_counter()
            storage = f"sqlite:///{get_settings().path('optuna', 'optuna.db')}"
            study_name = f"{safe_name(model_name)}-h{horizon}-{t_asof:%Y%m%d}"
            best_params, _ = tune(
                slices, train_origins, features, cfg, trials, study_name, storage, track
            )
            params.update(best_params)
            timings["tuning_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        booster, calibrator, cal_frame, cal_raw = _fit(
            slices, train_origins, cal_origin, features, params, cfg.calibration.method
        )
        timings["train_s"] = time.perf_counter() - t0
        y_cal = cal_frame["churned"].to_numpy()
        gate_metrics = churn_metrics(y_cal, 1 / (1 + np.exp(-cal_raw)))

        backtest_metrics: dict[str, dict[str, float]] = {}
        bt_scores: dict[str, np.ndarray] = {}
        bt_frame = cal_frame
        if backtest:
            t0 = time.perf_counter()
            bt = _plan(cal_origin - pd.Timedelta(days=horizon), cfg, slices, earliest)
            if bt is not None:
                bt_booster, bt_cal, _, _ = _fit(
                    slices, bt[0], bt[1], features, params, cfg.calibration.method
                )
                backtest_metrics, bt_scores = _evaluate(
                    bt_booster, bt_cal, cal_frame, features, data, cal_origin, horizon
                )
                backtest_metrics["model_uncalibrated"] = churn_metrics(
                    y_cal,
                    1
                    / (
                        1
                        + np.exp(
                            -bt_booster.predict(prepare_matrix(cal_frame, features), raw_score=True)
                        )
                    ),
                )
            timings["backtest_s"] = time.perf_counter() - t0

        codes = shared_reason_codes()
        cuts = (
            fit_segment_cuts(
                cal_frame[VALUE_COLUMN].to_numpy(float),
                cfg.value.low_quantile,
                cfg.value.high_quantile,
                cfg.value.potential_ratio,
            )
            if VALUE_COLUMN in cal_frame.columns
            else SegmentCuts(0.0, 0.0, cfg.value.potential_ratio)
        )
        excluded = _exclusions(slices, [*train_origins, cal_origin], data, t_asof, horizon)
        model = ChurnModel(
            booster=booster,
            feature_names=features,
            calibrator=calibrator,
            horizon_days=horizon,
            definition=cfg.label.definition,
            band_thresholds=list(cfg.bands.thresholds),
            band_labels=list(cfg.bands.labels),
            segment_cuts=cuts,
            reason_codes=codes,
            reason_map=build_reason_map(features, list(cfg.reasons.patterns), codes),
            top_k=cfg.reasons.top_k,
            meta={
                "dataset": dataset.name,
                "as_of": str(t_asof),
                "provider": provider_name,
                "train_origins": [str(o) for o in train_origins],
                "calibration_origin": str(cal_origin),
                "params": {k: v for k, v in params.items()},
            },
        )
        n_rows = {
            "train": int(sum(len(slices.get(o)) for o in train_origins)),
            "calibration": len(cal_frame),
            "features": len(features),
        }
        result = ChurnTrainResult(
            model=model,
            model_name=model_name,
            as_of=t_asof,
            provider=provider_name,
            gate_metrics=gate_metrics,
            backtest=backtest_metrics,
            excluded=excluded,
            n_rows=n_rows,
            best_params=best_params,
            timings=timings,
            study_name=study_name,
        )
        result.eval_frame = cal_frame
        if bt_scores:
            result.eval_scores = pd.DataFrame(
                {"member_id": cal_frame["member_id"].to_numpy(), "churned": y_cal, **bt_scores}
            )
        if out_dir is not None:
            result.local_path = model.save(out_dir)
        if track:
            from loyalty_ml.churn.tracking_io import log_training

            log_training(
                result,
                cfg,
                cal_frame=cal_frame,
                eval_scores=bt_scores or {"model": calibrator(1 / (1 + np.exp(-cal_raw)))},
                eval_labels=(bt_frame["churned"].to_numpy()),
                register=register,
                plots=plots,
                run=run,
            )
    timings["total_s"] = time.perf_counter() - started
    return result


def _exclusions(
    slices: Slices,
    origins: list[pd.Timestamp],
    data: Dataset,
    as_of: pd.Timestamp,
    horizon: int,
) -> dict[str, int]:
    joined_late = sum(slices.excluded.get(o, {}).get("joined_after_origin", 0) for o in origins)
    recent = int((data.members["joined_at"] > as_of - pd.Timedelta(days=horizon)).sum())
    return {
        "member_origins_joined_after_origin": int(joined_late),
        "members_without_complete_horizon": recent,
        "members_total": len(data.members),
    }


def save_local(result: ChurnTrainResult, directory: Path | str | None = None) -> Path:
    target = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="churn-model-"))
    return result.model.save(target)
