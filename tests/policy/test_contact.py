"""Contact policy: reasons, and caps that hold for any order of events (property test)."""

from __future__ import annotations

import pandas as pd
from hypothesis import strategies as st

from loyalty_ml.policy import apply_contact_policy, drop_counts, load_policy

from .conftest import fast_and_deep

NOW = pd.Timestamp("2025-06-10 12:00", tz="UTC")


def _log(rows):
    return pd.DataFrame(rows, columns=["member_id", "contacted_at"])


def test_reasons(cfg) -> None:
    cands = pd.DataFrame(
        {"member_id": ["a", "b", "c", "d", "e", "f", "f", "g"], "channel": [None] * 7 + ["fax"]}
    )
    log = _log(
        [
            ("c", NOW - pd.Timedelta(hours=47)),  # quiet period
            ("d", NOW - pd.Timedelta(days=6)),  # cap: 2 in the last 7 days
            ("d", NOW - pd.Timedelta(days=3)),
            ("e", NOW - pd.Timedelta(days=8)),  # outside the window: kept
            ("e", NOW - pd.Timedelta(hours=48)),  # exactly the quiet period: allowed
        ]
    )
    kept, dropped = apply_contact_policy(cands, log, NOW, cfg, suppressed={"a"}, unsubscribed={"b"})
    assert list(kept["member_id"]) == ["e", "f"]
    assert dict(zip(dropped["member_id"], dropped["reason"], strict=True)) == {
        "a": "suppressed",
        "b": "unsubscribed",
        "c": "quiet_period",
        "d": "contact_cap",
        "f": "duplicate",
        "g": "unknown_channel",
    }
    counts = drop_counts(dropped)
    assert counts["contact_cap"] == 1 and counts["quiet_period"] == 1
    assert counts["suppressed"] == 1 and counts["unsubscribed"] == 1


def test_preference_and_per_member_cap(cfg) -> None:
    cands = pd.DataFrame(
        {"member_id": ["a", "b"], "channel": ["email", "email"], "max_contacts_7d": [1, 2]}
    )
    log = _log([("a", NOW - pd.Timedelta(days=4)), ("b", NOW - pd.Timedelta(days=4))])
    kept, dropped = apply_contact_policy(cands, log, NOW, cfg, preferences={"b": "push"})
    assert list(dropped["member_id"]) == ["a"] and list(dropped["reason"]) == ["contact_cap"]
    assert kept.iloc[0]["channel"] == "push" and bool(kept.iloc[0]["channel_rerouted"])


def test_no_log(cfg) -> None:
    kept, dropped = apply_contact_policy(pd.DataFrame({"member_id": ["a"]}), None, NOW, cfg)
    assert len(kept) == 1 and len(dropped) == 0


def _caps_never_exceeded_any_order(batches, cap) -> None:
    """Batches arrive in any order (hypothesis shuffles times); the resulting log obeys the caps."""
    base = load_policy()
    cfg = base.model_copy(update={"contact": base.contact.model_copy(update={"max_per_7d": cap})})
    start = pd.Timestamp("2025-01-01", tz="UTC")
    rows: list[tuple[str, pd.Timestamp]] = []
    for hour, member in batches:
        now = start + pd.Timedelta(hours=hour)
        kept, _ = apply_contact_policy(pd.DataFrame({"member_id": [member]}), _log(rows), now, cfg)
        if len(kept):
            rows.append((member, now))
    log = _log(rows)
    quiet = pd.Timedelta(hours=cfg.contact.quiet_period_hours)
    week = pd.Timedelta(days=7)
    for _, times in log.groupby("member_id")["contacted_at"]:
        t = times.sort_values().reset_index(drop=True)
        assert (t.diff().dropna() >= quiet).all()
        for x in t:
            assert ((t > x - week) & (t <= x)).sum() <= cap


test_caps_never_exceeded_any_order, test_caps_never_exceeded_any_order_deep = fast_and_deep(
    (
        st.lists(
            st.tuples(st.integers(0, 30 * 24), st.sampled_from(["a", "b", "c"])),
            min_size=1,
            max_size=25,
        ),
        st.integers(1, 3),
    ),
    10,
    300,
)(_caps_never_exceeded_any_order)
