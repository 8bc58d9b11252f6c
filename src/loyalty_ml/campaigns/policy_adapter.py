"""The narrow seam between campaigns and ``loyalty_ml.policy`` (contact caps, strategy, budget).

Campaign code calls only the functions here. Each one uses ``loyalty_ml.policy`` when that module
provides the function, and an interim rule otherwise, so the builder works while the policy module
is written; ``uses_policy_module()`` says which is active and ``/readyz`` reports it. The interim
rules are deliberately simple and are *not* the shop's rules: delete them once policy has landed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from loyalty_ml.errors import LoyaltyError

DROP_REASONS = ("contact_cap", "quiet_period", "suppressed", "unsubscribed")


@dataclass(frozen=True)
class InterimContactRules:
    """Used only while ``loyalty_ml.policy`` lacks ``apply_contact_policy``."""

    max_contacts: int = 2
    window_days: int = 30
    quiet_period_days: int = 7


def _policy_function(name: str) -> Any | None:
    try:
        module = importlib.import_module("loyalty_ml.policy")
    except ImportError:
        return None
    return getattr(module, name, None)


def uses_policy_module() -> dict[str, bool]:
    return {
        name: _policy_function(name) is not None
        for name in ("load_policy", "apply_contact_policy", "allocate", "recall_strategy")
    }


def load_policy_config() -> Any:
    """The shop's policy configuration, or ``None`` while the policy module is missing."""
    loader = _policy_function("load_policy")
    return loader() if loader is not None else None


def lookback_days(config: Any) -> int:
    """How far back the contact log must be read for the caps to be decided."""
    for attr in ("contact_lookback_days", "lookback_days"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    contact = getattr(config, "contact", None)
    for attr in ("window_days", "lookback_days"):
        value = getattr(contact, attr, None)
        if isinstance(value, int) and value > 0:
            return max(value, 30)
    return 90


def apply_contact_policy(
    candidates: pd.DataFrame,
    contact_log: pd.DataFrame,
    now: datetime,
    config: Any,
    suppressed: frozenset[str],
    unsubscribed: frozenset[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(kept, dropped)``; ``dropped`` has a ``reason`` in ``DROP_REASONS``."""
    real = _policy_function("apply_contact_policy")
    if real is not None:
        kept, dropped = real(candidates, contact_log, now, config, suppressed, unsubscribed)
        return kept, dropped
    return _interim_contact_policy(candidates, contact_log, now, suppressed, unsubscribed)


def _interim_contact_policy(
    candidates: pd.DataFrame,
    contact_log: pd.DataFrame,
    now: datetime,
    suppressed: frozenset[str],
    unsubscribed: frozenset[str],
    rules: InterimContactRules = InterimContactRules(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    now_ts = pd.Timestamp(now)
    window = contact_log[contact_log["contacted_at"] >= now_ts - timedelta(days=rules.window_days)]
    counts = window.groupby("member_id").size()
    last = contact_log.groupby("member_id")["contacted_at"].max()
    ids = candidates["member_id"].astype(str)
    reason = pd.Series(None, index=candidates.index, dtype=object)
    quiet = ids.map(last).ge(now_ts - timedelta(days=rules.quiet_period_days)).fillna(False)
    reason[quiet.astype(bool)] = "quiet_period"
    capped = ids.map(counts).fillna(0) >= rules.max_contacts
    reason[capped] = "contact_cap"
    reason[ids.isin(unsubscribed)] = "unsubscribed"
    reason[ids.isin(suppressed)] = "suppressed"
    dropped = candidates[reason.notna()].assign(reason=reason[reason.notna()])
    return candidates[reason.isna()], dropped


def allocate(options: pd.DataFrame, budget: float) -> pd.DataFrame:
    """At most one option per member within ``budget``: the chosen rows of ``options``.

    ``options``: ``member_id``, ``option_id``, ``value`` (expected net value), ``cost``. Options
    with value <= 0 are never chosen.
    """
    real = _policy_function("allocate")
    if real is not None:
        return real(options, budget)
    ranked = options[options["value"] > 0].sort_values("value", ascending=False, kind="stable")
    spent, chosen, seen = 0.0, [], set()
    for idx, row in ranked.iterrows():
        if row["member_id"] in seen or spent + float(row["cost"]) > budget + 1e-9:
            continue
        seen.add(row["member_id"])
        spent += float(row["cost"])
        chosen.append(idx)
    return options.loc[chosen]


@dataclass(frozen=True)
class StrategyView:
    """What the at-risk list needs from a recall strategy."""

    name: str
    channel_hint: str | None = None
    max_contacts_7d: int | None = None


def recall_strategy(value_segment: str, reasons: list[dict[str, Any]], config: Any) -> StrategyView:
    """The configured strategy for a segment and its reasons (codes by weight, unknown ones ignored)."""
    codes = [str(r.get("code")) for r in sorted(reasons, key=lambda r: -float(r.get("weight", 0)))]
    real = _policy_function("recall_strategy")
    if real is not None:
        known = getattr(config, "reasons", None)
        if known is not None:
            codes = [c for c in codes if c in known]
        try:
            strategy = real(value_segment, codes, config)
        except LoyaltyError:
            return StrategyView("default_recall")
        return StrategyView(
            str(strategy.name), strategy.channel_hint, int(strategy.max_contacts_7d)
        )
    if value_segment in ("high", "vip", "top"):
        return StrategyView("vip_recall")
    return StrategyView("standard_recall")
