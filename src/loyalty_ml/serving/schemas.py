"""Request and response models of the HTTP API — a public contract: add fields, never rename.

Bounds that are part of the contract (``n`` 1–100, 1–1000 member ids) are declared here so they
appear in the OpenAPI document; ``config/serving.yaml`` may tighten them, never widen them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)


def _id_to_str(value: Any) -> Any:
    """Ids may arrive as non-negative JSON integers; they are compared and returned as strings."""
    if isinstance(value, bool):
        return value  # rejected by the str type: true is not an id
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 0:
        return str(value)
    return value


def _json_int(value: Any) -> Any:
    """JSON Schema integers include 3.0; strings and booleans stay invalid (strict int)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_int), Field(strict=True)]


Id = Annotated[
    str,
    BeforeValidator(_id_to_str),
    Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$"),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 128,
                    "pattern": "^[^\\x00-\\x1f]+$",
                },
                {"type": "integer", "minimum": 0},
            ],
            "description": "An id; numbers are accepted and answered as strings.",
        }
    ),
]
CampaignId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
Context = Literal["home", "cart", "post_purchase", "similar"]
Fallback = Literal["cold_start", "degraded"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


# -- /recommend ------------------------------------------------------------------------------
class RecommendRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"context": {"const": "similar"}}, "required": ["context"]},
            "then": {
                "required": ["product_id"],
                "properties": {"product_id": {"not": {"type": "null"}}},
            },
        }
    )
    member_id: Id
    n: JsonInt = Field(10, ge=1, le=100)
    context: Context = "home"
    cart: list[Id] | None = Field(None, max_length=200)
    product_id: Id | None = None

    @model_validator(mode="after")
    def _context_needs(self) -> RecommendRequest:
        if self.context == "similar" and self.product_id is None:
            raise ValueError("context 'similar' needs product_id")
        return self


class RecommendedItem(BaseModel):
    product_id: str
    score: float
    reason: str
    points_to_earn: int | None = None


class RecommendResponse(BaseModel):
    member_id: str
    context: Context
    items: list[RecommendedItem]
    fallback: Fallback | None = None
    model_version: str | None = None
    experiment: str | None = None  # the A/B experiment tagging this endpoint (serving.yaml)
    variant: str | None = None  # the member's arm in it; null when no experiment is configured


# -- /churn_score ----------------------------------------------------------------------------
class ChurnScoreRequest(_Request):
    member_ids: list[Id] = Field(min_length=1, max_length=1000)


class Reason(BaseModel):
    code: str
    weight: float


class ChurnScore(BaseModel):
    member_id: str
    churn_probability: float = Field(ge=0, le=1)
    risk_band: str
    value_segment: str
    reasons: list[Reason]


class ChurnScoreResponse(BaseModel):
    scores: list[ChurnScore]
    unknown: list[str]
    model_version: str | None = None


# -- /benefits -------------------------------------------------------------------------------
class BenefitsRequest(_Request):
    member_id: Id
    budget: Money | None = None


class BenefitOption(BaseModel):
    benefit_id: str
    eligible: bool
    expected_uplift: float
    expected_net_value: float
    cost: float
    reason: str


class BenefitsResponse(BaseModel):
    member_id: str
    benefits: list[BenefitOption]
    model_version: str | None = None
    experiment: str | None = None
    variant: str | None = None


# -- /campaigns ------------------------------------------------------------------------------
class AtRiskRequest(_Request):
    campaign_id: CampaignId
    limit: JsonInt = Field(ge=1, le=100_000)
    budget: Money | None = None
    min_probability: float | None = Field(None, ge=0, le=1, allow_inf_nan=False, strict=True)
    value_segments: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=32
    )
    channel: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")] | None = None


class AtRiskMember(BaseModel):
    member_id: str
    churn_probability: float
    risk_band: str
    value_segment: str
    reasons: list[Reason]
    strategy: str
    benefit_id: str
    expected_net_value: float
    cost: float
    channel: str
    holdout: bool = False
    propensity: float | None = None
    # Uplift the benefit model expected for this member and benefit (holdout: 0); monitoring
    # compares it with the realised treated-minus-holdout effect once outcomes are attached.
    expected_uplift: float | None = None


class Excluded(BaseModel):
    model_config = ConfigDict(extra="allow")
    contact_cap: int = 0
    suppressed: int = 0
    unsubscribed: int = 0
    budget: int = 0
    ineligible: int = 0


class AtRiskResponse(BaseModel):
    campaign_id: str
    members: list[AtRiskMember]
    excluded: Excluded
    status: str = "created"
    replayed: bool = False


class CancelResponse(BaseModel):
    campaign_id: str
    status: str


# -- operations ------------------------------------------------------------------------------
class ComponentStatus(BaseModel):
    ready: bool
    required: bool = True
    version: str | None = None
    message: str = ""


class Readiness(BaseModel):
    ready: bool
    components: dict[str, ComponentStatus]


class ReloadResponse(BaseModel):
    status: Literal["started", "already_running"]
    generation: int


class ErrorResponse(BaseModel):
    error: str
    message: str
    detail: list[dict[str, Any]] | None = None
