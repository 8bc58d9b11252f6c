"""``loyalty train benefits`` (MLflow run, registration, gate) and ``loyalty benefits assign``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from loyalty_ml.cli.main import app
from loyalty_ml.contract.io import write_dataset
from tests.benefits.fixtures import planted_dataset

ARMS = ("none", "coupon_50", "coupon_500_100")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    out = tmp_path / "planted"
    write_dataset(planted_dataset(3000, seed=1, arms=ARMS), out)
    return out


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    cfg = {
        "lightgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 30},
        "learners": ["t", "dr"],
        "cross_fit_folds": 2,
        "optuna": {"trials": 1, "space": {"num_leaves": [3, 7], "n_estimators": [20, 40]}},
    }
    path = tmp_path / "benefits.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow  # ~30 s alone (MLflow store, two trainings); minutes on the shared box
def test_train_then_assign_end_to_end(
    loyalty_home: Path,
    data_dir: Path,
    fast_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    from loyalty_ml.settings import reset_settings_cache

    monkeypatch.setenv("LOYALTY_PROFILE", "local")
    reset_settings_cache()

    runner = CliRunner()
    args = ["train", "benefits", "--data", str(data_dir), "--config", str(fast_config)]
    res = runner.invoke(app, [*args, "--objective", "revenue"])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "objective revenue" in flat
    # Training features came point-in-time from Feast's benefits_v1 service (local profile).
    assert "features: Feast service benefits_v1" in flat, flat
    assert "no current champion" in flat

    from loyalty_ml.tracking import configure_mlflow

    configure_mlflow()
    runs = mlflow.search_runs(experiment_names=["benefits"])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 1 and len(children) >= 3  # 1 trial + 2 learners + ensemble
    run_id = parents["run_id"].iloc[0]
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "report")}
    assert {
        "report/qini_curves.png",
        "report/effect_distributions.png",
        "report/policy_evaluation.csv",
    } <= arts

    # Second training: the gate compares against the champion on the same slice.
    res2 = runner.invoke(app, [*args, "--objective", "revenue", "--trials", "0"])
    assert res2.exit_code == 0, res2.output
    flat = " ".join(res2.output.split())
    assert "vs champion" in flat or "beats champion" in flat, flat

    out = tmp_path / "assign.csv"
    res3 = runner.invoke(
        app,
        [
            "benefits",
            "assign",
            "--data",
            str(data_dir),
            "--all",
            "--budget",
            "2000",
            "--out",
            str(out),
        ],
    )
    assert res3.exit_code == 0, res3.output
    frame = pd.read_csv(out, dtype={"member_id": str})
    assert list(frame.columns[:5]) == [
        "member_id",
        "benefit_id",
        "expected_uplift",
        "expected_net_value",
        "cost",
    ]
    assert frame["cost"].sum() <= 2000
    assert len(frame) == 3000
    # Everyone is tier "normal" after one 100-unit order: the silver benefit is never given.
    assert not (frame["benefit_id"] == "coupon_500_100").any()


def test_assign_requires_all_or_members(data_dir: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["benefits", "assign", "--data", str(data_dir), "--out", str(tmp_path / "a.csv")]
    )
    assert res.exit_code != 0
    assert "--all or --members" in " ".join(res.output.split())


def test_train_refuses_log_without_control(loyalty_home: Path, tmp_path: Path) -> None:
    ds = planted_dataset(600, seed=2, arms=ARMS)
    ds.offers = ds.offers[ds.offers["benefit_id"] != "none"].reset_index(drop=True)
    write_dataset(ds, tmp_path / "nocontrol")
    res = CliRunner().invoke(app, ["train", "benefits", "--data", str(tmp_path / "nocontrol")])
    assert res.exit_code == 1
    assert "no control offers" in " ".join(res.output.split())
