"""A small in-memory backend for API tests and the real-server integration test.

Scores and benefit options are fixed tables; campaigns go through the real contact log (the
active profile's, i.e. SQLite under LOYALTY_HOME) and the real builder. Used by the server via
``LOYALTY_SERVING_BACKEND=tests.serving.fake_backend:make_backend``.
"""

from __future__ import annotations

import asyncio
import os
import time

import pandas as pd

from loyalty_ml.campaigns.at_risk import CampaignPolicy
from loyalty_ml.campaigns.contact_log import ContactLog, open_contact_log
from loyalty_ml.serving import campaign_ops
from loyalty_ml.serving.backend import NotReady, UnknownMember
from loyalty_ml.serving.config import ServingConfig
from loyalty_ml.serving.schemas import (
    AtRiskRequest,
    AtRiskResponse,
    BenefitOption,
    BenefitsResponse,
    CancelResponse,
    ChurnScore,
    ChurnScoreResponse,
    ComponentStatus,
    Readiness,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    ReloadResponse,
)

N_MEMBERS = 30
PRODUCTS = [f"p{i}" for i in range(200)]


def scored_members() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(N_MEMBERS)],
            "churn_probability": [round(0.95 - i * 0.03, 3) for i in range(N_MEMBERS)],
            "risk_band": ["high" if i < 10 else "medium" for i in range(N_MEMBERS)],
            "value": [100.0 + i for i in range(N_MEMBERS)],
            "value_segment": ["high" if i % 3 == 0 else "mid" for i in range(N_MEMBERS)],
            "reasons": [[{"code": "recency_decline", "weight": 0.6}]] * N_MEMBERS,
        }
    )


def benefit_options(scored: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for i, member in enumerate(scored["member_id"]):
        rows.append((member, "coupon_50", 0.05, 20.0 + i, 50.0, True, "price_sensitive"))
        rows.append((member, "free_shipping", 0.02, 5.0, 10.0, True, "cheap"))
        rows.append((member, "none", 0.0, 0.0, 0.0, True, "control"))
    return pd.DataFrame(
        rows,
        columns=[
            "member_id",
            "benefit_id",
            "expected_uplift",
            "expected_net_value",
            "cost",
            "eligible",
            "reason",
        ],
    )


class FakeBackend:
    def __init__(self, config: ServingConfig) -> None:
        self.config = config
        self.fail_recommend: BaseException | None = None
        self.recommend_delay_s = 0.0
        self.generation = 1
        self.log: ContactLog | None = None
        self.scored = scored_members()

    async def start(self) -> None:
        self.log = open_contact_log(schema=self.config.campaigns.postgres_schema)

    async def stop(self) -> None:
        if self.log is not None:
            self.log.close()

    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        if self.fail_recommend is not None:
            raise self.fail_recommend
        if self.recommend_delay_s:
            await asyncio.sleep(self.recommend_delay_s)
        cold = request.member_id not in set(self.scored["member_id"])
        exclude = set(request.cart or ())
        items = [
            RecommendedItem(
                product_id=p,
                score=1.0 / (k + 1),
                reason="popular" if cold else "als",
                points_to_earn=10,
            )
            for k, p in enumerate(p for p in PRODUCTS if p not in exclude)
        ][: request.n]
        return RecommendResponse(
            member_id=request.member_id,
            context=request.context,
            items=items,
            fallback="cold_start" if cold else None,
            model_version=f"recs-test/{self.generation}",
        )

    async def popular(self, n: int) -> list[RecommendedItem]:
        return [
            RecommendedItem(product_id=p, score=0.0, reason="popular", points_to_earn=None)
            for p in PRODUCTS[:n]
        ]

    async def churn_score(self, member_ids: list[str]) -> ChurnScoreResponse:
        table = self.scored.set_index("member_id")
        scores = [
            ChurnScore(
                member_id=m,
                churn_probability=float(table.loc[m, "churn_probability"]),
                risk_band=str(table.loc[m, "risk_band"]),
                value_segment=str(table.loc[m, "value_segment"]),
                reasons=table.loc[m, "reasons"],
            )
            for m in member_ids
            if m in table.index
        ]
        unknown = [m for m in member_ids if m not in table.index]
        return ChurnScoreResponse(scores=scores, unknown=unknown, model_version="churn-test/1")

    async def benefits(self, member_id: str, budget: float | None) -> BenefitsResponse:
        if member_id not in set(self.scored["member_id"]):
            raise UnknownMember(f"unknown member {member_id!r}")
        options = benefit_options(self.scored[self.scored["member_id"] == member_id])
        if budget is not None:
            options = options.assign(eligible=options["cost"] <= budget)
        ranked = options.sort_values("expected_net_value", ascending=False)
        return BenefitsResponse(
            member_id=member_id,
            benefits=[BenefitOption.model_validate(r) for r in ranked.to_dict("records")],
        )

    async def at_risk(self, request: AtRiskRequest) -> AtRiskResponse:
        if self.log is None:
            raise NotReady("contact log not open")
        policy = CampaignPolicy(
            holdout_share=self.config.campaigns.holdout_share,
            default_channel=self.config.campaigns.default_channel,
        )
        delay = float(os.environ.get("LOYALTY_FAKE_SCORE_DELAY_S", "0"))

        def scored() -> pd.DataFrame:
            time.sleep(delay)  # lets the integration test kill the server mid-call
            return self.scored

        return await campaign_ops.at_risk(
            self.log, request, policy, scored=scored, options=benefit_options
        )

    async def cancel_campaign(self, campaign_id: str) -> CancelResponse:
        assert self.log is not None
        return await campaign_ops.cancel(self.log, campaign_id)

    async def readiness(self) -> Readiness:
        return Readiness(
            ready=True,
            components={
                "models": ComponentStatus(ready=True, version="test"),
                "contact_log": ComponentStatus(ready=self.log is not None),
            },
        )

    async def reload(self) -> ReloadResponse:
        self.generation += 1
        return ReloadResponse(status="started", generation=self.generation)


def make_backend(config: ServingConfig) -> FakeBackend:
    return FakeBackend(config)
