"""What the HTTP layer calls: the ``ServingBackend`` protocol and the errors it may raise.

Handlers parse, call one backend method, format. Everything a backend knows (models, online
features, the contact log, policy) stays behind this protocol; ``ChampionBackend``
(``serving/champion.py``) is the real one, tests use small in-test backends.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from loyalty_ml.serving.schemas import (
    AtRiskRequest,
    AtRiskResponse,
    BenefitsResponse,
    CancelResponse,
    ChurnScoreResponse,
    Readiness,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    ReloadResponse,
)


class ServingError(Exception):
    """Base of the errors the app maps to a 4xx/5xx with a stable ``error`` code."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotReady(ServingError):
    """A model, the online store or the contact log is not available (503)."""

    status_code = 503
    code = "not_ready"


class UnknownMember(ServingError):
    status_code = 404
    code = "unknown_member"


class NotFound(ServingError):
    status_code = 404
    code = "not_found"


class Conflict(ServingError):
    status_code = 409
    code = "conflict"


@runtime_checkable
class ServingBackend(Protocol):
    async def start(self) -> None:
        """Load models and open stores (called once per worker, before traffic)."""

    async def stop(self) -> None: ...

    async def recommend(self, request: RecommendRequest) -> RecommendResponse: ...

    async def popular(self, n: int) -> list[RecommendedItem]:
        """Popular items for the degraded fallback (cached by the app)."""

    async def churn_score(self, member_ids: list[str]) -> ChurnScoreResponse: ...

    async def benefits(self, member_id: str, budget: float | None) -> BenefitsResponse: ...

    async def at_risk(self, request: AtRiskRequest) -> AtRiskResponse: ...

    async def cancel_campaign(self, campaign_id: str) -> CancelResponse: ...

    async def readiness(self) -> Readiness: ...

    async def reload(self) -> ReloadResponse:
        """Start loading new champions in the background; swap atomically when loaded."""
