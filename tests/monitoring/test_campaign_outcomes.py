"""Campaign outcomes flow from the contact log into the monitoring report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from loyalty_ml.campaigns.contact_log import BuiltCampaign, ContactRow, ContactView
from loyalty_ml.campaigns.store_sqlite import SqliteContactLog
from loyalty_ml.monitoring import campaign_outcomes, campaign_outcomes_frame, run_monitoring

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _campaign(log: SqliteContactLog, campaign_id: str, n: int, expected: float | None) -> None:
    members = [f"{campaign_id}-m{i}" for i in range(n)]
    holdout = {m for i, m in enumerate(members) if i % 4 == 0}  # 25% control

    def build(view: ContactView) -> BuiltCampaign:
        rows = [
            {
                "member_id": m,
                "holdout": m in holdout,
                "benefit_id": "none" if m in holdout else "c5",
            }
            | ({} if expected is None else {"expected_uplift": expected})
            for m in members
        ]
        contacts = [
            ContactRow(m, "email", "none" if m in holdout else "c5", 0.0, 0.5, holdout=m in holdout)
            for m in members
        ]
        return BuiltCampaign({"members": rows, "excluded": {}}, contacts)

    log.create_campaign(campaign_id, {"campaign_id": campaign_id}, build, now=NOW)
    rng = np.random.default_rng(7)
    # Treated convert at 0.30, holdout at 0.10: a true incremental effect of 0.20.
    converted = [
        int(rng.random() < (0.10 if m in holdout else 0.30)) for m in members[: n - 10]
    ]  # the last ten have no outcome yet
    log.attach_outcomes(
        campaign_id, pd.DataFrame({"member_id": members[: n - 10], "converted": converted})
    )


def test_outcomes_frame_and_realised_uplift(tmp_path: Path) -> None:
    log = SqliteContactLog(tmp_path / "cl.sqlite")
    _campaign(log, "spring", 2000, expected=0.2)
    _campaign(log, "summer", 400, expected=None)
    frame = campaign_outcomes_frame(log)
    assert set(frame["campaign"]) == {"spring", "summer"}
    assert len(frame) == 2000 - 10 + 400 - 10  # members without an outcome are left out
    assert frame.loc[~frame["treated"], "expected_uplift"].eq(0).all()
    table = campaign_outcomes(frame).set_index("campaign")
    spring = table.loc["spring"]
    assert spring["ci_low"] < 0.2 < spring["ci_high"] and spring["consistent"]
    assert abs(spring["realised_uplift"] - 0.2) < 0.06
    assert np.isnan(table.loc["summer", "expected_uplift"])
    assert table.loc["summer", "consistent"] is None
    ref = pd.DataFrame({"member_id": ["a", "b"] * 50, "x": np.arange(100.0)})
    result = run_monitoring(ref, ref, ref["x"], ref["x"], tmp_path / "r", campaigns=frame)
    assert "Campaign outcomes vs expected uplift" in result.path.read_text()
    assert set(result.campaigns["campaign"]) == {"spring", "summer"}


def test_no_outcomes_yet_gives_an_empty_frame(tmp_path: Path) -> None:
    log = SqliteContactLog(tmp_path / "cl.sqlite")
    assert campaign_outcomes_frame(log).empty
