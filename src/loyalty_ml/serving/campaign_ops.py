"""Campaign endpoints' shared glue: API models ↔ the campaigns domain, run off the event loop.

Every backend's ``at_risk``/``cancel_campaign`` goes through here, so idempotency (replay before
scoring), conflicts (409) and the response shape are the same whatever produces the scores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pandas as pd

from loyalty_ml.campaigns.at_risk import AtRiskRequest as DomainRequest
from loyalty_ml.campaigns.at_risk import CampaignPolicy, ReasonsProvider, create_at_risk_campaign
from loyalty_ml.campaigns.contact_log import (
    CampaignConflict,
    CampaignNotFound,
    CampaignResult,
    ContactLog,
    body_hash,
    replay,
)
from loyalty_ml.serving.backend import Conflict, NotFound
from loyalty_ml.serving.schemas import AtRiskRequest, AtRiskResponse, CancelResponse

ScoredProvider = Callable[[], pd.DataFrame]
OptionsProvider = Callable[[pd.DataFrame], pd.DataFrame]


def to_domain(body: AtRiskRequest) -> DomainRequest:
    return DomainRequest(
        campaign_id=body.campaign_id,
        limit=body.limit,
        budget=body.budget,
        min_probability=body.min_probability,
        value_segments=tuple(body.value_segments) if body.value_segments else None,
        channel=body.channel,
    )


def to_response(result: CampaignResult) -> AtRiskResponse:
    return AtRiskResponse.model_validate(
        {**result.payload, "status": result.status, "replayed": result.replayed}
    )


def at_risk_sync(
    log: ContactLog,
    body: AtRiskRequest,
    policy: CampaignPolicy,
    scored: ScoredProvider,
    options: OptionsProvider,
    reasons_for: ReasonsProvider | None = None,
) -> AtRiskResponse:
    request = to_domain(body)
    try:
        try:  # a replay answers from the log without scoring anybody
            existing = log.get_campaign(request.campaign_id)
        except CampaignNotFound:
            existing = None
        if existing is not None:  # replay or conflict at once, before any scoring
            return to_response(replay(existing, body_hash(request.body())))
        population = scored()
        result = create_at_risk_campaign(
            log, request, population, options(population), policy, reasons_for=reasons_for
        )
    except CampaignConflict as exc:
        raise Conflict(str(exc), code=exc.code) from exc
    return to_response(result)


async def at_risk(
    log: ContactLog,
    body: AtRiskRequest,
    policy: CampaignPolicy,
    scored: ScoredProvider,
    options: OptionsProvider,
    reasons_for: ReasonsProvider | None = None,
) -> AtRiskResponse:
    return await asyncio.to_thread(at_risk_sync, log, body, policy, scored, options, reasons_for)


def cancel_sync(log: ContactLog, campaign_id: str) -> CancelResponse:
    try:
        result = log.cancel(campaign_id)
    except CampaignNotFound as exc:
        raise NotFound(str(exc), code="unknown_campaign") from exc
    except CampaignConflict as exc:
        raise Conflict(str(exc), code=exc.code) from exc
    return CancelResponse(campaign_id=campaign_id, status=result.status)


async def cancel(log: ContactLog, campaign_id: str) -> CancelResponse:
    return await asyncio.to_thread(cancel_sync, log, campaign_id)
