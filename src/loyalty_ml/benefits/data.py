"""The training table: the ``offers`` log checked for usability, joined point-in-time with member
features at each offer's ``offered_at``, plus the objective and benefit costs.

Refusals (``LoyaltyError`` with one clear sentence) for logs nothing sound can be learned from: no
offers, no control arm, a single benefit, propensities outside (0, 1], too few observations or
conversions in an arm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.benefits.config import BenefitsConfig, Objective, ObjectiveChoice
from loyalty_ml.contract.io import Dataset
from loyalty_ml.contract.schema import CONTROL_BENEFIT
from loyalty_ml.errors import LoyaltyError, MissingDataError

log = logging.getLogger(__name__)

# A feature provider returns one row per entity row (same order) with ``member_id``,
# ``event_timestamp`` and feature columns: Feast's ``benefits_v1`` service through
# ``get_historical_features`` (the default), or the pure pipeline (the fallback).
FeatureProvider = Callable[[Dataset, pd.DataFrame], pd.DataFrame]
ENTITY_COLUMNS = ("member_id", "event_timestamp")
BEFORE_OFFER = pd.Timedelta(microseconds=1)
FEAST_SERVICE = "benefits_v1"


def pipeline_features(dataset: Dataset, entities: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time member features at each entity's timestamp (``features.pipeline``)."""
    from loyalty_ml.features.pipeline import build_member_features_at

    return build_member_features_at(dataset, entities)


def feast_features(service: str = FEAST_SERVICE) -> FeatureProvider:
    """The Feast feature service ``service`` through ``get_historical_features`` (point-in-time
    join at each entity's timestamp; the feature repo lives under LOYALTY_HOME). Raises when
    Feast or the service is unavailable."""

    def provider(dataset: Dataset, entities: pd.DataFrame) -> pd.DataFrame:
        from loyalty_ml.features.training import training_set

        frame, unavailable = training_set(dataset, service, entities=entities)
        if unavailable:
            log.info("feature service %s: unavailable families %s", service, unavailable)
        return frame

    return provider


class FeatureSource:
    """The configured feature provider, remembering which source actually answered.

    ``feast``: Feast only (errors propagate). ``pipeline``: the pure pipeline. ``auto``: Feast,
    and the pipeline when Feast cannot answer (not installed, no repo, service unavailable);
    the reason is kept in ``fallback_reason`` and reported by ``train benefits``.
    """

    def __init__(self, source: str = "auto", service: str = FEAST_SERVICE) -> None:
        if source not in ("auto", "feast", "pipeline"):
            raise LoyaltyError(f"unknown feature source {source!r} (auto | feast | pipeline)")
        self.source = source
        self.service = service
        self.used: str | None = None
        self.fallback_reason: str | None = None

    def __call__(self, dataset: Dataset, entities: pd.DataFrame) -> pd.DataFrame:
        if self.source == "pipeline":
            self.used = "pipeline"
            return pipeline_features(dataset, entities)
        try:
            frame = feast_features(self.service)(dataset, entities)
        except Exception as exc:  # Feast raises many unrelated types; auto must degrade
            if self.source == "feast":
                raise
            self.fallback_reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "Feast service %s unavailable (%s): pipeline features instead",
                self.service,
                self.fallback_reason,
            )
            self.used = "pipeline"
            return pipeline_features(dataset, entities)
        self.used = f"feast:{self.service}"
        return frame

    def describe(self) -> str:
        if self.used is None:
            return f"features: {self.source} (not used yet)"
        if self.fallback_reason:
            return (
                f"features: pipeline (fallback; Feast {self.service} unavailable: "
                f"{self.fallback_reason[:200]})"
            )
        if self.used == "pipeline":
            return "features: pipeline (point-in-time, configured)"
        return f"features: Feast service {self.service} (get_historical_features at offered_at)"


@dataclass
class OfferLog:
    """Offers usable for training: one row per offer, control arm first in ``arms``."""

    frame: pd.DataFrame  # member_id, offered_at, benefit_id, propensity, converted, revenue, cost
    arms: list[str]
    has_revenue: bool
    has_cost: bool


def validate_offer_log(
    offers: pd.DataFrame | None,
    config: BenefitsConfig,
    control: str = CONTROL_BENEFIT,
) -> OfferLog:
    """Check the log can support uplift estimation; raise a clear error when it cannot."""
    if offers is None or len(offers) == 0:
        raise MissingDataError(
            "benefit matching needs an offers log (offers.parquet/.csv with benefit_id, "
            "propensity, converted): none found"
        )
    need = ["member_id", "offered_at", "benefit_id", "propensity", "converted"]
    missing = [c for c in need if c not in offers.columns]
    if missing:
        raise MissingDataError(f"offers log lacks column(s) {', '.join(missing)}")
    frame = offers.copy()
    frame["benefit_id"] = frame["benefit_id"].astype(str)
    ids = sorted(frame["benefit_id"].unique())
    if len(ids) < 2:
        raise LoyaltyError(
            f"the offers log has a single benefit ({ids[0]!r}): effects need at least one benefit "
            f"and the control arm {control!r} to compare with"
        )
    if control not in ids:
        raise LoyaltyError(
            f"the offers log has no control offers (benefit_id {control!r}): without a control "
            f"comparison the effect of {', '.join(ids)} cannot be estimated. Log a randomised "
            f"holdout that gets {control!r}."
        )
    p = pd.to_numeric(frame["propensity"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(p) | (p <= 0) | (p > 1)
    if bad.any():
        raise LoyaltyError(
            f"{int(bad.sum())} of {len(frame)} offers have a propensity missing or outside (0, 1] "
            f"(e.g. {p[bad][:3].tolist()}): inverse-propensity weighting needs the probability "
            "with which the logging policy chose each offer"
        )
    conv = pd.to_numeric(frame["converted"], errors="coerce")
    if conv.isna().any():
        raise LoyaltyError(f"{int(conv.isna().sum())} offers have no 'converted' outcome (0/1)")
    frame["propensity"] = p
    frame["converted"] = conv.astype(float)
    revenue = (
        pd.to_numeric(frame["revenue"], errors="coerce")
        if "revenue" in frame
        else pd.Series(np.nan, index=frame.index)
    )
    has_revenue = bool(revenue.notna().any())
    frame["revenue"] = revenue.fillna(0.0).astype(float)
    cost = (
        pd.to_numeric(frame["cost"], errors="coerce")
        if "cost" in frame
        else pd.Series(np.nan, index=frame.index)
    )
    has_cost = bool(cost[frame["benefit_id"] != control].notna().any())
    frame["cost"] = cost
    counts = frame.groupby("benefit_id").agg(n=("converted", "size"), conv=("converted", "sum"))
    small = counts[
        (counts["n"] < config.min_observations_per_arm)
        | (counts["conv"] < config.min_conversions_per_arm)
    ]
    if len(small):
        detail = "; ".join(
            f"{bid}: {int(r.n)} offers, {int(r.conv)} conversions" for bid, r in small.iterrows()
        )
        raise LoyaltyError(
            f"too few observations to estimate effects ({detail}); each arm needs at least "
            f"{config.min_observations_per_arm} offers and {config.min_conversions_per_arm} "
            "conversions (config/benefits.yaml: min_observations_per_arm, "
            "min_conversions_per_arm)"
        )
    arms = [control, *[b for b in ids if b != control]]
    keep = ["member_id", "offered_at", "benefit_id", "propensity", "converted", "revenue", "cost"]
    out = frame[keep].reset_index(drop=True)
    out["member_id"] = out["member_id"].astype(str)
    return OfferLog(out, arms, has_revenue, has_cost)


# ----------------------------------------------------------------------------- features


@dataclass
class FeatureSchema:
    """Feature columns and categorical levels as seen at training; applied again at scoring."""

    columns: list[str]
    categories: dict[str, list[str]]

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=features.index)
        for col in self.columns:
            if col not in features.columns:
                out[col] = np.nan if col not in self.categories else None
            else:
                out[col] = features[col]
            if col in self.categories:
                values = out[col].astype(object).where(out[col].notna(), None)
                out[col] = pd.Categorical(
                    values.map(lambda v: None if v is None else str(v)),
                    categories=self.categories[col],
                )
            else:
                out[col] = pd.to_numeric(out[col], errors="coerce").astype(np.float64)
        return out.reset_index(drop=True)


def infer_schema(features: pd.DataFrame, exclude: Sequence[str] = ENTITY_COLUMNS) -> FeatureSchema:
    cols: list[str] = []
    cats: dict[str, list[str]] = {}
    for col in features.columns:
        if col in exclude:
            continue
        values = features[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            continue
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            if values.notna().any():
                cols.append(col)
            continue
        levels = sorted({str(v) for v in values.dropna().unique()})
        if 1 <= len(levels) <= 200:
            cols.append(col)
            cats[col] = levels
    if not cols:
        raise MissingDataError("no usable member features for the offers log")
    return FeatureSchema(cols, cats)


def offer_features(
    dataset: Dataset, log: OfferLog, provider: FeatureProvider | None = None
) -> pd.DataFrame:
    """Member features as known just before each offer (``offered_at`` - 1 µs; same row order).

    Strictly before, not at: feature windows are inclusive of their instant, and loyalty
    features such as benefits used this month would otherwise count the offer being explained
    (and, through conversions, its outcome).
    """
    entities = pd.DataFrame(
        {
            "member_id": log.frame["member_id"],
            "event_timestamp": log.frame["offered_at"] - BEFORE_OFFER,
        }
    )
    feats = (provider or pipeline_features)(dataset, entities)
    if len(feats) != len(entities):
        raise MissingDataError(
            f"feature provider returned {len(feats)} rows for {len(entities)} offers"
        )
    return feats.reset_index(drop=True)


# ----------------------------------------------------------------------------- objective, costs


def margin_rate_from_products(dataset: Dataset) -> float | None:
    """1 - sum(cost)/sum(price) over products with both known; None when unknown."""
    products = dataset.products
    if products is None or "cost" not in products or "price" not in products:
        return None
    known = products[products["cost"].notna() & products["price"].notna()]
    price = float(known["price"].sum())
    if price <= 0:
        return None
    rate = 1.0 - float(known["cost"].sum()) / price
    return rate if 0 < rate <= 1 else None


def resolve_objective(
    choice: ObjectiveChoice | None,
    config: BenefitsConfig,
    margin_rate: float | None,
    costs_known: bool,
    has_revenue: bool,
) -> tuple[Objective, str]:
    """The objective and a one-line explanation (printed at the start of a job)."""
    choice = choice or config.objective
    if choice == "auto":
        if costs_known and margin_rate is not None and has_revenue:
            return "margin", f"objective margin (costs known, margin rate {margin_rate:.3g})"
        why = []
        if not costs_known:
            why.append("benefit costs unknown")
        if margin_rate is None:
            why.append("margin rate unknown")
        if not has_revenue:
            why.append("no revenue in the offers log")
        return "conversion", f"objective conversion ({', '.join(why)})"
    if choice in ("revenue", "margin") and not has_revenue:
        raise MissingDataError(f"objective {choice} needs 'revenue' in the offers log")
    if choice == "margin" and margin_rate is None:
        raise MissingDataError(
            "objective margin needs a margin rate: set margin_rate in config/benefits.yaml or "
            "give products a cost and price"
        )
    return choice, f"objective {choice} (chosen)"


def benefit_costs(
    arms: Sequence[str],
    log: OfferLog,
    policy: Any | None,
    overrides: dict[str, float] | None = None,
    expected_order_value: float | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Cost per arm: override > policy catalogue > median logged cost > 0. Also the source."""
    costs: dict[str, float] = {}
    source: dict[str, str] = {}
    logged = log.frame.groupby("benefit_id")["cost"].median()
    for arm in arms:
        if arm == arms[0]:
            costs[arm], source[arm] = 0.0, "control"
        elif overrides and arm in overrides:
            costs[arm], source[arm] = float(overrides[arm]), "config override"
        elif (
            policy is not None
            and arm in policy.benefits
            and not policy.benefits[arm].from_offer_log
        ):
            costs[arm] = float(policy.benefit_cost(arm, expected_order_value))
            source[arm] = "policy catalogue"
        elif arm in logged.index and pd.notna(logged[arm]):
            costs[arm], source[arm] = float(logged[arm]), "offers log (median)"
        else:
            costs[arm], source[arm] = 0.0, "unknown (0)"
    return costs, source


def reward(
    objective: Objective,
    converted: np.ndarray,
    revenue: np.ndarray,
    cost: np.ndarray,
    margin_rate: float | None,
    conversion_value: float | None,
) -> np.ndarray:
    """Per-offer reward in objective units, net of the logged arm's cost."""
    if objective == "conversion":
        return converted - (cost / conversion_value if conversion_value else 0.0)
    if objective == "revenue":
        return revenue - cost
    return (margin_rate or 0.0) * revenue - cost
