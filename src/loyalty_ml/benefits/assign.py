"""Batch assignment: members' features and loyalty states at ``as_of`` -> one benefit each."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from loyalty_ml.benefits.config import ObjectiveChoice
from loyalty_ml.benefits.data import FeatureProvider, margin_rate_from_products
from loyalty_ml.benefits.matcher import BenefitMatcher
from loyalty_ml.contract.io import Dataset
from loyalty_ml.errors import MissingDataError
from loyalty_ml.timeutil import to_utc

log = logging.getLogger(__name__)


def member_states(dataset: Dataset, as_of: pd.Timestamp, policy: Any) -> pd.DataFrame:
    """Tier, benefit tier, birth month and benefit usage per member (the policy engine's replay)."""
    from loyalty_ml.policy.replay import replay

    return replay(dataset, policy, as_of=as_of)


def assign_benefits(
    dataset: Dataset,
    matcher: BenefitMatcher,
    as_of: object | None = None,
    members: Sequence[str] | None = None,
    budget: float | None = None,
    objective: ObjectiveChoice | None = None,
    feature_provider: FeatureProvider | None = None,
    policy: Any | None = None,
    apply_policy: bool = True,
) -> pd.DataFrame:
    """member_id, benefit_id, expected_uplift, expected_net_value, cost, propensity."""
    from loyalty_ml.benefits.data import pipeline_features

    t = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
    cut = dataset.as_of(t)
    ids = cut.members["member_id"].astype(str)
    if members is not None:
        wanted = pd.Index([str(m) for m in members]).unique()
        unknown = wanted.difference(ids)
        if len(unknown):
            raise MissingDataError(
                f"{len(unknown)} member(s) unknown at {t:%Y-%m-%d %H:%M}, e.g. {unknown[0]!r}"
            )
        ids = pd.Series(wanted, dtype=str)
    if objective is not None and objective != "auto" and objective != matcher.objective:
        mr = matcher.margin_rate or margin_rate_from_products(cut)
        matcher = matcher.with_objective(objective, margin_rate=mr)
    entities = pd.DataFrame({"member_id": ids.to_numpy(), "event_timestamp": t})
    features = (feature_provider or pipeline_features)(cut, entities)
    states = None
    if apply_policy:
        if policy is None:
            from loyalty_ml.policy import load_policy

            policy = load_policy()
        states = member_states(cut, t, policy)
        states = states[states["member_id"].astype(str).isin(set(ids))]
    return matcher.assign(features, states, budget=budget, at=t, policy=policy)
