"""``loyalty campaign at-risk``: the batch list through the CLI (scorers faked, log real)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loyalty_ml.campaigns import batch
from loyalty_ml.cli import app
from tests.campaigns.test_at_risk import options, scored

runner = CliRunner()


class FakeDataset:
    name = "fake"

    def latest_timestamp(self) -> pd.Timestamp:
        return pd.Timestamp("2026-06-30", tz="UTC")


@pytest.fixture
def fake_pipeline(loyalty_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    calls: dict[str, list] = {"data": [], "churn": [], "benefits": []}
    loyalty_home.mkdir(parents=True, exist_ok=True)
    (loyalty_home / "pipeline.json").write_text(
        json.dumps(
            {
                "dataset": "fake",
                "data_dir": str(loyalty_home / "data"),
                "as_of": "2026-06-30T00:00:00+00:00",
                "models": {"churn": "churn-fake", "benefits": "benefits-fake"},
            }
        )
    )

    def load(data_dir, name=None):
        calls["data"].append((str(data_dir), name))
        return FakeDataset()

    def candidates(dataset, churn_source, as_of, limit):
        calls["churn"].append(churn_source)
        return scored()

    def opts(dataset, benefits_source, as_of, member_ids):
        calls["benefits"].append(benefits_source)
        return options()

    monkeypatch.setattr("loyalty_ml.contract.validate.load_valid_dataset", load)
    monkeypatch.setattr(batch, "candidate_scores", candidates)
    monkeypatch.setattr(batch, "benefit_options", opts)
    return calls


def _run(*args: str):
    return runner.invoke(app, ["campaign", "at-risk", *args])


def test_at_risk_writes_the_list_and_replays(fake_pipeline, loyalty_home, tmp_path) -> None:
    out = tmp_path / "list.csv"
    args = ("--campaign", "c1", "--limit", "3", "--budget", "100", "--out", str(out))
    first = _run(*args)
    assert first.exit_code == 0, first.output
    assert "recorded" in first.output
    frame = pd.read_csv(out, dtype={"member_id": str})
    assert set(frame["member_id"]) == {"m4", "m3", "m2"}  # the top 3 by value
    assert {"benefit_id", "holdout", "propensity", "reasons"} <= set(frame.columns)
    # defaults come from the manifest: its data dir, dataset name and models
    assert fake_pipeline["data"] == [(str(loyalty_home / "data"), "fake")]
    assert fake_pipeline["churn"] == ["churn-fake"]
    assert fake_pipeline["benefits"] == ["models:/benefits-fake@champion"]

    parquet = tmp_path / "again.parquet"
    second = _run("--campaign", "c1", "--limit", "3", "--budget", "100", "--out", str(parquet))
    assert second.exit_code == 0, second.output
    assert "replayed" in second.output
    assert fake_pipeline["churn"] == ["churn-fake"]  # a replay scores nobody
    again = pd.read_parquet(parquet)
    assert list(again["member_id"]) == list(frame["member_id"])
    assert list(again["benefit_id"]) == list(frame["benefit_id"])


def test_same_id_other_options_is_an_error(fake_pipeline, tmp_path) -> None:
    out = tmp_path / "list.csv"
    assert _run("--campaign", "c2", "--limit", "3", "--out", str(out)).exit_code == 0
    clash = _run("--campaign", "c2", "--limit", "4", "--out", str(tmp_path / "b.csv"))
    assert clash.exit_code == 1
    assert "different options" in clash.output
    assert not (tmp_path / "b.csv").exists()


def test_without_data_or_manifest_is_an_error(loyalty_home, tmp_path) -> None:
    result = _run("--campaign", "c3", "--limit", "3", "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 1
    assert "loyalty pipeline" in result.output
