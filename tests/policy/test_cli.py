"""``loyalty policy explain | replay | show`` on a tiny contract data set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loyalty_ml.cli.main import app

runner = CliRunner()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    d = tmp_path / "shop"
    d.mkdir()
    pd.DataFrame(
        {
            "member_id": ["m1", "m2"],
            "joined_at": ["2024-01-01", "2024-01-01"],
            "birth_date": ["1990-05-02", ""],
        }
    ).to_csv(d / "members.csv", index=False)
    pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "member_id": ["m1", "m1", "m2"],
            "ordered_at": ["2024-01-10", "2024-02-15", "2024-03-01"],
            "amount": [1000.0, 2000.0, 100.0],
            "status": ["completed", "completed", "completed"],
        }
    ).to_csv(d / "orders.csv", index=False)
    pd.DataFrame(
        {
            "offer_id": ["f1", "f2"],
            "member_id": ["m1", "m1"],
            "offered_at": ["2024-03-02", "2024-03-03"],
            "benefit_id": ["coupon_1000_300", "shop_gift_card"],
            "cost": [300.0, 25.0],
            "converted": [1, 0],
        }
    ).to_csv(d / "offers.csv", index=False)
    return d


def test_explain(shop: Path) -> None:
    result = runner.invoke(
        app, ["policy", "explain", "m1", "--data", str(shop), "--date", "2024-03-10"]
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert "gold" in text and "points" in text and "expiring" in text
    assert "coupon_1000_300" in text and "monthly_limit" in text  # used once this month
    assert "vip_service_48h" in text and "birthday_pack" in text and "not_birth_month" in text
    assert "shop_gift_card" in text  # a shop's own benefit from the offers log, with a warning


def test_explain_unknown_member(shop: Path) -> None:
    result = runner.invoke(app, ["policy", "explain", "nobody", "--data", str(shop)])
    assert result.exit_code == 1
    assert "nobody" in result.output


def test_replay_and_show(shop: Path, tmp_path: Path) -> None:
    target = tmp_path / "state.csv"
    result = runner.invoke(
        app, ["policy", "replay", "--data", str(shop), "--date", "2024-03-10", "--out", str(target)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(target)
    assert set(frame["member_id"]) == {"m1", "m2"}
    assert dict(zip(frame["member_id"], frame["tier"], strict=True)) == {
        "m1": "gold",
        "m2": "normal",
    }
    shown = runner.invoke(app, ["policy", "show"])
    assert shown.exit_code == 0 and "diamond" in shown.output and "recency_decline" in shown.output
