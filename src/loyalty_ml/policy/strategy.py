"""Recall strategy: which benefits, channel and contact pressure for an at-risk member.

The mapping lives in ``policy.yaml`` (``recall.segments`` and ``reasons``), not in code: the
segment gives the base benefit list and channel; each churn reason (in the order given, most
important first) adds its benefits ahead of the base list, may move benefit kinds to the front
(``price_sensitive`` → coupons), reduce the contact cap (``message_fatigue``) or ask for a
service callback / new arrivals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loyalty_ml.errors import LoyaltyError
from loyalty_ml.policy.config import PolicyConfig, load_policy


@dataclass(frozen=True)
class Strategy:
    name: str
    segment: str
    reasons: tuple[str, ...]
    preferred_benefits: tuple[str, ...]
    channel_hint: str | None
    contact_reduction: int
    max_contacts_7d: int
    actions: tuple[str, ...]
    service_callback: bool
    new_arrivals: bool


def recall_strategy(
    value_segment: str, reasons: Sequence[str] | str | None, config: PolicyConfig | None = None
) -> Strategy:
    """The configured strategy for a value segment and its churn reasons (unknown ones raise)."""
    cfg = config if config is not None else load_policy()
    seg = cfg.recall.segments.get(value_segment)
    if seg is None:
        raise LoyaltyError(
            f"unknown value segment {value_segment!r} "
            f"(recall.segments: {', '.join(cfg.recall.segments)})"
        )
    codes = (reasons,) if isinstance(reasons, str) else tuple(reasons or ())
    unknown = [r for r in codes if r not in cfg.reasons]
    if unknown:
        raise LoyaltyError(f"unknown reason code(s) {unknown} (reasons: {', '.join(cfg.reasons)})")
    rules = [cfg.reasons[r] for r in codes]

    benefits: list[str] = []
    for rule in rules:
        benefits.extend(rule.benefits)
    base = list(seg.benefits)
    kinds = [k for rule in rules for k in rule.prefer_kinds]
    if kinds:
        # Stable: the segment's own order is kept within "preferred kind" and "other".
        rank = {k: i for i, k in enumerate(kinds)}
        base.sort(key=lambda b: rank.get(cfg.benefits[b].kind, len(rank)))
    benefits.extend(base)
    preferred = tuple(dict.fromkeys(benefits))

    channel = next((rule.channel for rule in rules if rule.channel), None) or seg.channel
    reduction = sum(rule.contact_reduction for rule in rules)
    cap = max(0, cfg.contact.max_per_7d - reduction)
    actions = tuple(dict.fromkeys(rule.action for rule in rules if rule.action))
    name = seg.name + ("+" + "+".join(codes) if codes else "")
    return Strategy(
        name=name,
        segment=value_segment,
        reasons=codes,
        preferred_benefits=preferred,
        channel_hint=channel,
        contact_reduction=reduction,
        max_contacts_7d=cap,
        actions=actions,
        service_callback=any(rule.service_callback for rule in rules),
        new_arrivals=any(rule.new_arrivals for rule in rules),
    )
