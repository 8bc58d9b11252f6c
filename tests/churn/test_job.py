"""The training job end to end on a tiny shop: MLflow runs, plots, registry and the gate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loyalty_ml.churn.config import load_churn_config
from loyalty_ml.churn.job import train_churn
from loyalty_ml.churn.scorer import ChurnScorer
from loyalty_ml.contract.io import Dataset, write_dataset

AS_OF = pd.Timestamp("2025-06-01", tz="UTC")


def _cfg(margin: float):  # type: ignore[no-untyped-def]
    return load_churn_config().with_overrides(
        **{
            "label.horizon_days": 60,
            "snapshots.spacing_days": 30,
            "snapshots.n_train": 3,
            "gate.margin": margin,
            "lightgbm.num_boost_round": 30,
        }
    )


def test_untracked_job_backtests_against_baselines(tiny_shop: Dataset, tmp_path: Path) -> None:
    result = train_churn(
        tiny_shop, AS_OF, _cfg(0.0), track=False, provider="builtin", out_dir=tmp_path / "m"
    )
    assert set(result.backtest) >= {"model", "recency_rule", "rfm_score", "bgnbd_p_no_purchase"}
    assert 0.5 < result.backtest["model"]["auc"] <= 1.0
    assert result.excluded["members_total"] == len(tiny_shop.members)
    scorer = ChurnScorer.from_path(tmp_path / "m")
    scored = scorer.score_dataset(tiny_shop, AS_OF, reasons_top=20)
    assert list(scored.columns[:6]) == [
        "member_id",
        "churn_probability",
        "risk_band",
        "value",
        "value_segment",
        "value_at_risk",
    ]
    assert scored["churn_probability"].between(0, 1).all()
    assert (scored["reasons"].iloc[:20] != "").all() and (scored["reasons"].iloc[20:] == "").all()


def test_gate_moves_champion_only_when_the_margin_is_met(
    tiny_shop: Dataset, loyalty_home: Path
) -> None:
    import mlflow

    first = train_churn(tiny_shop, AS_OF, _cfg(0.0), provider="builtin", plots=True)
    assert first.gate_alias == "champion" and first.model_version == "1"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(first.run_id, "plots")}
    assert {
        "plots/roc.png",
        "plots/pr.png",
        "plots/calibration.png",
        "plots/lift_gain.png",
        "plots/shap_summary.png",
        "plots/score_distribution.png",
    } <= artifacts

    second = train_churn(tiny_shop, AS_OF, _cfg(1.0), provider="builtin", plots=False)
    assert second.gate_alias == "challenger"
    assert "margin 1.0" in (second.gate_reason or "")
    third = train_churn(tiny_shop, AS_OF, _cfg(-1.0), provider="builtin", plots=False)
    assert third.gate_alias == "champion" and third.model_version == "3"

    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias(first.model_name, "champion").version) == "3"
    assert str(client.get_model_version_by_alias(first.model_name, "challenger").version) == "2"
    scorer = ChurnScorer.from_registry(first.model_name)
    features = scorer.features_for(tiny_shop, AS_OF)
    reasons = scorer.reasons(features.head(5), top_k=2)
    assert len(reasons) == 5


@pytest.mark.slow
def test_optuna_study_persists_with_child_runs(tiny_shop: Dataset, loyalty_home: Path) -> None:
    import mlflow
    import optuna

    result = train_churn(
        tiny_shop, AS_OF, _cfg(0.0), trials=4, provider="builtin", plots=False, register=False
    )
    storage = f"sqlite:///{loyalty_home / 'optuna' / 'optuna.db'}"
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    assert len(study.trials) == 4
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'", search_all_experiments=True
    )
    assert len(children) == 4


@pytest.mark.slow
def test_cli_train_and_score(tiny_shop: Dataset, loyalty_home: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from loyalty_ml.cli.main import app

    data = tmp_path / "shop"
    write_dataset(tiny_shop, data)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "train",
            "churn",
            "--data",
            str(data),
            "--as-of",
            "2025-06-01",
            "--horizon",
            "60",
            "--features",
            "builtin",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "recency_rule" in res.output and "champion" in res.output
    out = tmp_path / "scores.csv"
    res = runner.invoke(
        app, ["score", "--all", "--data", str(data), "--as-of", "2025-06-01", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out)
    assert len(frame) == (tiny_shop.members["joined_at"] <= AS_OF).sum()
    # No benefits model trained: scores stand, the benefit columns are left out with a note.
    assert "best benefit skipped" in res.output and "best_benefit" not in frame.columns
    # Every batch scoring run writes a monitoring report and says where.
    assert "monitoring report:" in res.output
    assert list((loyalty_home / "reports").glob("*.html"))
