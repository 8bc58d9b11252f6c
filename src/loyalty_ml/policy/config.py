"""Typed view of ``config/policy.yaml``: tiers, points, benefit catalogue, contact caps, budget,
reason codes and recall strategies.

The YAML file is the one source of defaults: the models below carry no business numbers. Every
cross-field rule (increasing thresholds, known tiers, reachable caps) is checked here, at load, so
the engine itself can assume a consistent configuration.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty_ml.configfile import read_yaml_mapping, validate_model
from loyalty_ml.contract.schema import CONTROL_BENEFIT
from loyalty_ml.errors import ConfigError

log = logging.getLogger(__name__)

#: The contact cap no configuration or strategy may exceed (the programme's hard ceiling).
ABSOLUTE_CONTACT_CEILING = 5
HOURS_PER_WEEK = 7 * 24


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierLevel(_Strict):
    name: str = Field(min_length=1)
    threshold: float = Field(ge=0)


class GrowthConfig(_Strict):
    spend_weight: float = Field(ge=0)
    behaviour_weight: float = Field(ge=0)
    window_months: int = Field(gt=0, le=60)
    behaviour_event_weights: dict[str, float]

    @model_validator(mode="after")
    def _non_negative(self) -> GrowthConfig:
        for event, weight in self.behaviour_event_weights.items():
            if weight < 0:
                raise ValueError(f"tiers.growth.behaviour_event_weights.{event} must be >= 0")
        return self


class TiersConfig(_Strict):
    levels: list[TierLevel] = Field(min_length=1)
    growth: GrowthConfig
    check_day: int = Field(ge=1, le=28)
    yearly_review: str
    warning_after_months: int = Field(ge=1)
    grace_days: int = Field(ge=0)
    max_downgrade_steps: int = Field(ge=1)
    transition_months: int = Field(ge=0)
    first_order_boost_amount: float | None = Field(default=None, ge=0)
    return_lag_days: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> TiersConfig:
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"tiers.levels: duplicate tier names in {names}")
        if self.levels[0].threshold != 0:
            raise ValueError("tiers.levels[0].threshold must be 0 (everyone starts in a tier)")
        for prev, cur in zip(self.levels, self.levels[1:], strict=False):
            if cur.threshold <= prev.threshold:
                raise ValueError(
                    f"tiers.levels.{cur.name}.threshold must be greater than "
                    f"{prev.name}'s ({cur.threshold} <= {prev.threshold})"
                )
        if not re.fullmatch(r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", self.yearly_review):
            raise ValueError(f"tiers.yearly_review must be MM-DD, got {self.yearly_review!r}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    @property
    def thresholds(self) -> tuple[float, ...]:
        return tuple(lv.threshold for lv in self.levels)

    @property
    def yearly_review_month(self) -> int:
        return int(self.yearly_review[:2])


class PointsConfig(_Strict):
    earn_per_unit: float = Field(ge=0)
    tier_multipliers: dict[str, float]
    event_bonus: dict[str, float]
    birthday_multiplier: float = Field(ge=0)
    redemption_points_per_unit: float = Field(gt=0)
    expiry_months: int = Field(gt=0)
    expiring_soon_days: int = Field(gt=0)

    @model_validator(mode="after")
    def _non_negative(self) -> PointsConfig:
        for tier, mult in self.tier_multipliers.items():
            if mult < 0:
                raise ValueError(f"points.tier_multipliers.{tier} must be >= 0")
        for event, bonus in self.event_bonus.items():
            if bonus < 0:
                raise ValueError(f"points.event_bonus.{event} must be >= 0")
        return self


class CostModel(_Strict):
    fixed: float | None = Field(default=None, ge=0)
    pct_of_order: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _one(self) -> CostModel:
        if (self.fixed is None) == (self.pct_of_order is None):
            raise ValueError("cost needs exactly one of fixed or pct_of_order")
        return self

    def cost(self, expected_order_value: float | None = None) -> float:
        """Expected cost of one grant; a %-of-order benefit needs the expected order value."""
        if self.fixed is not None:
            return float(self.fixed)
        return float(self.pct_of_order or 0.0) * float(expected_order_value or 0.0)


class Benefit(_Strict):
    id: str = ""  # filled from the catalogue key
    kind: str = Field(min_length=1)
    cost: CostModel
    min_tier: str
    max_per_month: int | None = Field(default=None, ge=0)
    max_per_year: int | None = Field(default=None, ge=0)
    birth_month_only: bool = False
    valid_from: pd.Timestamp | None = None
    valid_until: pd.Timestamp | None = None
    description: str = ""
    from_offer_log: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _dates(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in ("valid_from", "valid_until"):
                if data.get(key) is not None:
                    from loyalty_ml.timeutil import to_utc

                    data = {**data, key: to_utc(data[key])}
        return data


class ContactConfig(_Strict):
    max_per_7d: int = Field(ge=0)
    hard_ceiling_per_7d: int = Field(ge=0, le=ABSOLUTE_CONTACT_CEILING)
    quiet_period_hours: float = Field(ge=0)
    channels: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _caps(self) -> ContactConfig:
        if self.max_per_7d > self.hard_ceiling_per_7d:
            raise ValueError(
                f"contact.max_per_7d ({self.max_per_7d}) exceeds "
                f"contact.hard_ceiling_per_7d ({self.hard_ceiling_per_7d})"
            )
        # A cap that the quiet period makes unreachable is a contradiction, not a loose cap.
        if (
            self.max_per_7d > 1
            and (self.max_per_7d - 1) * self.quiet_period_hours >= HOURS_PER_WEEK
        ):
            raise ValueError(
                f"contact.max_per_7d ({self.max_per_7d}) can never be reached with "
                f"contact.quiet_period_hours ({self.quiet_period_hours}) between contacts"
            )
        return self


class BudgetConfig(_Strict):
    programme_share_of_revenue: float = Field(gt=0, le=1)


class ReasonRule(_Strict):
    description: str = ""
    action: str = ""
    benefits: list[str] = Field(default_factory=list)
    prefer_kinds: list[str] = Field(default_factory=list)
    contact_reduction: int = Field(default=0, ge=0)
    channel: str | None = None
    service_callback: bool = False
    new_arrivals: bool = False


class SegmentRule(_Strict):
    name: str
    benefits: list[str]
    channel: str | None = None


class RecallConfig(_Strict):
    segments: dict[str, SegmentRule] = Field(min_length=1)


class PolicyConfig(_Strict):
    currency: str = "unit"
    tiers: TiersConfig
    points: PointsConfig
    benefits: dict[str, Benefit]
    contact: ContactConfig
    budget: BudgetConfig
    reasons: dict[str, ReasonRule] = Field(min_length=1)
    recall: RecallConfig

    @model_validator(mode="before")
    @classmethod
    def _benefit_ids(cls, data: object) -> object:
        # The catalogue key is the id; the control arm exists whether or not the file lists it.
        if isinstance(data, dict) and isinstance(data.get("benefits"), dict):
            benefits = {}
            for key, value in data["benefits"].items():
                if isinstance(value, dict):
                    value = {**value, "id": str(key)}
                benefits[str(key)] = value
            data = {**data, "benefits": benefits}
        return data

    @model_validator(mode="after")
    def _cross_refs(self) -> PolicyConfig:
        tiers = set(self.tiers.names)
        missing = tiers - set(self.points.tier_multipliers)
        if missing:
            raise ValueError(
                f"points.tier_multipliers: no multiplier for tier(s) {sorted(missing)}"
            )
        extra = set(self.points.tier_multipliers) - tiers
        if extra:
            raise ValueError(f"points.tier_multipliers: unknown tier(s) {sorted(extra)}")
        for bid, benefit in self.benefits.items():
            if benefit.min_tier not in tiers:
                raise ValueError(
                    f"benefits.{bid}.min_tier: unknown tier {benefit.min_tier!r} "
                    f"(tiers: {', '.join(self.tiers.names)})"
                )
            if (
                benefit.max_per_month is not None
                and benefit.max_per_year is not None
                and benefit.max_per_month > benefit.max_per_year
            ):
                raise ValueError(
                    f"benefits.{bid}.max_per_month ({benefit.max_per_month}) exceeds "
                    f"benefits.{bid}.max_per_year ({benefit.max_per_year})"
                )
            if (
                benefit.valid_from is not None
                and benefit.valid_until is not None
                and benefit.valid_until < benefit.valid_from
            ):
                raise ValueError(f"benefits.{bid}.valid_until is before valid_from")
        for code, rule in self.reasons.items():
            for bid in rule.benefits:
                if bid not in self.benefits:
                    raise ValueError(f"reasons.{code}.benefits: unknown benefit {bid!r}")
            if rule.channel is not None and rule.channel not in self.contact.channels:
                raise ValueError(f"reasons.{code}.channel: unknown channel {rule.channel!r}")
        for seg, srule in self.recall.segments.items():
            for bid in srule.benefits:
                if bid not in self.benefits:
                    raise ValueError(f"recall.segments.{seg}.benefits: unknown benefit {bid!r}")
            if srule.channel is not None and srule.channel not in self.contact.channels:
                raise ValueError(
                    f"recall.segments.{seg}.channel: unknown channel {srule.channel!r}"
                )
        return self

    def model_post_init(self, __context: object) -> None:
        if CONTROL_BENEFIT not in self.benefits:
            control = Benefit(
                id=CONTROL_BENEFIT,
                kind="control",
                cost=CostModel(fixed=0.0),
                min_tier=self.tiers.names[0],
                description="control: no benefit",
            )
            # Frozen model: the control arm is part of the catalogue by definition.
            object.__setattr__(self, "benefits", {CONTROL_BENEFIT: control, **self.benefits})

    # ----------------------------------------------------------------- convenience views
    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(self.reasons)

    @property
    def tier_names(self) -> tuple[str, ...]:
        return self.tiers.names

    @property
    def benefit_ids(self) -> tuple[str, ...]:
        return tuple(self.benefits)

    def tier_index(self, name: str) -> int:
        try:
            return self.tiers.names.index(name)
        except ValueError:
            raise ConfigError(
                f"unknown tier {name!r} (tiers: {', '.join(self.tiers.names)})"
            ) from None

    def benefit(self, benefit_id: str) -> Benefit:
        try:
            return self.benefits[benefit_id]
        except KeyError:
            raise ConfigError(f"unknown benefit {benefit_id!r}") from None

    def benefit_cost(self, benefit_id: str, expected_order_value: float | None = None) -> float:
        return self.benefit(benefit_id).cost.cost(expected_order_value)

    def points_value(self, points: float) -> float:
        """Currency value of a points balance at the redemption rate (100 points = 1 unit)."""
        return float(points) / self.points.redemption_points_per_unit

    def programme_budget(self, revenue: float) -> float:
        """The programme-wide benefit-cost ceiling for a period with this revenue."""
        return max(0.0, float(revenue)) * self.budget.programme_share_of_revenue

    def with_offer_log_benefits(
        self, offers: pd.DataFrame | None
    ) -> tuple[PolicyConfig, list[str]]:
        """Accept a shop's own benefit ids seen in its offers log but absent from the catalogue.

        Each unknown id becomes a ``custom`` benefit open to all tiers, costing the median logged
        cost (0 when the log has none). Returns the extended config and one warning per id; the ids
        are never silently dropped.
        """
        if offers is None or len(offers) == 0 or "benefit_id" not in offers:
            return self, []
        ids = offers["benefit_id"].dropna().astype(str)
        unknown = sorted(set(ids.unique()) - set(self.benefits))
        if not unknown:
            return self, []
        costs = (
            pd.to_numeric(offers["cost"], errors="coerce")
            if "cost" in offers
            else pd.Series(float("nan"), index=offers.index)
        )
        median_cost = costs.groupby(ids).median()
        added: dict[str, Benefit] = {}
        warnings_out: list[str] = []
        for bid in unknown:
            value = median_cost.get(bid, float("nan"))
            cost = 0.0 if pd.isna(value) else float(max(value, 0.0))
            added[bid] = Benefit(
                id=bid,
                kind="custom",
                cost=CostModel(fixed=cost),
                min_tier=self.tiers.names[0],
                description="shop-specific benefit from the offers log",
                from_offer_log=True,
            )
            cost_src = "median logged cost" if not pd.isna(value) else "no cost in the log"
            warnings_out.append(
                f"benefit {bid!r} is in the offers log but not in the catalogue: accepted as "
                f"'custom', cost {cost:g} ({cost_src}), open to all tiers"
            )
        for message in warnings_out:
            log.info(message)  # returned to the caller too, which decides how to show it
        extended = self.model_copy(update={"benefits": {**self.benefits, **added}})
        return extended, warnings_out


def policy_from_dict(raw: dict, source: str = "<dict>") -> PolicyConfig:
    """Validate a parsed policy mapping; errors name the offending key."""
    return validate_model(PolicyConfig, raw or {}, source)


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int) -> PolicyConfig:
    del mtime_ns  # part of the cache key only: an edited file is re-read
    return policy_from_dict(read_yaml_mapping(path, "policy"), source=path)


def load_policy(path: Path | str | None = None) -> PolicyConfig:
    """Read the policy YAML (default: settings' ``policy_path``), cached per path and mtime."""
    if path is None:
        from loyalty_ml.settings import get_settings

        path = get_settings().policy_path
    resolved = Path(path).expanduser().resolve()
    try:
        mtime = resolved.stat().st_mtime_ns
    except FileNotFoundError as exc:
        raise ConfigError(f"policy configuration not found: {resolved}") from exc
    return _load_cached(str(resolved), mtime)
