"""The at-risk list: who to recall, with which benefit, ranked by the recall's expected net value.

``build_at_risk`` is pure: scored members, benefit options and a ``ContactView`` in, a
``BuiltCampaign`` (API payload + contacts to record) out. The rules (caps, quiet periods, budget,
strategy) come through ``policy_adapter``; ``create_at_risk_campaign`` runs the builder inside the
contact log's creation transaction.

Stages and the ``excluded`` counter each one feeds: eligibility (``ineligible``: no eligible
option) → contact policy (``contact_cap`` incl. quiet periods, ``suppressed``, ``unsubscribed``) →
ranking by the recall's expected net value (each member's best eligible option) → ``limit`` →
holdout (a random share of the list, decided per campaign and member, is kept as ``none``) →
budget among the treated (``budget``: a treated member whose positive option is left unfunded is
dropped). The returned list is ordered by the value of the option each member gets (0 for the
holdout's ``none``), ties in ranking order. Treated members are logged with propensity ``1 - holdout_share``, holdout members with
``holdout_share``, so the offers export supports inverse-propensity estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from loyalty_ml.abtest.assign import in_control
from loyalty_ml.campaigns import policy_adapter
from loyalty_ml.campaigns.contact_log import (
    BuiltCampaign,
    CampaignResult,
    ContactLog,
    ContactRow,
    ContactView,
)

NONE_BENEFIT = "none"
EXCLUDED_KEYS = ("contact_cap", "suppressed", "unsubscribed", "budget", "ineligible")
# Contact-policy drop reasons the API's five ``excluded`` counters absorb.
EXCLUDED_BY_REASON = {
    "quiet_period": "contact_cap",
    "duplicate": "contact_cap",
    "unknown_channel": "ineligible",
}
SCORED_COLUMNS = (
    "member_id",
    "churn_probability",
    "risk_band",
    "value",
    "value_segment",
    "reasons",
)
OPTION_COLUMNS = ("member_id", "benefit_id", "expected_net_value", "cost", "eligible")
ReasonsProvider = Callable[[list[str]], list[list[dict[str, Any]]]]


@dataclass(frozen=True)
class AtRiskRequest:
    campaign_id: str
    limit: int
    budget: float | None = None
    min_probability: float | None = None
    value_segments: tuple[str, ...] | None = None
    channel: str | None = None

    def body(self) -> dict[str, Any]:
        """The canonical request body the contact log hashes for idempotency."""
        return {
            "campaign_id": self.campaign_id,
            "limit": self.limit,
            "budget": self.budget,
            "min_probability": self.min_probability,
            "value_segments": sorted(self.value_segments) if self.value_segments else None,
            "channel": self.channel,
        }


@dataclass(frozen=True)
class CampaignPolicy:
    """Policy inputs for one list; ``config`` is ``loyalty_ml.policy.load_policy()``'s result."""

    config: Any = None
    holdout_share: float = 0.1
    default_channel: str = "email"
    extra: dict[str, Any] = field(default_factory=dict)


def in_holdout(campaign_id: str, member_id: str, share: float) -> bool:
    """A reproducible random draw: the same member in the same campaign always lands the same.

    It is the A/B assignment's hash with the campaign id as the experiment (one hash for both),
    so a campaign's control group is the ``control`` arm of ``{control: share, treatment: rest}``.
    """
    return in_control(campaign_id, member_id, share)


def best_options(options: pd.DataFrame) -> pd.DataFrame:
    """Per member, the eligible option with the highest expected net value (``none`` allowed)."""
    ranked = options.sort_values(
        ["member_id", "expected_net_value", "cost"], ascending=[True, False, True], kind="stable"
    )
    return ranked.drop_duplicates("member_id", keep="first")


def _choose_benefits(
    options: pd.DataFrame, members: pd.Series, budget: float | None
) -> tuple[pd.DataFrame, int]:
    """One option per member (``none`` when nothing has positive value); ``(choice, unfunded)``.

    Without a budget each member gets their best option; with one, ``policy.allocate`` picks at
    most one option per member within it, and members with a positive option left unfunded are
    the ``budget`` exclusions.
    """
    opts = options[options["member_id"].isin(members)]
    best = best_options(opts)
    if budget is None:
        return best, 0
    chosen = policy_adapter.allocate(
        opts.assign(option_id=opts["benefit_id"], value=opts["expected_net_value"]), budget
    )
    chosen = chosen.drop(columns=["option_id", "value"])
    positive = set(best.loc[best["expected_net_value"] > 0, "member_id"])
    unfunded = positive - set(chosen["member_id"])
    rest = best[~best["member_id"].isin(chosen["member_id"]) & ~best["member_id"].isin(unfunded)]
    rest = rest.assign(benefit_id=NONE_BENEFIT, cost=0.0, expected_net_value=0.0)
    return pd.concat([chosen, rest], ignore_index=True), len(unfunded)


def build_at_risk(
    scored: pd.DataFrame,
    options: pd.DataFrame,
    view: ContactView,
    request: AtRiskRequest,
    policy: CampaignPolicy,
    reasons_for: ReasonsProvider | None = None,
) -> BuiltCampaign:
    """The list. ``scored`` carries ``reasons``, or ``reasons_for(member_ids)`` computes them
    for just the members the list examines (reason codes cost ~ms per member: SHAP)."""
    excluded = dict.fromkeys(EXCLUDED_KEYS, 0)
    targeted = scored.assign(member_id=scored["member_id"].astype(str))
    if request.min_probability is not None:
        targeted = targeted[targeted["churn_probability"] >= request.min_probability]
    if request.value_segments:
        targeted = targeted[targeted["value_segment"].isin(request.value_segments)]

    # Eligibility: a member with no eligible option (not even `none`) cannot be recalled.
    opts = options.assign(member_id=options["member_id"].astype(str))
    opts = opts[opts["eligible"].astype(bool) & opts["member_id"].isin(targeted["member_id"])]
    has_option = targeted["member_id"].isin(opts["member_id"])
    excluded["ineligible"] = int((~has_option).sum())
    targeted = targeted[has_option]

    if "reasons" in targeted.columns or reasons_for is None:
        kept = _contact_policy(targeted, view, request, policy, excluded)
    else:
        kept = _contactable_lazily(targeted, opts, view, request, policy, excluded, reasons_for)

    # Rank every contactable candidate by the expected net value of recalling them (their best
    # eligible option), then cut to `limit`: the holdout and the budget act on this list only,
    # so control members never crowd out treated ones and the holdout is a share of the list.
    best = best_options(opts[opts["member_id"].isin(kept["member_id"])])
    ranked = (
        kept.drop(columns=[c for c in ("benefit_id", "cost", "expected_net_value") if c in kept])
        .merge(
            best[["member_id", "benefit_id", "expected_net_value", "cost"]],
            on="member_id",
            how="inner",
            validate="one_to_one",
        )
        .sort_values(
            ["expected_net_value", "churn_probability", "member_id"],
            ascending=[False, False, True],
            kind="stable",
        )
        .head(request.limit)
        .reset_index(drop=True)
    )
    ranked["rank"] = range(len(ranked))

    # Holdout: a reproducible random share of the list kept as `none` (control); no budget.
    share = min(max(policy.holdout_share, 0.0), 1.0)
    holdout = ranked["member_id"].map(lambda m: in_holdout(request.campaign_id, m, share))
    holdout = holdout.astype(bool)

    # Budget among the treated only; a treated member whose positive option is left unfunded is
    # dropped from the list and counted in `excluded.budget`.
    choice, unfunded = _choose_benefits(opts, ranked.loc[~holdout, "member_id"], request.budget)
    excluded["budget"] = unfunded
    held = ranked.loc[holdout, ["member_id"]].assign(
        benefit_id=NONE_BENEFIT, expected_net_value=0.0, cost=0.0
    )
    choice = pd.concat(
        [
            choice[["member_id", "benefit_id", "expected_net_value", "cost"]].assign(holdout=False),
            held.assign(holdout=True),
        ],
        ignore_index=True,
    )
    choice["propensity"] = choice["holdout"].map(lambda h: share if h else 1.0 - share)
    final = (
        ranked.drop(columns=["benefit_id", "expected_net_value", "cost"])
        .merge(choice, on="member_id", how="inner", validate="one_to_one")
        .sort_values(["expected_net_value", "rank"], ascending=[False, True], kind="stable")
    )

    if "expected_uplift" in opts.columns:
        uplift = opts[["member_id", "benefit_id", "expected_uplift"]].drop_duplicates(
            ["member_id", "benefit_id"]
        )
        final = final.merge(uplift, on=["member_id", "benefit_id"], how="left")
    else:
        final = final.assign(expected_uplift=float("nan"))
    # Holdout members get nothing, so nothing is expected of them.
    final.loc[final["holdout"], "expected_uplift"] = 0.0

    members: list[dict[str, Any]] = []
    contacts: list[ContactRow] = []
    for row in final.itertuples(index=False):
        members.append(
            {
                "member_id": row.member_id,
                "churn_probability": float(row.churn_probability),
                "risk_band": str(row.risk_band),
                "value_segment": str(row.value_segment),
                "reasons": _reason_list(row.reasons),
                "strategy": str(row.strategy),
                "benefit_id": str(row.benefit_id),
                "expected_net_value": float(row.expected_net_value),
                "cost": float(row.cost),
                "channel": str(row.channel),
                "holdout": bool(row.holdout),
                "propensity": float(row.propensity),
                "expected_uplift": None
                if pd.isna(row.expected_uplift)
                else float(row.expected_uplift),
            }
        )
        contacts.append(
            ContactRow(
                member_id=row.member_id,
                channel=str(row.channel),
                benefit_id=str(row.benefit_id),
                cost=float(row.cost),
                propensity=float(row.propensity),
                holdout=bool(row.holdout),
            )
        )
    payload = {"campaign_id": request.campaign_id, "members": members, "excluded": excluded}
    return BuiltCampaign(payload, contacts)


def _contact_policy(
    targeted: pd.DataFrame,
    view: ContactView,
    request: AtRiskRequest,
    policy: CampaignPolicy,
    excluded: dict[str, int],
) -> pd.DataFrame:
    """Strategy per member (name, channel hint, reduced cap) and the contact policy: ``kept``."""
    strategies = [
        policy_adapter.recall_strategy(str(seg), _reason_list(reasons), policy.config)
        for seg, reasons in zip(targeted["value_segment"], targeted["reasons"], strict=True)
    ]
    candidates = targeted.assign(
        strategy=[s.name for s in strategies],
        channel=[request.channel or s.channel_hint or policy.default_channel for s in strategies],
    )
    caps = [s.max_contacts_7d for s in strategies]
    if any(c is not None for c in caps):
        candidates["max_contacts_7d"] = pd.array(caps, dtype="Int64")

    kept, dropped = policy_adapter.apply_contact_policy(
        candidates, view.contacts, view.now, policy.config, view.suppressed, view.unsubscribed
    )
    _count(excluded, dropped)
    return kept


def _count(excluded: dict[str, int], dropped: pd.DataFrame) -> None:
    for reason, count in dropped["reason"].value_counts().items():
        key = EXCLUDED_BY_REASON.get(str(reason), str(reason))
        excluded[key] = excluded.get(key, 0) + int(count)


def _contactable_lazily(
    targeted: pd.DataFrame,
    opts: pd.DataFrame,
    view: ContactView,
    request: AtRiskRequest,
    policy: CampaignPolicy,
    excluded: dict[str, int],
    reasons_for: ReasonsProvider,
) -> pd.DataFrame:
    """``_contact_policy``'s answer for the members the list can reach, with reason codes
    computed only for those.

    1. The contact policy at the programme's caps over every targeted member (no reasons
       needed): its drops are final, since a strategy can only lower a member's cap.
    2. The rest in the list's ranking order (best option's expected net value, probability,
       id), chunk by chunk: reasons → strategy → the policy again with the strategy's cap,
       until ``limit`` members are kept. Each member's decision depends on that member alone,
       so the first ``limit`` kept are exactly the eager path's; the only difference is that
       strategy-lowered caps are counted in ``excluded`` for examined members only.
    """
    base = targeted.assign(channel=request.channel or policy.default_channel)
    first, dropped = policy_adapter.apply_contact_policy(
        base, view.contacts, view.now, policy.config, view.suppressed, view.unsubscribed
    )
    _count(excluded, dropped)
    best = best_options(opts[opts["member_id"].isin(first["member_id"])])
    order = (
        targeted[targeted["member_id"].isin(first["member_id"])]
        .merge(best[["member_id", "expected_net_value"]], on="member_id", validate="one_to_one")
        .sort_values(
            ["expected_net_value", "churn_probability", "member_id"],
            ascending=[False, False, True],
            kind="stable",
        )
        .drop(columns=["expected_net_value"])
        .reset_index(drop=True)
    )
    parts: list[pd.DataFrame] = []
    kept_n, pos = 0, 0
    while kept_n < request.limit and pos < len(order):
        size = max(int((request.limit - kept_n) * 1.1) + 16, 64)
        chunk = order.iloc[pos : pos + size]
        pos += size
        reasons = reasons_for(chunk["member_id"].tolist())
        chunk = chunk.assign(reasons=reasons)
        kept = _contact_policy(chunk, view, request, policy, excluded)
        parts.append(kept)
        kept_n += len(kept)
    if not parts:
        return _contact_policy(
            order.assign(reasons=[[]] * len(order)), view, request, policy, excluded
        )
    return pd.concat(parts, ignore_index=True)


def _reason_list(reasons: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in reasons] if isinstance(reasons, list | tuple) else []


def create_at_risk_campaign(
    log: ContactLog,
    request: AtRiskRequest,
    scored: pd.DataFrame,
    options: pd.DataFrame,
    policy: CampaignPolicy,
    now: datetime | None = None,
    reasons_for: ReasonsProvider | None = None,
) -> CampaignResult:
    """Build and record the list in one contact-log transaction (idempotent per campaign id)."""
    return log.create_campaign(
        request.campaign_id,
        request.body(),
        lambda view: build_at_risk(scored, options, view, request, policy, reasons_for),
        channel=request.channel or policy.default_channel,
        lookback_days=policy_adapter.lookback_days(policy.config),
        now=now,
    )
