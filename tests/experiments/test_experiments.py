"""Experiments: the shipped files validate, grids expand, folds and CIs are right, and a tiny
churn experiment (2 variants x 2 folds) runs end to end on the in-memory simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.errors import ConfigError, LoyaltyError
from loyalty_ml.experiments import (
    ExperimentSpec,
    compare_experiment,
    experiments_dir,
    fold_dates,
    load_spec,
    run_experiment,
    summarise,
)


def test_shipped_experiments_validate(loyalty_home: Path) -> None:
    names = sorted(p.stem for p in experiments_dir().glob("*.yaml"))
    assert {"churn-horizon", "churn-families", "recs-models", "benefits-learners"} <= set(names)
    for name in names:
        spec = load_spec(name)
        assert spec.name == name and len(spec.variants) >= 2
        assert spec.data_path() == loyalty_home.resolve() / "data" / "demo"
        assert spec.mlflow_experiment == f"exp-{name}"
    assert load_spec("churn-horizon").metric == "auc"


def test_search_grid_and_errors(tmp_path: Path) -> None:
    spec = ExperimentSpec(
        name="g", job="recs", search={"als.factors": [32, 64], "als.iterations": [5, 10]}
    )
    assert [v.name for v in spec.variants][:2] == [
        "factors=32,iterations=5",
        "factors=32,iterations=10",
    ]
    assert len(spec.variants) == 4 and spec.metric == "ndcg@10"
    with pytest.raises(ValueError, match="variants or a search"):
        ExperimentSpec(name="x", job="churn")
    bad = tmp_path / "bad.yaml"
    bad.write_text("job: churn\nvariants: [{name: a}, {name: a}]\n")
    with pytest.raises(ConfigError, match="unique"):
        load_spec(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_spec("no-such-experiment")


def test_summarise_t_interval() -> None:
    frame = pd.DataFrame(
        {"variant": "a", "fold": [0, 1, 2], "metric": "auc", "value": [0.70, 0.72, 0.74]}
    )
    row = summarise(frame).iloc[0]
    assert row["mean"] == pytest.approx(0.72)
    assert row["ci_half"] == pytest.approx(4.302653 * 0.02 / np.sqrt(3), rel=1e-5)
    one = summarise(frame.head(1)).iloc[0]
    assert np.isnan(one["ci_half"])


def test_tiny_churn_experiment_end_to_end(loyalty_home: Path) -> None:
    from loyalty_ml.simulate import load_config, simulate

    dataset, _ = simulate(load_config(members=600, days=240, seed=1))
    spec = ExperimentSpec(
        name="tiny",
        job="churn",
        folds=2,
        base={"provider": "builtin", "snapshots.n_train": 2, "lightgbm.num_boost_round": 40},
        variants=[
            {"name": "h30", "overrides": {"label.horizon_days": 30}},
            {"name": "h60", "overrides": {"label.horizon_days": 60}},
        ],
    )
    dates = fold_dates(spec, dataset)
    assert dates[0] - dates[1] == pd.Timedelta(days=30)
    result = run_experiment(spec, dataset=dataset, track=False)
    auc = result.table[result.table["metric"] == "auc"].set_index("variant")
    assert list(auc.index) == ["h30", "h60"] and (auc["folds"] == 2).all()
    assert ((auc["mean"] > 0.6) & (auc["mean"] <= 1)).all()
    assert result.plot_path is not None and result.plot_path.stat().st_size > 1000
    assert set(result.metrics["as_of"].astype(str)) == {str(d) for d in dates}
    # compare re-reads the saved metrics (what `loyalty experiment compare` does)
    experiments = loyalty_home / "exps"
    experiments.mkdir()
    (experiments / "tiny.yaml").write_text(spec.model_dump_json())  # JSON is YAML
    import os

    os.environ["LOYALTY_EXPERIMENTS_DIR"] = str(experiments)
    try:
        table, plot = compare_experiment("tiny", ["auc", "brier"])
        assert plot.exists() and set(table["variant"]) == {"h30", "h60"}
        from typer.testing import CliRunner

        from loyalty_ml.cli.main import app

        res = CliRunner().invoke(app, ["experiment", "compare", "tiny"])
        assert res.exit_code == 0, res.output
        assert "h60" in res.output and "comparison.png" in res.output
    finally:
        del os.environ["LOYALTY_EXPERIMENTS_DIR"]


def test_compare_without_run_says_what_to_do(loyalty_home: Path) -> None:
    with pytest.raises(LoyaltyError, match="loyalty experiment run churn-horizon"):
        compare_experiment("churn-horizon")


def test_churn_family_ablation_provider_is_restricted_and_cached() -> None:
    import loyalty_ml.churn.job as job
    from loyalty_ml.experiments.runner import _churn_provider
    from loyalty_ml.simulate import load_config, simulate

    dataset, _ = simulate(load_config(members=300, days=120, seed=3))
    original = job.resolve_provider
    cache: dict = {}
    t = dataset.latest_timestamp()
    with _churn_provider("auto", ["rfm"], cache):
        label, provider = job.resolve_provider("auto")
        assert label == "pipeline-rfm"
        first = provider(dataset.as_of(t), t)
        provider(dataset.as_of(t), t)
    assert job.resolve_provider is original and len(cache) == 1
    assert not [c for c in first.columns if c.startswith(("engagement__", "service__"))]


@pytest.mark.slow  # MLflow's SQLite store setup dominates
def test_tracked_run_logs_parent_and_children(loyalty_home: Path) -> None:
    import mlflow

    from loyalty_ml.simulate import load_config, simulate

    dataset, _ = simulate(load_config(members=500, days=200, seed=1))
    spec = ExperimentSpec(
        name="trk",
        job="churn",
        folds=2,
        base={"provider": "builtin", "snapshots.n_train": 2, "lightgbm.num_boost_round": 30},
        variants=[
            {"name": "h30", "overrides": {"label.horizon_days": 30}},
            {"name": "h60", "overrides": {"label.horizon_days": 60}},
        ],
    )
    result = run_experiment(spec, dataset=dataset, track=True)
    runs = mlflow.search_runs(experiment_names=["exp-trk"])
    assert result.run_id in set(runs["run_id"]) and len(runs) == 3
    children = runs[runs["tags.mlflow.parentRunId"] == result.run_id]
    assert set(children["tags.variant"]) == {"h30", "h60"}
    assert children["metrics.auc_mean"].notna().all()
