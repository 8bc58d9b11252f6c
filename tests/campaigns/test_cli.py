"""``loyalty campaign`` and ``loyalty member erase`` against the local (SQLite) contact log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from loyalty_ml.campaigns.contact_log import BuiltCampaign, ContactRow, open_contact_log
from loyalty_ml.cli import app
from loyalty_ml.contract.schema import TABLES

runner = CliRunner()
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _seed() -> None:
    log = open_contact_log()
    rows = [
        ContactRow("a", "email", "coupon_50", 50.0, 0.9),
        ContactRow("b", "email", "none", 0.0, 0.1, True),
    ]
    log.create_campaign(
        "spring",
        {"campaign_id": "spring", "limit": 2},
        lambda view: BuiltCampaign({"members": [{"member_id": "a"}, {"member_id": "b"}]}, rows),
        now=NOW,
    )
    log.close()


def test_export_offers_then_outcomes(loyalty_home: Path, tmp_path: Path) -> None:
    _seed()
    out = tmp_path / "offers.csv"
    result = runner.invoke(app, ["campaign", "export-offers", "spring", "--out", str(out)])
    assert result.exit_code == 0, result.output
    offers = pd.read_csv(out)
    assert list(offers.columns) == [c.name for c in TABLES["offers"].columns]
    assert len(offers) == 2
    outcomes = tmp_path / "outcomes.csv"
    pd.DataFrame({"member_id": ["a"], "converted": [1], "revenue": [99.0]}).to_csv(
        outcomes, index=False
    )
    result = runner.invoke(app, ["campaign", "attach-outcomes", "spring", "--from", str(outcomes)])
    assert result.exit_code == 0 and "updated 1" in result.output


def test_cancel_and_unknown_campaign(loyalty_home: Path) -> None:
    _seed()
    assert runner.invoke(app, ["campaign", "cancel", "spring"]).exit_code == 0
    assert open_contact_log().contacts().empty
    missing = runner.invoke(app, ["campaign", "cancel", "nope"])
    assert missing.exit_code == 1 and "no campaign" in missing.output


def test_member_erase_logs_a_hash_only(loyalty_home: Path) -> None:
    _seed()
    result = runner.invoke(app, ["member", "erase", "a"])
    assert result.exit_code == 0, result.output
    assert list(open_contact_log().contacts()["member_id"]) == ["b"]
    entries = (loyalty_home / "privacy" / "erasures.jsonl").read_text().splitlines()
    entry = json.loads(entries[0])
    assert entry["contact_log"]["contacts"] == 1
    assert '"a"' not in entries[0]


def test_member_erase_calls_the_feature_and_recs_hooks(loyalty_home: Path) -> None:
    from tests.features.test_erasure import _online_db
    from tests.recs.test_erasure import _bundle

    _seed()
    _online_db(loyalty_home / "features" / "feast" / "online.db")
    _bundle(loyalty_home / "recs" / "recs-x" / "bundle")
    result = runner.invoke(app, ["member", "erase", "a"])
    assert result.exit_code == 0, result.output
    entry = json.loads((loyalty_home / "privacy" / "erasures.jsonl").read_text().splitlines()[-1])
    assert entry["online_features"]["online_sqlite_rows"] == 4
    assert entry["recommendation_cache"] == {"bundles_scanned": 1, "bundles_erased": 0}
    assert "online_features" in result.output and "recommendation_cache" in result.output
