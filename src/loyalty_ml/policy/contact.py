"""Contact policy: who may be contacted now, and why the others may not.

Rules, in the order a candidate is tested (the first failing one is the reason):

1. ``unsubscribed`` — the member opted out;
2. ``suppressed`` — on the shop's suppression list (never contacted);
3. ``unknown_channel`` — the candidate names a channel the programme does not use;
4. ``duplicate`` — a member is contacted at most once per batch (a second contact at the same
   instant would break the quiet period);
5. ``quiet_period`` — a logged contact less than ``quiet_period_hours`` before *or after* ``now``;
6. ``contact_cap`` — ``max_per_7d`` logged contacts already in a 7-day window that would contain
   ``now``.

Looking both before and after ``now`` makes the caps hold whatever order batches are processed in
(a back-filled batch cannot squeeze a contact between later ones); in the usual chronological run
there is nothing after ``now`` and the rules are the plain rolling-window ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.policy._window import KeyedCumsum, to_secs
from loyalty_ml.policy.config import PolicyConfig, load_policy
from loyalty_ml.timeutil import to_utc

CONTACT_DROP_REASONS = (
    "unsubscribed",
    "suppressed",
    "unknown_channel",
    "duplicate",
    "quiet_period",
    "contact_cap",
)
WEEK_SECS = 7 * 24 * 3600


def apply_contact_policy(
    candidates: pd.DataFrame,
    contact_log: pd.DataFrame | None,
    now: Any,
    config: PolicyConfig | None = None,
    suppressed: Iterable[str] = (),
    unsubscribed: Iterable[str] = (),
    preferences: Mapping[str, str] | pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``candidates`` into (kept, dropped); ``dropped`` has a ``reason`` column.

    ``candidates``: ``member_id`` and optionally ``channel`` and ``max_contacts_7d`` (a per-member
    cap below the programme's, e.g. from the ``message_fatigue`` strategy). ``contact_log``:
    ``member_id``, ``contacted_at`` (channel is ignored: caps are per member across channels).
    ``preferences``: member → preferred channel; when known, a kept contact is sent there
    (``channel_rerouted`` marks the change). Row order and the index of ``candidates`` are kept.
    """
    cfg = config if config is not None else load_policy()
    t = to_utc(now)
    cands = candidates.copy()
    if "channel" not in cands:
        cands["channel"] = pd.Series(pd.NA, index=cands.index, dtype="string")
    ids = cands["member_id"].astype(str).to_numpy()
    n = len(cands)
    reason = np.full(n, None, dtype=object)

    if preferences is not None and n:
        pref = (
            pd.Series(preferences, dtype="object")
            if isinstance(preferences, Mapping)
            else preferences
        )
        preferred = pd.Series(ids).map(pref).to_numpy()
        known = pd.notna(preferred)
        current = cands["channel"].to_numpy(dtype=object)
        rerouted = (
            known
            & (
                pd.Series(current).astype("string").fillna("")
                != pd.Series(preferred).astype("string").fillna("")
            ).to_numpy()
        )
        cands["channel"] = np.where(known, preferred, current)
        cands["channel_rerouted"] = rerouted

    # Reverse priority: later assignments win, so the first rule in the docstring is reported.
    cap = np.full(n, cfg.contact.max_per_7d, dtype=np.int64)
    if "max_contacts_7d" in cands:
        own = pd.to_numeric(cands["max_contacts_7d"], errors="coerce").fillna(cap[0] if n else 0)
        cap = np.minimum(cap, own.to_numpy(dtype=np.int64))
    if contact_log is not None and len(contact_log) and n:
        log = contact_log[contact_log["contacted_at"].notna()]
        codes_all, _uniques = pd.factorize(
            pd.concat([log["member_id"].astype(str), pd.Series(ids)], ignore_index=True)
        )
        log_codes = codes_all[: len(log)]
        cand_codes = codes_all[len(log) :]
        index = KeyedCumsum(log_codes, to_secs(log["contacted_at"]))
        now_s = np.full(n, int(t.value // 1_000_000_000), dtype=np.int64)
        week = index.window(cand_codes, now_s - WEEK_SECS, now_s + WEEK_SECS, hi_inclusive=False)
        reason[week >= cap] = "contact_cap"
        quiet = round(cfg.contact.quiet_period_hours * 3600)
        if quiet > 0:
            near = index.window(cand_codes, now_s - quiet, now_s + quiet, hi_inclusive=False)
            reason[near > 0] = "quiet_period"
    else:
        reason[cap <= 0] = "contact_cap"
    reason[pd.Series(ids).duplicated(keep="first").to_numpy()] = "duplicate"
    channel = cands["channel"].astype("string")
    reason[(channel.notna() & ~channel.isin(cfg.contact.channels)).to_numpy()] = "unknown_channel"
    reason[np.isin(ids, np.asarray(list(set(map(str, suppressed))), dtype=object))] = "suppressed"
    reason[np.isin(ids, np.asarray(list(set(map(str, unsubscribed))), dtype=object))] = (
        "unsubscribed"
    )

    dropped_mask = pd.notna(reason)
    kept = cands[~dropped_mask]
    dropped = cands[dropped_mask].copy()
    dropped["reason"] = reason[dropped_mask].astype(str) if dropped_mask.any() else []
    return kept, dropped


def drop_counts(dropped: pd.DataFrame) -> dict[str, int]:
    """Counts per reason, with every reason present (0 when none) — what the at-risk API reports."""
    counts = dropped["reason"].value_counts() if len(dropped) else pd.Series(dtype=int)
    return {r: int(counts.get(r, 0)) for r in CONTACT_DROP_REASONS}
