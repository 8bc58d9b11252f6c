"""Replay: worked examples from the programme documents and property tests of the rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from loyalty_ml.policy import MemberState, eligibility, replay, tier_history

from .conftest import fast_and_deep, policy_with

UTC = "UTC"


def ts(value: str) -> pd.Timestamp:
    return pd.Timestamp(value, tz=UTC)


def tables(orders, events=(), members=None, offers=None) -> dict[str, pd.DataFrame]:
    """Tiny contract tables from tuples: orders (member, time, amount[, status])."""
    o = pd.DataFrame(
        [(m, ts(t), a, *(rest or ("completed",))) for m, t, a, *rest in orders],
        columns=["member_id", "ordered_at", "amount", "status"],
    )
    ids = sorted({*o["member_id"], *(e[0] for e in events)}) if members is None else None
    m = (
        members
        if members is not None
        else pd.DataFrame({"member_id": ids, "joined_at": ts("2023-12-01"), "birth_date": pd.NaT})
    )
    e = pd.DataFrame(
        [(mid, ts(t), kind) for mid, t, kind in events],
        columns=["member_id", "occurred_at", "event_type"],
    )
    out = {"members": m, "orders": o, "events": e}
    if offers is not None:
        out["offers"] = offers
    return out


def state(data, at, cfg, **kw) -> pd.Series:
    frame = replay(data, cfg, as_of=at, **kw)
    assert len(frame) >= 1
    return frame.set_index("member_id").iloc[0]


# ----------------------------------------------------------------------- worked examples


def test_silver_member_spending_2000_more_reaches_gold(cfg) -> None:
    # 1,000 spent: silver (growth 700). 2,000 more: growth 2,100 = gold at the next monthly check.
    data = tables([("m", "2024-01-10", 1000), ("m", "2024-02-15", 2000)])
    assert state(data, "2024-02-01", cfg)["tier"] == "silver"
    before = state(data, "2024-02-29 23:59", cfg)
    assert before["tier"] == "silver" and before["growth_value"] == pytest.approx(2100)
    assert before["distance_to_next_tier"] == 0
    assert state(data, "2024-03-01", cfg)["tier"] == "gold"


def test_below_threshold_three_months_warning_then_downgrade_and_transition(cfg) -> None:
    # A 600 first order starts the member at silver, but growth 420 < 700.
    data = tables([("m", "2024-01-05", 600)])
    assert state(data, "2024-01-05", cfg)["tier"] == "silver"
    s = state(data, "2024-03-01", cfg)
    assert s["months_below_threshold"] == 2 and not s["downgrade_warning"]
    s = state(data, "2024-04-01", cfg)  # third consecutive check below
    assert s["downgrade_warning"] and s["in_grace"] and s["grace_ends_at"] == ts("2024-05-01")
    assert state(data, "2024-04-30 23:59", cfg)["tier"] == "silver"
    s = state(data, "2024-05-01", cfg)
    assert s["tier"] == "normal" and s["benefit_tier"] == "silver"
    assert s["transition_until"] == ts("2024-08-01")
    assert state(data, "2024-07-31", cfg)["benefit_tier"] == "silver"
    assert state(data, "2024-08-01", cfg)["benefit_tier"] == "normal"
    hist = tier_history(data, cfg, as_of="2024-12-31")
    assert list(hist["cause"]) == ["first_order", "downgrade"]
    assert list(hist["changed_at"]) == [ts("2024-01-05"), ts("2024-05-01")]


def test_reaching_threshold_in_grace_keeps_tier(cfg) -> None:
    data = tables([("m", "2024-01-05", 600), ("m", "2024-04-20", 400)])
    s = state(data, "2024-05-01", cfg)
    assert s["tier"] == "silver" and not s["downgrade_warning"]
    assert s["months_below_threshold"] == 0


def test_small_first_order_no_boost(cfg) -> None:
    assert state(tables([("m", "2024-01-05", 499)]), "2024-02-01", cfg)["tier"] == "normal"


def test_yearly_review_warns_at_once(cfg) -> None:
    # Gold (3,000) in Jan 2024; by the 2025-01-01 review growth has fallen below gold's 2,100.
    data = tables([("m", "2024-01-10", 3000), ("m", "2024-12-20", 100)])
    assert state(data, "2024-02-01", cfg)["tier"] == "gold"
    s = state(data, "2025-02-01", cfg)
    assert s["tier"] == "gold"  # below since the Feb check only: no warning yet
    data2 = tables([("m", "2023-12-20", 3000), ("m", "2024-12-10", 10)])
    s2 = state(data2, "2025-01-01", cfg)
    # 2023-12-20 order left the window before the review: one month below, warned on review day.
    assert s2["tier"] == "gold" and s2["downgrade_warning"] and s2["months_below_threshold"] == 1


def test_points_rules(cfg) -> None:
    members = pd.DataFrame(
        {"member_id": ["m"], "joined_at": [ts("2023-12-01")], "birth_date": [ts("1990-03-15")]}
    )
    data = tables(
        [
            ("m", "2024-01-05", 300),  # 300 points at normal
            ("m", "2024-03-10", 100),  # birthday month: 200
            ("m", "2024-04-01", 50, "returned"),  # 50, reversed 14 days later
        ],
        events=[("m", "2024-02-01", "review"), ("m", "2024-02-02", "share")],
        members=members,
    )
    assert state(data, "2024-04-01", cfg)["points_balance"] == 300 + 200 + 50 + 30 + 50
    s = state(data, "2024-04-20", cfg)
    assert s["points_balance"] == 580
    # The reversal took the oldest points (FIFO): 250 of the Jan lot remain to expire in Jan 2025.
    s = state(data, "2024-12-10", cfg)
    assert s["points_expiring_30d"] == 250
    s = state(data, "2025-01-05", cfg)
    assert s["points_balance"] == 330 and s["points_expiring_30d"] == 80
    redemptions = pd.DataFrame(
        {"member_id": ["m"], "redeemed_at": [ts("2024-05-01")], "points": [10_000]}
    )
    s = state(data, "2024-06-01", cfg, redemptions=redemptions)
    assert s["points_balance"] == 0  # capped at the balance, never negative


def test_tier_multiplier_and_benefit_usage(cfg) -> None:
    offers = pd.DataFrame(
        {
            "offer_id": ["o1", "o2", "o3"],
            "member_id": ["m", "m", "m"],
            "offered_at": [ts("2024-03-02"), ts("2024-03-03"), ts("2024-02-03")],
            "benefit_id": ["coupon_200_50", "coupon_200_50", "coupon_50"],
            "converted": [1, 1, 0],
        }
    )
    data = tables([("m", "2024-01-05", 3000), ("m", "2024-02-10", 100)], offers=offers)
    s = state(data, "2024-03-10", cfg)
    # 3,000 first order earns at normal (the tier before it); growth 2,100 makes the member gold
    # at the 02-01 check, so the 02-10 order earns at gold (1.5x).
    assert s["points_balance"] == 3000 + 150
    assert s["used_month__coupon_200_50"] == 2 and s["used_month__coupon_50"] == 0
    assert eligibility(s, "coupon_200_50", "2024-03-10", cfg).reason == "monthly_limit"
    assert MemberState.from_row(s).tier == "gold"


def test_snapshot_frame_and_joined_filter(cfg) -> None:
    members = pd.DataFrame(
        {
            "member_id": ["a", "b"],
            "joined_at": [ts("2024-01-01"), ts("2024-06-01")],
        }
    )
    data = tables([("a", "2024-01-05", 100), ("b", "2024-06-05", 100)], members=members)
    out = replay(data, cfg, snapshots=["2024-03-01", "2024-07-01"])
    assert list(zip(out["member_id"], out["as_of"].dt.month, strict=True)) == [
        ("a", 3),
        ("a", 7),
        ("b", 7),
    ]
    pairs = pd.DataFrame({"member_id": ["b", "a"], "as_of": [ts("2024-07-01"), ts("2024-03-01")]})
    per = replay(data, cfg, snapshots=pairs)
    assert set(zip(per["member_id"], per["as_of"].dt.month, strict=True)) == {("a", 3), ("b", 7)}


# ----------------------------------------------------------------------- property tests

START = ts("2024-01-01")
HOURS = 2 * 365 * 24

order_st = st.tuples(
    st.integers(0, 3),  # member
    st.integers(0, HOURS),  # hour offset
    st.integers(0, 4000),  # amount
    st.sampled_from(["completed", "completed", "completed", "returned", "cancelled"]),
)
event_st = st.tuples(
    st.integers(0, 3), st.integers(0, HOURS), st.sampled_from(["review", "share", "view"])
)
redeem_st = st.tuples(st.integers(0, 3), st.integers(0, HOURS), st.integers(1, 3000))


def _data(orders, events, redeems):
    members = pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(4)],
            "joined_at": START - pd.Timedelta(days=1),
            "birth_date": [ts("1990-03-01"), pd.NaT, ts("1980-07-09"), ts("1999-12-31")],
        }
    )
    o = pd.DataFrame(
        {
            "member_id": [f"m{m}" for m, *_ in orders],
            "ordered_at": pd.to_datetime(
                [START + pd.Timedelta(hours=h) for _, h, *_ in orders], utc=True
            ),
            "amount": pd.Series([float(a) for *_, a, _ in orders], dtype=float),
            "status": pd.Series([s for *_, s in orders], dtype=object),
        }
    )
    e = pd.DataFrame(
        {
            "member_id": [f"m{m}" for m, _, _ in events],
            "occurred_at": pd.to_datetime(
                [START + pd.Timedelta(hours=h) for _, h, _ in events], utc=True
            ),
            "event_type": [k for *_, k in events],
        }
    )
    r = pd.DataFrame(
        {
            "member_id": [f"m{m}" for m, _, _ in redeems],
            "redeemed_at": pd.to_datetime(
                [START + pd.Timedelta(hours=h) for _, h, _ in redeems], utc=True
            ),
            "points": [p for *_, p in redeems],
        }
    )
    return {"members": members, "orders": o, "events": e, "redemptions": r}


def _flat_points_cfg():
    def edit(raw: dict) -> None:
        raw["points"]["tier_multipliers"] = dict.fromkeys(raw["points"]["tier_multipliers"], 1.0)
        raw["points"]["birthday_multiplier"] = 1.0

    return policy_with(edit)


FLAT = _flat_points_cfg()


def _reference_points(data, cfg, at: pd.Timestamp) -> dict[str, tuple[int, int]]:
    """Explicit lot-by-lot FIFO ledger (the specification the vectorised version must match)."""
    lag = pd.Timedelta(days=cfg.tiers.return_lag_days)
    months = pd.DateOffset(months=cfg.points.expiry_months)
    soon = pd.Timedelta(days=cfg.points.expiring_soon_days)
    result = {}
    for mid in data["members"]["member_id"]:
        ops = []  # (time, kind, seq, points): kind 0 expiry, 1 earn, 2 debit
        o = data["orders"][data["orders"]["member_id"] == mid]
        seq = 0
        for _, row in o.iterrows():
            if row["status"] == "cancelled":
                continue
            pts = int(np.floor(row["amount"] * cfg.points.earn_per_unit + 1e-9))
            ops.append((row["ordered_at"], 1, seq, pts))
            if row["status"] == "returned":
                ops.append((row["ordered_at"] + lag, 2, seq, pts))
            seq += 1
        ev = data["events"][data["events"]["member_id"] == mid]
        for _, row in ev.iterrows():
            bonus = cfg.points.event_bonus.get(row["event_type"], 0)
            if bonus:
                ops.append((row["occurred_at"], 1, seq, bonus))
                seq += 1
        rd = data["redemptions"][data["redemptions"]["member_id"] == mid]
        for _, row in rd.iterrows():
            ops.append((row["redeemed_at"], 2, seq, row["points"]))
            seq += 1
        earns = sorted((t, s, p) for t, k, s, p in ops if k == 1)
        lots = []  # [earned_at, expires_at, remaining]
        timeline = [(t, k, s, p) for t, k, s, p in ops if k == 2]
        for i, (t, _s, p) in enumerate(earns):
            timeline.append((t, 1, i, p))
            timeline.append((t + months, 0, i, p))
        timeline.sort(key=lambda x: (x[0], x[1], x[2]))
        lots = {}
        for t, kind, i, p in timeline:
            if t > at:
                break
            if kind == 1:
                lots[i] = [t, t + months, p]
            elif kind == 0:
                lots.pop(i, None)
            else:
                need = p
                for key in sorted(lots):
                    take = min(need, lots[key][2])
                    lots[key][2] -= take
                    need -= take
                    if need <= 0:
                        break
        balance = sum(v[2] for v in lots.values())
        expiring = sum(v[2] for v in lots.values() if at < v[1] <= at + soon)
        result[mid] = (balance, expiring)
    return result


def _points_fifo_exact_and_never_negative(orders, events, redeems, snap_hours) -> None:
    data = _data(orders, events, redeems)
    snaps = sorted({START + pd.Timedelta(hours=h) for h in snap_hours})
    out = replay(data, FLAT, snapshots=snaps)
    assert (out["points_balance"] >= 0).all()
    assert (out["points_expiring_30d"] <= out["points_balance"]).all()
    for at in snaps:
        ref = _reference_points(data, FLAT, at)
        got = out[out["as_of"] == at].set_index("member_id")
        for mid, (balance, expiring) in ref.items():
            assert got.loc[mid, "points_balance"] == balance, (mid, at)
            assert got.loc[mid, "points_expiring_30d"] == expiring, (mid, at)


test_points_fifo_exact_and_never_negative, test_points_fifo_exact_and_never_negative_deep = (
    fast_and_deep(
        (
            st.lists(order_st, max_size=14),
            st.lists(event_st, max_size=6),
            st.lists(redeem_st, max_size=4),
            st.lists(st.integers(0, HOURS + 24 * 90), min_size=1, max_size=3),
        ),
        6,
        200,
    )(_points_fifo_exact_and_never_negative)
)


def _norm(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["as_of", "member_id"]).reset_index(drop=True)


def _replay_independent_of_chunking(orders, events, redeems, snap_hours, rnd) -> None:
    from loyalty_ml.policy import load_policy

    cfg = load_policy()
    data = _data(orders, events, redeems)
    snaps = sorted({START + pd.Timedelta(hours=h) for h in snap_hours})
    full = _norm(replay(data, cfg, snapshots=snaps))
    # Chunked by snapshot time, and with the data cut at the snapshot (nothing later is read).
    per_time = []
    for at in snaps:
        cut = {
            "members": data["members"],
            "orders": data["orders"][data["orders"]["ordered_at"] <= at],
            "events": data["events"][data["events"]["occurred_at"] <= at],
            "redemptions": data["redemptions"][data["redemptions"]["redeemed_at"] <= at],
        }
        per_time.append(replay(cut, cfg, as_of=at))
    pd.testing.assert_frame_equal(full, _norm(pd.concat(per_time)), check_dtype=False)
    # Per-member snapshot pairs, shuffled (many distinct times in one replay).
    pairs = full[["member_id", "as_of"]].sample(frac=1, random_state=2)
    paired = replay(data, cfg, snapshots=pairs)
    assert list(paired["member_id"]) == list(pairs["member_id"])
    pd.testing.assert_frame_equal(full, _norm(paired), check_dtype=False)
    # Chunked by member, rows shuffled.
    ids = list(data["members"]["member_id"])
    rnd.shuffle(ids)
    parts = []
    for chunk in (ids[:2], ids[2:]):
        sub = {
            k: v[v["member_id"].isin(chunk)].sample(frac=1, random_state=1) for k, v in data.items()
        }
        parts.append(replay(sub, cfg, snapshots=snaps))
    pd.testing.assert_frame_equal(full, _norm(pd.concat(parts)), check_dtype=False)


test_replay_independent_of_chunking, test_replay_independent_of_chunking_deep = fast_and_deep(
    (
        st.lists(order_st, max_size=14),
        st.lists(event_st, max_size=6),
        st.lists(redeem_st, max_size=3),
        st.lists(st.integers(0, HOURS + 24 * 90), min_size=1, max_size=3),
        st.randoms(use_true_random=False),
    ),
    4,
    100,
)(_replay_independent_of_chunking)


def _tier_changes_only_on_allowed_dates(orders, events) -> None:
    from loyalty_ml.policy import load_policy

    cfg = load_policy()
    data = _data(orders, events, [])
    end = START + pd.Timedelta(hours=HOURS + 24 * 120)
    hist = tier_history(data, cfg, as_of=end)
    o = data["orders"][data["orders"]["status"] != "cancelled"]
    first = o.groupby("member_id")["ordered_at"].min()
    grace = pd.Timedelta(days=cfg.tiers.grace_days)
    thr = dict(zip(cfg.tier_names, cfg.tiers.thresholds, strict=True))
    checked_downgrades = 0
    for _, ch in hist.iterrows():
        t = ch["changed_at"]
        if ch["cause"] == "upgrade":
            assert t.day == cfg.tiers.check_day and t == t.normalize()
            assert cfg.tier_index(ch["tier"]) > cfg.tier_index(ch["from_tier"])
        elif ch["cause"] == "first_order":
            assert t == first[ch["member_id"]].floor("s")
        else:
            warned = t - grace
            assert warned.day == cfg.tiers.check_day and warned == warned.normalize()
            checked_downgrades += 1
            if checked_downgrades > 2:  # replays below are the slow part; two per case suffice
                continue
            # Grace honoured: warned and still in grace just before; below threshold at its end.
            just_before = replay(data, cfg, as_of=t - pd.Timedelta(seconds=1))
            row = just_before.set_index("member_id").loc[ch["member_id"]]
            assert row["downgrade_warning"] and row["grace_ends_at"] == t
            at_end = replay(data, cfg, as_of=t).set_index("member_id").loc[ch["member_id"]]
            assert at_end["growth_value"] < thr[ch["from_tier"]]
            # Transition honoured: the old tier's benefits until transition_until.
            assert cfg.tier_index(at_end["benefit_tier"]) >= cfg.tier_index(ch["from_tier"])
            assert ch["transition_until"] == t + pd.DateOffset(months=cfg.tiers.transition_months)
            drops = cfg.tier_index(ch["from_tier"]) - cfg.tier_index(ch["tier"])
            assert 1 <= drops <= cfg.tiers.max_downgrade_steps


test_tier_changes_only_on_allowed_dates, test_tier_changes_only_on_allowed_dates_deep = (
    fast_and_deep(
        (
            st.lists(order_st, max_size=14),
            st.lists(event_st, max_size=6),
        ),
        5,
        100,
    )(_tier_changes_only_on_allowed_dates)
)
