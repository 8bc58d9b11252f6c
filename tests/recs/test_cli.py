"""``loyalty train recs`` (MLflow runs, plots, registry, gate) and ``loyalty recommend``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from loyalty_ml.cli.main import app
from loyalty_ml.contract.io import write_dataset
from tests.recs.conftest import make_shop

runner = CliRunner()


@pytest.mark.slow
def test_train_then_batch_recommend(loyalty_home, tmp_path, shop_config):
    import mlflow

    from loyalty_ml.tracking import configure_mlflow

    data = tmp_path / "tinyshop"
    write_dataset(make_shop(), data)
    cfg_file = tmp_path / "recs.yaml"
    cfg_file.write_text(json.dumps(shop_config.model_dump(mode="json")))
    result = runner.invoke(
        app, ["train", "recs", "--data", str(data), "--trials", "1", "--config", str(cfg_file)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["alias"] == "champion" and summary["model"] == "recs-tinyshop"
    assert {"popularity", "als", "item_knn", "transitions", "blend"} <= set(summary["test"])

    configure_mlflow()
    client = mlflow.MlflowClient()
    run = client.get_run(summary["run_id"])
    assert "test_blend_ndcg_at_10" in run.data.metrics
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/metric_at_k.png", "plots/coverage_popularity_bias.png"} <= plots

    # second training: gated against the champion on the same slice
    again = runner.invoke(
        app, ["train", "recs", "--data", str(data), "--trials", "0", "--config", str(cfg_file)]
    )
    assert again.exit_code == 0, again.output
    assert str(json.loads(again.stdout)["version"]) == "2"

    members = tmp_path / "members.txt"
    members.write_text("m1\nm2\nunknown\n")
    out = tmp_path / "recs.csv"
    result = runner.invoke(
        app,
        [
            "recommend",
            "--data",
            str(data),
            "--as-of",
            "2026-04-01",
            "--members",
            str(members),
            "--n",
            "5",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, dtype={"member_id": str})
    assert list(frame.columns) == ["member_id", "rank", "product_id", "score"]
    assert frame.groupby("member_id").size().to_dict() == {"m1": 5, "m2": 5, "unknown": 5}
    assert not frame.duplicated(["member_id", "product_id"]).any()

    out_all = tmp_path / "all.parquet"
    result = runner.invoke(
        app, ["recommend", "--data", str(data), "--all", "--n", "3", "--out", str(out_all)]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out_all)["member_id"].nunique() == 90


def test_recommend_needs_all_or_members(loyalty_home, tmp_path):
    result = runner.invoke(
        app, ["recommend", "--data", str(tmp_path), "--n", "3", "--out", str(tmp_path / "x.csv")]
    )
    assert result.exit_code != 0
