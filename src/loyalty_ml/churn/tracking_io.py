"""MLflow side of the churn job: params, metrics, plots, the model (pyfunc wrapping the plain
artifact, with a signature and explicit pip requirements), registration and the gate."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loyalty_ml.churn.model import ChurnModel, prepare_matrix
from loyalty_ml.churn.reasons import grouped_contributions

if TYPE_CHECKING:
    from loyalty_ml.churn.config import ChurnConfig
    from loyalty_ml.churn.job import ChurnTrainResult

ARTIFACT_KEY = "churn_model"


def pip_requirements() -> list[str]:
    import lightgbm
    import numpy
    import pandas
    import scipy
    import sklearn

    return [
        f"lightgbm=={lightgbm.__version__}",
        f"numpy=={numpy.__version__}",
        f"pandas=={pandas.__version__}",
        f"scipy=={scipy.__version__}",
        f"scikit-learn=={sklearn.__version__}",
    ]


def _flatten(prefix: str, data: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(data, dict):
        for k, v in data.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = data
    return out


def _clean(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def evaluate_uri(model_uri: str, frame: pd.DataFrame) -> float:
    """Raw-score AUC of a registered model on a labelled slice (the gate's comparison)."""
    from sklearn.metrics import roc_auc_score

    model = load_model_from_uri(model_uri)
    return float(roc_auc_score(frame["churned"], model.raw_score(frame)))


def load_model_from_uri(model_uri: str) -> ChurnModel:
    import mlflow

    from loyalty_ml.tracking import configure_mlflow

    configure_mlflow()
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    for candidate in (local / "artifacts" / ARTIFACT_KEY, local / ARTIFACT_KEY, local):
        if (candidate / "churn_model.json").is_file():
            return ChurnModel.load(candidate)
    raise FileNotFoundError(f"no churn model artifact under {model_uri}")


def log_training(
    result: ChurnTrainResult,
    cfg: ChurnConfig,
    *,
    cal_frame: pd.DataFrame,
    eval_scores: dict[str, np.ndarray],
    eval_labels: np.ndarray,
    register: bool,
    plots: bool,
    run: Any,
) -> None:
    import mlflow
    from mlflow.models import infer_signature

    from loyalty_ml.churn.churn_pyfunc import ChurnPyfunc
    from loyalty_ml.churn.plots import write_plots
    from loyalty_ml.tracking import register_and_gate

    model = result.model
    params = _flatten("", cfg.model_dump(exclude={"reasons", "optuna"}), {})
    params.update({f"best.{k}": v for k, v in result.best_params.items()})
    params.update(
        {
            "provider": result.provider,
            "as_of": str(result.as_of),
            "train_origins": ",".join(o[:10] for o in model.meta["train_origins"]),
            "calibration_origin": model.meta["calibration_origin"][:10],
            **{f"rows.{k}": v for k, v in result.n_rows.items()},
            **{f"excluded.{k}": v for k, v in result.excluded.items()},
        }
    )
    mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
    mlflow.log_metrics({f"gate_{k}": v for k, v in _clean(result.gate_metrics).items()})
    for scorer, metrics in result.backtest.items():
        mlflow.log_metrics({f"bt_{scorer}_{k}": v for k, v in _clean(metrics).items()})
    mlflow.log_metrics({f"time_{k}": v for k, v in result.timings.items()})
    if result.study_name:
        mlflow.set_tag("optuna_study", result.study_name)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if plots:
            sample = cal_frame.sample(min(len(cal_frame), 5000), random_state=0)
            # One SHAP pass (~2k rows/s) serves both the per-feature and the per-reason summary.
            contrib = model.contributions(sample)
            groups, _ = grouped_contributions(
                contrib, model.feature_names, model.reason_map, model.reason_codes
            )
            by_feature = dict(
                zip(model.feature_names, np.abs(contrib[:, :-1]).mean(axis=0).tolist(), strict=True)
            )
            codes = [*model.reason_codes, "other"]
            by_reason = dict(zip(codes, np.abs(groups).mean(axis=0).tolist(), strict=True))
            write_plots(tmp_path / "plots", eval_labels, eval_scores, by_feature, by_reason)
            mlflow.log_artifacts(str(tmp_path / "plots"), "plots")
        art = model.save(tmp_path / ARTIFACT_KEY)
        sample = cal_frame.head(100)
        sample_in = pd.concat(
            [sample[["member_id"]].astype(str), prepare_matrix(sample, model.feature_names)], axis=1
        )
        signature = infer_signature(
            sample_in, model.score_frame(sample).astype({"risk_band": str, "value_segment": str})
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ChurnPyfunc(),
            artifacts={ARTIFACT_KEY: str(art)},
            signature=signature,
            pip_requirements=pip_requirements(),
        )
    result.run_id = run.info.run_id
    result.model_uri = info.model_uri
    if register:
        decision = register_and_gate(
            model_uri=info.model_uri,
            name=result.model_name,
            metric=f"raw_{cfg.gate.metric}",
            new_score=float(result.gate_metrics[cfg.gate.metric]),
            evaluate_champion=lambda uri: evaluate_uri(uri, cal_frame),
            margin=cfg.gate.margin,
            higher_is_better=cfg.gate.higher_is_better,
            tags={"dataset": str(model.meta.get("dataset")), "as_of": str(result.as_of)},
        )
        result.gate_alias = decision.alias
        result.gate_reason = decision.reason
        result.model_version = str(decision.version)
        mlflow.set_tags({"gate_alias": decision.alias, "gate_reason": decision.reason})
