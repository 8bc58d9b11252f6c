"""Typed simulator configuration; every default lives in ``config/simulator.yaml``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loyalty_ml.configfile import read_yaml_mapping, validate_model
from loyalty_ml.contract.schema import CONTROL_BENEFIT
from loyalty_ml.errors import ConfigError
from loyalty_ml.settings import get_settings

TIERS = ("normal", "silver", "gold", "diamond")
CAUSES = (
    "recency_decline",
    "frequency_decline",
    "price_sensitive",
    "service_issue",
    "message_fatigue",
    "points_expiring",
    "downgrade_risk",
    "assortment_mismatch",
)
TRAITS = (
    "price_sensitivity",
    "heavy",
    "points_affinity",
    "novelty",
    "service_sensitivity",
    "message_fatigue",
    "birth_month",
    "high_tier",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Beta(_Model):
    a: float = Field(gt=0)
    b: float = Field(gt=0)


class Gamma(_Model):
    shape: float = Field(gt=0)
    mean: float = Field(ge=0)


class Ids(_Model):
    member: str
    product: str
    order: str
    offer: str


class Catalogue(_Model):
    n_products: int = Field(ge=20)
    new_product_share: float = Field(ge=0, lt=1)
    zipf_exponent: float = Field(gt=0)
    price_sigma: float = Field(ge=0)
    brands_per_category: int = Field(ge=1)
    brand_zipf_exponent: float = Field(ge=0)
    tier_exclusive_share: dict[str, float]
    successor_same_brand: float = Field(ge=0, le=1)
    categories: dict[str, tuple[float, float, float, int | None, str | None]]

    @field_validator("categories")
    @classmethod
    def _complements_exist(cls, value: dict[str, tuple]) -> dict[str, tuple]:
        for name, spec in value.items():
            if spec[4] is not None and spec[4] not in value:
                raise ValueError(f"category {name}: complement {spec[4]!r} is not a category")
        return value


class SegmentRule(_Model):
    trait: str
    min: float


class Population(_Model):
    regions: dict[str, float]
    genders: dict[str, float]
    acquisition_channels: dict[str, float]
    devices: dict[str, float]
    email_opt_in_rate: float = Field(ge=0, le=1)
    age_range: tuple[int, int]
    joined_in_period_per_year: float = Field(ge=0, le=1)
    prior_tenure_days_mean: float = Field(gt=0)
    prior_tenure_days_max: int = Field(ge=1)
    activity_per_year: Gamma
    inactive_share: float = Field(ge=0, le=1)
    inactive_activity_per_year: float = Field(ge=0)
    items_per_order_extra_mean: float = Field(ge=0)
    category_concentration: float = Field(gt=0)
    price_sensitivity: Beta
    service_sensitivity: Beta
    points_affinity: Beta
    novelty: Beta
    message_fatigue: Beta
    open_rate: Beta
    review_rate: Beta
    checkin_per_year: Gamma
    engagement_per_year: Gamma
    annual_onset_prob: Beta
    onset_trait_weights: dict[str, float]
    cancel_rate: float = Field(ge=0, lt=1)
    return_rate: Beta
    tier_spend_thresholds: dict[str, float]
    tier_points_multiplier: dict[str, float]
    segments: dict[str, SegmentRule]
    default_segment: str


class Cause(_Model):
    base: float = Field(ge=0)
    trait: str | None = None
    weight: float = 0.0
    min_tier: str | None = None
    kappa_days: float = Field(gt=0)


class Churn(_Model):
    causes: dict[str, Cause]
    engagement_slowdown: float = Field(ge=1)
    engagement_floor: float = Field(ge=0, le=1)
    declining_open_rate_factor: float = Field(ge=0, le=1)
    fatigue_open_rate_factor: float = Field(ge=0, le=1)
    fatigue_unsubscribe_days_mean: float = Field(gt=0)
    base_unsubscribe_per_year: float = Field(ge=0, le=1)
    abandoned_cart_boost: dict[str, float]
    browse_boost: dict[str, float]
    service_tickets: tuple[int, int]
    points_expiring_big_order_lag_days: int = Field(ge=1)
    points_expiring_big_order_factor: float = Field(ge=1)
    snapshot_every_days: int = Field(ge=1)
    n_snapshots: int = Field(ge=1)
    horizons_days: list[int]

    @field_validator("causes")
    @classmethod
    def _known_causes(cls, value: dict[str, Cause]) -> dict[str, Cause]:
        unknown = set(value) - set(CAUSES)
        if unknown:
            raise ValueError(f"unknown churn cause(s) {sorted(unknown)}; allowed {CAUSES}")
        return value


class Calendar(_Model):
    seasonal_amplitude: float = Field(ge=0, lt=1)
    seasonal_peak_doy: int = Field(ge=1, le=366)
    weekend_factor: float = Field(gt=0)
    birthday_month_factor: float = Field(gt=0)
    order_hours: list[float] = Field(min_length=24, max_length=24)
    promotions: dict[str, tuple[str, int, float, float]]
    order_channels: dict[str, float]


class Baskets(_Model):
    quantity_extra_mean: float = Field(ge=0)
    consumable_quantity_factor: float = Field(ge=0)
    complement_prob: float = Field(ge=0, le=1)
    successor_prob: float = Field(ge=0, le=1)
    staples_per_member_max: int = Field(ge=0)
    staple_min_affinity: float = Field(ge=0, le=1)
    staple_interval_jitter: float = Field(ge=0, lt=1)
    max_redraws: int = Field(ge=0)


class Events(_Model):
    browse_views_per_login: float = Field(ge=0)
    abandoned_carts_per_login: float = Field(ge=0)
    referral_per_year: float = Field(ge=0)
    share_per_order: float = Field(ge=0, le=1)
    newsletter_every_days: int = Field(ge=1)
    return_request_lag_days: tuple[int, int]
    service_ticket_per_return: float = Field(ge=0, le=1)
    review_lag_days: tuple[int, int]


class Traces(_Model):
    checkin_points_affinity: tuple[float, float]
    open_rate_fatigue: float = Field(ge=0, le=1)
    ticket_service_sensitivity: tuple[float, float]
    new_arrival_prob: float = Field(ge=0, le=1)
    new_arrival_window_days: int = Field(ge=1)


class Benefit(_Model):
    cost_kind: Literal["none", "coupon", "per_order", "spend_share", "fixed", "per_conversion"]
    face: float = 0.0
    threshold: float = 0.0
    unit_cost: float = 0.0
    favourite_category_only: bool = False
    effects: dict[str, float]

    @field_validator("effects")
    @classmethod
    def _known_traits(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(TRAITS) - {"base"}
        if unknown:
            raise ValueError(f"unknown trait(s) {sorted(unknown)}; allowed {TRAITS}")
        return value


class Campaigns(_Model):
    first_day: int = Field(ge=0)
    every_days: int = Field(ge=1)
    window_days: int = Field(ge=1)
    inclusion_rate: float = Field(gt=0, le=1)
    birthday_pack_birth_month_boost: float = Field(ge=0)
    channels: dict[str, float]
    point_value: float = Field(ge=0)
    propensities: dict[str, dict[str, float]]
    fatigue_penalty: float = Field(ge=0)
    effect_min: float = Field(gt=-1)
    effect_max: float
    benefits: dict[str, Benefit]

    @field_validator("propensities")
    @classmethod
    def _control_everywhere(cls, value: dict[str, dict[str, float]]) -> dict:
        for tier in TIERS:
            if tier not in value:
                raise ValueError(f"propensities: missing tier {tier!r}")
            if value[tier].get(CONTROL_BENEFIT, 0) <= 0:
                raise ValueError(f"propensities.{tier}: control {CONTROL_BENEFIT!r} must be > 0")
        return value


class SimulatorConfig(_Model):
    members: int = Field(ge=1)
    days: int = Field(ge=30)
    seed: int
    end_date: date
    block_size: int = Field(ge=100)
    max_horizon_days: int = Field(ge=1)
    ids: Ids
    catalogue: Catalogue
    population: Population
    traces: Traces
    churn: Churn
    calendar: Calendar
    baskets: Baskets
    events: Events
    campaigns: Campaigns

    def with_overrides(self, **overrides: Any) -> SimulatorConfig:
        """A copy with top-level fields replaced (None values are ignored), re-validated."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return _validate(data, "overrides")


def default_config_path() -> Path:
    return get_settings().config_dir / "simulator.yaml"


def _validate(data: dict[str, Any], source: str) -> SimulatorConfig:
    cfg = validate_model(SimulatorConfig, data, source)
    missing = set(cfg.campaigns.benefits) - {
        b for t in cfg.campaigns.propensities.values() for b in t
    }
    unknown = {b for t in cfg.campaigns.propensities.values() for b in t} - set(
        cfg.campaigns.benefits
    )
    if unknown:
        raise ConfigError(f"{source}: campaigns.propensities name unknown benefit(s) {unknown}")
    del missing  # a benefit may exist in the catalogue without being sent in campaigns
    if cfg.max_horizon_days < max(cfg.churn.horizons_days):
        raise ConfigError(f"{source}: max_horizon_days must cover churn.horizons_days")
    return cfg


def load_config(path: Path | str | None = None, **overrides: Any) -> SimulatorConfig:
    """Read the YAML (default ``config/simulator.yaml``) and apply top-level overrides."""
    path = Path(path) if path is not None else default_config_path()
    data = read_yaml_mapping(path, "simulator")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return _validate(data, str(path))
