"""The at-risk list as a batch job: the same builder and contact log the service uses, fed by the
batch scoring paths (``ChurnScorer.score_dataset`` and the benefit matcher over the pipeline's
features) instead of the online store.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from loyalty_ml.campaigns.at_risk import AtRiskRequest, CampaignPolicy, create_at_risk_campaign
from loyalty_ml.campaigns.contact_log import CampaignResult, ContactLog, open_contact_log
from loyalty_ml.contract.io import Dataset
from loyalty_ml.timeutil import to_utc


def _reasons(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str) and value:
        return [dict(r) for r in json.loads(value)]
    return []


def candidate_scores(
    dataset: Dataset, churn_source: str, as_of: pd.Timestamp, limit: int
) -> pd.DataFrame:
    """Members sorted by value at risk, with reason codes for the ones a list of ``limit`` can
    reach (others keep an empty list and never outrank a reasoned member by construction)."""
    from loyalty_ml.churn.scorer import ChurnScorer
    from loyalty_ml.serving.config import load_serving_config

    # Reason codes (SHAP) cost ~ms per member: only for the members a list can reach, with the
    # same reach as the service's lists (config/serving.yaml snapshot section).
    snapshot = load_serving_config().snapshot
    scorer = ChurnScorer.load(churn_source)
    reach = max(limit * snapshot.reason_candidates_per_slot, snapshot.min_reason_candidates)
    scored = scorer.score_dataset(dataset, as_of, reasons_top=reach, top_k=3)
    scored = scored.head(reach).copy()
    scored["member_id"] = scored["member_id"].astype(str)
    scored["reasons"] = scored["reasons"].map(_reasons)
    return scored


def benefit_options(
    dataset: Dataset, benefits_source: str | None, as_of: pd.Timestamp, member_ids: pd.Series
) -> pd.DataFrame:
    """Every member × benefit with eligibility from the policy engine; without a benefit model
    the list offers ``none`` (contact only) and says so in each row's reason."""
    from loyalty_ml.policy import load_policy

    if benefits_source is None:
        return pd.DataFrame(
            {
                "member_id": member_ids.to_numpy(),
                "benefit_id": "none",
                "expected_uplift": 0.0,
                "expected_net_value": 0.0,
                "cost": 0.0,
                "eligible": True,
                "reason": "no_benefit_model",
            }
        )
    from loyalty_ml.benefits.assign import member_states
    from loyalty_ml.benefits.data import pipeline_features
    from loyalty_ml.benefits.matcher import BenefitMatcher

    matcher = BenefitMatcher.load(benefits_source)
    policy = load_policy()
    cut = dataset.as_of(as_of)
    entities = pd.DataFrame({"member_id": member_ids.to_numpy(), "event_timestamp": as_of})
    features = pipeline_features(cut, entities)
    states = member_states(cut, as_of, policy)
    states = states[states["member_id"].astype(str).isin(set(member_ids))]
    options = matcher.score(features, states, at=as_of, policy=policy)
    options["member_id"] = options["member_id"].astype(str)
    options["reason"] = options["reason"].fillna("eligible").astype(str)
    return options


def batch_at_risk(
    dataset: Dataset,
    request: AtRiskRequest,
    *,
    churn_source: str,
    benefits_source: str | None,
    as_of: object | None = None,
    log: ContactLog | None = None,
) -> CampaignResult:
    """Build and record one campaign's at-risk list (idempotent per ``campaign_id``)."""
    from loyalty_ml.policy import load_policy
    from loyalty_ml.serving.config import load_serving_config

    t = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
    log = log or open_contact_log()
    scored = candidate_scores(dataset, churn_source, t, request.limit)
    options = benefit_options(dataset, benefits_source, t, scored["member_id"])
    campaigns = load_serving_config().campaigns
    policy = CampaignPolicy(
        config=load_policy(),
        holdout_share=campaigns.holdout_share,
        default_channel=campaigns.default_channel,
    )
    return create_at_risk_campaign(log, request, scored, options, policy)


def members_frame(result: CampaignResult) -> pd.DataFrame:
    """The list as a flat table (reasons as ``code:weight`` text) for CSV/Parquet output."""
    rows = []
    for m in result.payload.get("members", []):
        row = dict(m)
        row["reasons"] = ";".join(f"{r['code']}:{r['weight']:.3f}" for r in m.get("reasons", []))
        rows.append(row)
    return pd.DataFrame(rows)
