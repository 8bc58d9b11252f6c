"""Campaign outcomes for the monitoring report, read from the contact log.

A sent at-risk campaign holds, per listed member, whether they were in the random holdout and
what the model expected; once outcomes are attached (``loyalty campaign outcomes``), the report
compares the realised incremental conversion (treated − holdout, with a CI) with the uplift the
model expected for the treated members.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

OUTCOME_FRAME_COLUMNS = ["campaign", "member_id", "treated", "outcome", "expected_uplift"]


def campaign_outcomes_frame(log: Any, campaign_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Rows (campaign, member_id, treated, outcome, expected_uplift) for every listed member whose
    outcome is known. ``expected_uplift`` is the list's per-member ``expected_uplift`` when it
    carries one (holdout members: 0), else NaN — the realised effect is still reported.
    ``campaign_ids`` default: every campaign with contacts in the log (cancelled ones have none).
    """
    if campaign_ids is None:
        campaign_ids = sorted(set(log.contacts(active_only=True)["campaign_id"].astype(str)))
    parts = []
    for campaign_id in campaign_ids:
        members = pd.DataFrame(log.get_campaign(campaign_id).payload.get("members", []))
        offers = log.offers(campaign_id)
        if members.empty or offers.empty:
            continue
        known = offers.dropna(subset=["converted"])
        if known.empty:
            continue
        if "holdout" not in members.columns:
            members["holdout"] = members.get("benefit_id", pd.Series(dtype=str)).eq("none")
        expected = (
            pd.to_numeric(members["expected_uplift"], errors="coerce")
            if "expected_uplift" in members.columns
            else pd.Series(np.nan, index=members.index)
        )
        listed = pd.DataFrame(
            {
                "member_id": members["member_id"].astype(str),
                "treated": ~members["holdout"].astype(bool),
                "expected_uplift": expected.where(~members["holdout"].astype(bool), 0.0),
            }
        )
        outcome = known.assign(member_id=known["member_id"].astype(str))[
            ["member_id", "converted"]
        ].rename(columns={"converted": "outcome"})
        parts.append(
            listed.merge(outcome, on="member_id", how="inner", validate="one_to_one").assign(
                campaign=campaign_id
            )
        )
    if not parts:
        return pd.DataFrame(columns=OUTCOME_FRAME_COLUMNS)
    frame = pd.concat(parts, ignore_index=True)[OUTCOME_FRAME_COLUMNS]
    frame["outcome"] = frame["outcome"].astype(float)
    return frame
