"""Loyalty policy engine: tier, points, benefit, contact and budget rules as configuration.

Pure functions over typed inputs; the only I/O is :func:`load_policy` reading ``policy.yaml``.
The same functions run offline (features, campaign lists) and online (serving). See
``docs/policy.md``.
"""

from loyalty_ml.policy.allocate import allocate, allocate_exact
from loyalty_ml.policy.config import (
    ABSOLUTE_CONTACT_CEILING,
    Benefit,
    PolicyConfig,
    load_policy,
    policy_from_dict,
)
from loyalty_ml.policy.contact import CONTACT_DROP_REASONS, apply_contact_policy, drop_counts
from loyalty_ml.policy.replay import STATE_COLUMNS, member_state, replay, tier_history
from loyalty_ml.policy.rules import (
    INELIGIBLE_REASONS,
    Eligibility,
    MemberState,
    allowed_for_tier,
    eligibility,
    eligibility_reasons,
    eligible_matrix,
    points_to_earn,
    tier_index,
    tier_name,
)
from loyalty_ml.policy.strategy import Strategy, recall_strategy

__all__ = [
    "ABSOLUTE_CONTACT_CEILING",
    "CONTACT_DROP_REASONS",
    "INELIGIBLE_REASONS",
    "STATE_COLUMNS",
    "Benefit",
    "Eligibility",
    "MemberState",
    "PolicyConfig",
    "Strategy",
    "allocate",
    "allocate_exact",
    "allowed_for_tier",
    "apply_contact_policy",
    "drop_counts",
    "eligibility",
    "eligibility_reasons",
    "eligible_matrix",
    "load_policy",
    "member_state",
    "points_to_earn",
    "policy_from_dict",
    "recall_strategy",
    "replay",
    "tier_history",
    "tier_index",
    "tier_name",
]
