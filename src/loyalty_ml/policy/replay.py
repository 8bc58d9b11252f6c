"""Replay members' histories into their loyalty state (tier, growth, points, warnings) at any time.

One engine for offline features/campaigns and online serving, vectorised over members:

* **Growth value** at ``t`` = ``spend_weight`` × paid spend in ``(t − 12 months, t]`` (an order
  returned by ``t`` — ``return_lag_days`` after it was placed, the contract has no return date —
  does not count) + ``behaviour_weight`` × weighted count of behaviour events in the same window.
* **Tier checks** run at 00:00 UTC on ``check_day`` of every month. At a check a member whose
  growth reaches a higher tier's threshold moves up (the warning, if any, is cleared). A member
  below their own tier's threshold counts one more month below; after ``warning_after_months``
  consecutive ones — or at once on the ``yearly_review`` check — they get a downgrade warning
  and a grace period of ``grace_days``. A check inside the grace period at or above the threshold
  clears the warning (tier kept); at the end of the grace period the growth value decides: at or
  above the threshold keeps the tier, below drops it (at most ``max_downgrade_steps``, never below
  what the growth value earns) and opens a transition of ``transition_months`` during which the
  old tier's benefits still apply (``benefit_tier``).
* **First order boost**: a member whose first (non-cancelled) order is at least
  ``first_order_boost_amount`` moves one tier up at that order.
* Tier changes therefore happen only on check dates, grace-period ends and first orders.
* **Points**: an order earns ``points_to_earn`` at the benefit tier held just before it; bonus
  events earn their bonus; a returned order's points are reversed ``return_lag_days`` later;
  redemptions (an optional ``redemptions`` table: member_id, redeemed_at, points) and reversals
  take points oldest-first and are capped at the balance, so it is never negative; each earned lot
  expires ``expiry_months`` after it was earned, whatever of it is still unspent (FIFO).

Only data at or before each snapshot is read for that snapshot, so the output is point-in-time
correct for features, and the result does not depend on how members or snapshots are chunked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.errors import LoyaltyError, MissingDataError
from loyalty_ml.policy._window import NO_TIME, KeyedCumsum, LastValue, to_secs
from loyalty_ml.policy.config import PolicyConfig, load_policy
from loyalty_ml.policy.rules import points_to_earn
from loyalty_ml.timeutil import to_utc

DAY = 86_400
UTC = "UTC"
_NONE = NO_TIME

#: Columns of :func:`replay` output before the per-benefit usage counts.
STATE_COLUMNS = (
    "member_id",
    "as_of",
    "tier",
    "tier_index",
    "benefit_tier",
    "growth_value",
    "spend_12m",
    "behaviour_score",
    "next_tier",
    "distance_to_next_tier",
    "spend_to_next_tier",
    "points_balance",
    "points_expiring_30d",
    "downgrade_warning",
    "in_grace",
    "grace_ends_at",
    "months_below_threshold",
    "transition_tier",
    "transition_until",
    "birth_month",
)


def _tables(data: Any) -> dict[str, pd.DataFrame | None]:
    if isinstance(data, Mapping):
        tables = dict(data)
    else:
        tables = {
            name: getattr(data, name, None) for name in ("members", "orders", "events", "offers")
        }
    if tables.get("members") is None:
        raise MissingDataError("replay needs the members table")
    if tables.get("orders") is None:
        tables["orders"] = pd.DataFrame(
            {
                "member_id": pd.Series(dtype="string"),
                "ordered_at": pd.Series(dtype="datetime64[ns, UTC]"),
                "amount": pd.Series(dtype=float),
            }
        )
    return tables


def _secs_of(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000_000)


def _shift_months(secs: np.ndarray, months: int) -> np.ndarray:
    """Seconds shifted by calendar months, clipped to the month's end like ``pd.DateOffset``.

    Pure numpy (datetime64 month arithmetic): it runs on every lot of a 1M-member replay.
    """
    secs = np.asarray(secs, dtype=np.int64)
    if len(secs) == 0:
        return secs.copy()
    month = secs.astype("datetime64[s]").astype("datetime64[M]")
    into = secs - month.astype("datetime64[s]").astype(np.int64)
    target = month + np.timedelta64(months, "M")
    target_start = target.astype("datetime64[s]").astype(np.int64)
    length = (target + np.timedelta64(1, "M")).astype("datetime64[s]").astype(
        np.int64
    ) - target_start
    day = np.minimum(into // DAY, length // DAY - 1)
    return target_start + day * DAY + into % DAY


class _History:
    """Indexed event history of one replay: growth value and points at any (member, time)."""

    def __init__(self, tables: dict[str, pd.DataFrame | None], cfg: PolicyConfig, end: int):
        self.cfg = cfg
        members = tables["members"]
        self.member_ids = members["member_id"].astype(str).to_numpy()
        if len(pd.unique(self.member_ids)) != len(self.member_ids):
            raise LoyaltyError("replay: members.member_id must be unique")
        self.index = pd.Index(self.member_ids)
        self.n = len(self.member_ids)
        self.joined = (
            to_secs(members["joined_at"])
            if "joined_at" in members
            else np.full(self.n, _NONE, dtype=np.int64)
        )
        if "birth_date" in members:
            bd = pd.to_datetime(members["birth_date"], utc=True, errors="coerce")
            self.birth_month = bd.dt.month.to_numpy(dtype=float)
        else:
            self.birth_month = np.full(self.n, np.nan)

        tg = cfg.tiers.growth
        orders = tables["orders"]
        status = (
            orders["status"].astype("string").fillna("completed")
            if "status" in orders
            else pd.Series("completed", index=orders.index)
        )
        o_code = self.index.get_indexer(orders["member_id"].astype(str))
        o_t = to_secs(orders["ordered_at"]) if len(orders) else np.zeros(0, np.int64)
        keep = (o_code >= 0) & (status != "cancelled").to_numpy() & (o_t <= end)
        keep &= pd.notna(orders["amount"]).to_numpy()
        self.o_code = o_code[keep]
        self.o_t = o_t[keep]
        self.o_amt = orders["amount"].to_numpy(dtype=float)[keep]
        self.o_returned = (status == "returned").to_numpy()[keep]
        self.lag = cfg.tiers.return_lag_days * DAY
        self.spend = KeyedCumsum(self.o_code, self.o_t, self.o_amt)
        r = self.o_returned
        self.returned = KeyedCumsum(self.o_code[r], self.o_t[r], self.o_amt[r])

        events = tables.get("events")
        self.e_code = np.zeros(0, np.int64)
        self.e_t = np.zeros(0, np.int64)
        self.e_type = np.zeros(0, dtype=object)
        if events is not None and len(events):
            e_code = self.index.get_indexer(events["member_id"].astype(str))
            e_t = to_secs(events["occurred_at"])
            ok = (e_code >= 0) & (e_t <= end)
            self.e_code, self.e_t = e_code[ok], e_t[ok]
            self.e_type = events["event_type"].astype(str).to_numpy()[ok]
        weights = pd.Series(self.e_type).map(tg.behaviour_event_weights).fillna(0.0).to_numpy()
        w = weights > 0
        self.behaviour = KeyedCumsum(self.e_code[w], self.e_t[w], weights[w])
        self.window_months = tg.window_months

        # First order per member, for the first-order boost.
        self.first_t = np.full(self.n, _NONE, dtype=np.int64)
        self.first_amt = np.zeros(self.n)
        if len(self.o_code):
            # Ties at the same second: the larger order counts, whatever the row order.
            order = np.lexsort((-self.o_amt, self.o_t, self.o_code))
            codes_sorted = self.o_code[order]
            head = order[np.r_[True, codes_sorted[1:] != codes_sorted[:-1]]]
            self.first_t[self.o_code[head]] = self.o_t[head]
            self.first_amt[self.o_code[head]] = self.o_amt[head]

    def components(self, codes: np.ndarray, secs: np.ndarray) -> tuple[np.ndarray, ...]:
        """(growth, spend, behaviour) at each (member, time)."""
        lo = _shift_months(secs, -self.window_months)
        spend = self.spend.window(codes, lo, secs)
        # A returned order leaves the spend once it is returned (order time + lag <= t).
        spend -= self.returned.window(codes, lo, secs - self.lag)
        spend = np.maximum(spend, 0.0)
        behaviour = self.behaviour.window(codes, lo, secs)
        tg = self.cfg.tiers.growth
        growth = tg.spend_weight * spend + tg.behaviour_weight * behaviour
        return growth, spend, behaviour

    def growth(self, codes: np.ndarray, secs: np.ndarray) -> np.ndarray:
        return self.components(codes, secs)[0]


class _TierMachine:
    """The tier state of every member, advanced through the monthly checks.

    Between checks the only changes are first-order boosts and grace-period ends, at known
    instants; a snapshot at any ``t`` applies those to a *copy* of the rows it reports (``peek``),
    so any number of distinct snapshot times costs one vectorised pass, not one step each.
    """

    FIELDS = ("tier", "below", "warn", "grace_end", "trans_tier", "trans_until", "boost_due")

    def __init__(self, hist: _History, cfg: PolicyConfig):
        self.hist, self.cfg = hist, cfg
        n = hist.n
        self.thr = np.asarray(cfg.tiers.thresholds, dtype=float)
        self.top = len(self.thr) - 1
        boost = cfg.tiers.first_order_boost_amount
        self.s: dict[str, np.ndarray] = {
            "tier": np.zeros(n, np.int64),
            "below": np.zeros(n, np.int64),
            "warn": np.zeros(n, bool),
            "grace_end": np.full(n, _NONE, np.int64),
            "trans_tier": np.full(n, -1, np.int64),
            "trans_until": np.full(n, _NONE, np.int64),
            "boost_due": (
                (hist.first_t != _NONE) & (hist.first_amt >= boost)
                if boost is not None
                else np.zeros(n, bool)
            ),
        }
        self.codes = np.arange(n)
        self.rec: list[tuple[np.ndarray, ...]] = []
        self.causes: list[tuple[str, np.ndarray]] = []

    def _record(
        self, s: dict, pos: np.ndarray, codes: np.ndarray, secs: Any, cause: str, old: np.ndarray
    ) -> None:
        if len(pos):
            self.causes.append((cause, old))
            self.rec.append(
                (
                    codes[pos],
                    np.broadcast_to(secs, pos.shape).astype(np.int64),
                    s["tier"][pos].copy(),
                    s["trans_tier"][pos].copy(),
                    s["trans_until"][pos].copy(),
                )
            )

    def _tier_of(self, growth: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.thr, growth, side="right") - 1

    def _boost(self, s: dict, pos: np.ndarray, codes: np.ndarray, record: bool) -> None:
        if not len(pos):
            return
        old = s["tier"][pos].copy()
        s["tier"][pos] = np.minimum(old + 1, self.top)
        s["boost_due"][pos] = False
        if record:
            self._record(s, pos, codes, self.hist.first_t[codes[pos]], "first_order", old)

    def _resolve_grace(self, s: dict, pos: np.ndarray, codes: np.ndarray, record: bool) -> None:
        if not len(pos):
            return
        e = s["grace_end"][pos]
        g = self.hist.growth(codes[pos], e)
        old = s["tier"][pos]
        drop = ~(g >= self.thr[old])
        dpos = pos[drop]
        if len(dpos):
            de, dold = e[drop], old[drop]
            steps = self.cfg.tiers.max_downgrade_steps
            new = np.minimum(np.maximum(dold - steps, self._tier_of(g[drop])), dold - 1)
            # A second downgrade inside a transition keeps the higher transition tier.
            active = s["trans_until"][dpos] > de
            s["trans_tier"][dpos] = np.where(active, np.maximum(s["trans_tier"][dpos], dold), dold)
            s["trans_until"][dpos] = _shift_months(de, self.cfg.tiers.transition_months)
            s["tier"][dpos] = new
            if record:
                self._record(s, dpos, codes, de, "downgrade", dold.copy())
        s["warn"][pos] = False
        s["below"][pos] = 0
        s["grace_end"][pos] = _NONE

    def _pending(self, s: dict, codes: np.ndarray, t: Any, record: bool) -> None:
        """Apply first-order boosts and grace-period ends at or before ``t`` (scalar or per row),
        in time order per member."""
        first_t = self.hist.first_t[codes]
        boost = s["boost_due"] & (first_t <= t)
        grace = s["warn"] & (s["grace_end"] <= t)
        early = boost & ~(grace & (s["grace_end"] <= first_t))
        self._boost(s, np.flatnonzero(early), codes, record)
        self._resolve_grace(s, np.flatnonzero(grace), codes, record)
        self._boost(s, np.flatnonzero(boost & ~early), codes, record)

    def advance_to(self, t: int) -> None:
        self._pending(self.s, self.codes, t, record=True)

    def check(self, t: int, yearly: bool) -> None:
        s = self.s
        g = self.hist.growth(self.codes, np.full(self.hist.n, t, np.int64))
        target = self._tier_of(g)
        up = target > s["tier"]
        if up.any():
            pos = np.flatnonzero(up)
            old = s["tier"][pos].copy()
            s["tier"][pos] = target[pos]
            s["warn"][pos] = False
            s["below"][pos] = 0
            s["grace_end"][pos] = _NONE
            self._record(s, pos, self.codes, np.int64(t), "upgrade", old)
        below_now = g < self.thr[s["tier"]]
        s["below"] = np.where(below_now, s["below"] + 1, 0)
        # Back at the threshold inside the grace period: the tier is kept, the warning cleared.
        cleared = s["warn"] & ~below_now
        s["warn"][cleared] = False
        s["grace_end"][cleared] = _NONE
        n_warn = self.cfg.tiers.warning_after_months
        due = below_now & ~s["warn"] & ((s["below"] >= n_warn) | yearly)
        s["warn"][due] = True
        s["grace_end"][due] = t + self.cfg.tiers.grace_days * DAY

    def peek(self, codes: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """State of ``codes`` at times ``t`` (each after the last check), without mutating."""
        s = {k: v[codes].copy() for k, v in self.s.items()}
        self._pending(s, codes, t, record=False)
        in_trans = (s["trans_tier"] >= 0) & (s["trans_until"] > t)
        return {
            "tier_index": s["tier"],
            "benefit_index": np.where(in_trans, np.maximum(s["tier"], s["trans_tier"]), s["tier"]),
            "downgrade_warning": s["warn"],
            "grace_end": np.where(s["warn"], s["grace_end"], _NONE),
            "months_below": s["below"],
            "trans_tier": np.where(in_trans, s["trans_tier"], -1),
            "trans_until": np.where(in_trans, s["trans_until"], _NONE),
        }


def _check_times(start: int, end: int, cfg: PolicyConfig) -> tuple[list[int], list[bool]]:
    if start > end:
        return [], []
    first = pd.Timestamp(start, unit="s").to_period("M").to_timestamp()
    last = pd.Timestamp(end, unit="s").to_period("M").to_timestamp()
    months = pd.date_range(first, last, freq="MS", tz="UTC")
    times, yearly = [], []
    for m in months:
        t = m + pd.Timedelta(days=cfg.tiers.check_day - 1)
        s = _secs_of(t)
        if start <= s <= end:
            times.append(s)
            yearly.append(t.month == cfg.tiers.yearly_review_month)
    return times, yearly


def _snapshot_frame(snapshots: Any, as_of: pd.Timestamp | None, hist: _History) -> pd.DataFrame:
    """(code, secs) pairs to report, one row per member × snapshot time."""
    if isinstance(snapshots, pd.DataFrame):
        codes = hist.index.get_indexer(snapshots["member_id"].astype(str))
        if (codes < 0).any():
            missing = snapshots["member_id"][codes < 0].astype(str).unique()[:5]
            raise LoyaltyError(f"replay: snapshot member(s) not in members: {list(missing)}")
        secs = to_secs(snapshots["as_of"])
        return pd.DataFrame({"code": codes, "secs": secs})
    times = [as_of] if snapshots is None else [to_utc(s) for s in snapshots]
    if any(t is None for t in times):
        raise LoyaltyError("replay: no as_of given and no data to take it from")
    secs = np.array(sorted({_secs_of(t) for t in times}), dtype=np.int64)
    codes = np.arange(hist.n)
    return pd.DataFrame({"code": np.tile(codes, len(secs)), "secs": np.repeat(secs, hist.n)})


def _latest(tables: dict[str, pd.DataFrame | None]) -> pd.Timestamp | None:
    stamps = []
    for name, col in (
        ("orders", "ordered_at"),
        ("members", "joined_at"),
        ("events", "occurred_at"),
        ("offers", "offered_at"),
    ):
        frame = tables.get(name)
        if frame is not None and len(frame) and col in frame:
            value = pd.to_datetime(frame[col], utc=True).max()
            if pd.notna(value):
                stamps.append(value)
    return max(stamps) if stamps else None


def replay(
    data: Any,
    config: PolicyConfig | None = None,
    as_of: Any = None,
    snapshots: Sequence[Any] | pd.DataFrame | None = None,
    redemptions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Loyalty state of every member at each snapshot (see the module docstring for the rules).

    ``data``: a :class:`~loyalty_ml.contract.io.Dataset` or a mapping with ``members`` (member_id,
    joined_at, optional birth_date), ``orders`` (member_id, ordered_at, amount, status), optional
    ``events`` (member_id, occurred_at, event_type), ``offers`` (member_id, offered_at,
    benefit_id, converted) and ``redemptions`` (member_id, redeemed_at, points).
    ``snapshots``: None → every member at ``as_of`` (default: the latest time in the data); a list
    of times → every member at each (rows by time, then members' order); a DataFrame
    ``[member_id, as_of]`` → those pairs, in that order (any number of distinct times: the cost is
    one pass over the monthly checks). Members who joined after a snapshot time get no row.
    """
    cfg = config if config is not None else load_policy()
    tables = _tables(data)
    if redemptions is None:
        redemptions = tables.get("redemptions")
    hist, machine, state = _run(tables, cfg, as_of, snapshots)
    return _assemble(state, hist, machine, cfg, tables.get("offers"), redemptions)


def _run(
    tables: dict[str, pd.DataFrame | None],
    cfg: PolicyConfig,
    as_of: Any,
    snapshots: Sequence[Any] | pd.DataFrame | None,
) -> tuple[_History, _TierMachine, pd.DataFrame]:
    if as_of is not None:
        as_of = to_utc(as_of)
    elif snapshots is None or (not isinstance(snapshots, pd.DataFrame) and len(snapshots) == 0):
        as_of = _latest(tables)
    # Build the member index first with no time cut-off, then cut at the last snapshot.
    probe = _History.__new__(_History)
    probe.index = pd.Index(tables["members"]["member_id"].astype(str))
    probe.n = len(probe.index)
    snaps = _snapshot_frame(snapshots, as_of, probe)
    end = int(snaps["secs"].max()) if len(snaps) else _secs_of(as_of or pd.Timestamp.now("UTC"))
    hist = _History(tables, cfg, end)
    machine = _TierMachine(hist, cfg)

    starts = [a.min() for a in (hist.o_t, hist.e_t) if len(a)]
    checks, yearly = _check_times(min(starts) if starts else end + 1, end, cfg)
    snap_secs = snaps["secs"].to_numpy(np.int64)
    # Each snapshot row is reported right after the last check at or before its time.
    bucket = np.searchsorted(np.asarray(checks, np.int64), snap_secs, side="right") - 1
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(-1, len(checks) + 1))
    snap_codes = snaps["code"].to_numpy(np.int64)
    parts: list[pd.DataFrame] = []
    for k in range(-1, len(checks)):
        if k >= 0:
            machine.advance_to(checks[k])
            machine.check(checks[k], yearly[k])
        rows = order[bounds[k + 1] : bounds[k + 2]]
        if len(rows):
            state = machine.peek(snap_codes[rows], snap_secs[rows])
            parts.append(
                pd.DataFrame(
                    {"code": snap_codes[rows], "secs": snap_secs[rows], "order": rows, **state}
                )
            )
    machine.advance_to(end)  # records the boosts/downgrades after the last check (tier_history)
    if parts:
        state = pd.concat(parts, ignore_index=True).sort_values(["order"], kind="stable")
    else:
        state = pd.DataFrame(columns=["code", "secs", "order"])
    joined = hist.joined[state["code"].to_numpy(np.int64)]
    state = state[(joined == _NONE) | (joined <= state["secs"].to_numpy(np.int64))]
    return hist, machine, state.reset_index(drop=True)


def tier_history(data: Any, config: PolicyConfig | None = None, as_of: Any = None) -> pd.DataFrame:
    """Every tier change up to ``as_of``: member_id, changed_at, from_tier, tier, cause.

    ``cause`` is ``upgrade`` (a monthly check), ``first_order`` (the first-order boost) or
    ``downgrade`` (the end of a grace period, with ``transition_until``).
    """
    cfg = config if config is not None else load_policy()
    tables = _tables(data)
    hist, machine, _ = _run(tables, cfg, as_of, None)
    codes, secs, tier, _tt, tu = _records(machine)
    names = np.asarray(cfg.tier_names, dtype=object)
    if machine.causes:
        causes = np.concatenate([np.full(len(o), c, dtype=object) for c, o in machine.causes])
        old = np.concatenate([o for _, o in machine.causes])
    else:
        causes, old = np.zeros(0, dtype=object), np.zeros(0, np.int64)
    until = np.where(causes == "downgrade", tu, _NONE).astype(np.int64)
    out = pd.DataFrame(
        {
            "member_id": hist.member_ids[codes],
            "changed_at": _to_ts(secs),
            "from_tier": names[old],
            "tier": names[tier],
            "cause": causes,
            "transition_until": _to_ts(until),
        }
    )
    out = out[out["from_tier"] != out["tier"]]
    return out.sort_values(["changed_at", "member_id"], kind="stable").reset_index(drop=True)


def _to_ts(values: np.ndarray) -> pd.Series:
    """int64 seconds → UTC timestamps; the "no time" marker is int64-min, which is NaT already."""
    return pd.Series(np.asarray(values, np.int64).astype("datetime64[s]")).dt.tz_localize(UTC)


def _assemble(
    state: pd.DataFrame,
    hist: _History,
    machine: _TierMachine,
    cfg: PolicyConfig,
    offers: pd.DataFrame | None,
    redemptions: pd.DataFrame | None,
) -> pd.DataFrame:
    codes = state["code"].to_numpy(np.int64)
    secs = state["secs"].to_numpy(np.int64)
    names = np.asarray(cfg.tier_names, dtype=object)
    growth, spend, behaviour = hist.components(codes, secs)
    tier_i = state["tier_index"].to_numpy(np.int64)
    thr = machine.thr
    has_next = tier_i < machine.top
    next_thr = thr[np.minimum(tier_i + 1, machine.top)]
    distance = np.where(has_next, np.maximum(next_thr - growth, 0.0), np.nan)
    sw = cfg.tiers.growth.spend_weight
    balance, expiring = _points(hist, machine, cfg, codes, secs, redemptions)

    out = pd.DataFrame(
        {
            "member_id": hist.member_ids[codes],
            "as_of": _to_ts(secs),
            "tier": names[tier_i],
            "tier_index": tier_i,
            "benefit_tier": names[state["benefit_index"].to_numpy(np.int64)],
            "growth_value": growth,
            "spend_12m": spend,
            "behaviour_score": behaviour,
            "next_tier": np.where(has_next, names[np.minimum(tier_i + 1, machine.top)], None),
            "distance_to_next_tier": distance,
            "spend_to_next_tier": distance / sw if sw > 0 else np.full(len(codes), np.nan),
            "points_balance": balance,
            "points_expiring_30d": expiring,
            "downgrade_warning": state["downgrade_warning"].to_numpy(bool),
            "in_grace": state["downgrade_warning"].to_numpy(bool),
            "grace_ends_at": _to_ts(state["grace_end"].to_numpy(np.int64)),
            "months_below_threshold": state["months_below"].to_numpy(np.int64),
            "transition_tier": np.where(
                state["trans_tier"].to_numpy(np.int64) >= 0,
                names[np.maximum(state["trans_tier"].to_numpy(np.int64), 0)],
                None,
            ),
            "transition_until": _to_ts(state["trans_until"].to_numpy(np.int64)),
            "birth_month": hist.birth_month[codes] if len(codes) else np.zeros(0),
        }
    )
    out["birth_month"] = pd.array(np.round(out["birth_month"]), dtype="Int64")
    usage = _usage(hist, cfg, offers, codes, secs)
    if usage:
        out = pd.concat([out, pd.DataFrame(usage, index=out.index)], axis=1)
    return out


# ------------------------------------------------------------------------------- points

_EXPIRE, _DEBIT = 0, 1  # processing order at equal times: expiry, (earn), debit


def _ledger(
    hist: _History,
    machine: _TierMachine,
    cfg: PolicyConfig,
    redemptions: pd.DataFrame | None,
    end: int,
) -> tuple[np.ndarray, ...]:
    """Earned lots (code, time, points) and debits (code, time, points)."""
    tiers = LastValue(*_records(machine))
    # Points for an order use the benefit tier held just before it.
    tier_before, tt, tu = tiers.lookup(hist.o_code, hist.o_t, (0, -1, _NONE), inclusive=False)
    btier = np.where((tt >= 0) & (tu > hist.o_t), np.maximum(tier_before, tt), tier_before)
    order_pts = (
        points_to_earn(
            btier.astype(np.int64),
            hist.o_amt,
            pd.to_datetime(hist.o_t, unit="s", utc=True),
            cfg,
            birth_month=hist.birth_month[hist.o_code],
        )
        if len(hist.o_code)
        else np.zeros(0, np.int64)
    )
    bonus = pd.Series(hist.e_type).map(cfg.points.event_bonus).fillna(0.0).to_numpy()
    b = bonus > 0
    lot_code = np.r_[hist.o_code, hist.e_code[b]].astype(np.int64)
    lot_t = np.r_[hist.o_t, hist.e_t[b]].astype(np.int64)
    lot_pts = np.r_[order_pts.astype(float), bonus[b]]

    r = hist.o_returned & (hist.o_t + hist.lag <= end)
    deb_code = [hist.o_code[r]]
    deb_t = [hist.o_t[r] + hist.lag]
    deb_pts = [order_pts[r].astype(float)]
    if redemptions is not None and len(redemptions):
        rc = hist.index.get_indexer(redemptions["member_id"].astype(str))
        rt = to_secs(redemptions["redeemed_at"])
        rp = pd.to_numeric(redemptions["points"], errors="coerce").to_numpy(dtype=float)
        ok = (rc >= 0) & (rt <= end) & np.isfinite(rp) & (rp > 0)
        deb_code.append(rc[ok])
        deb_t.append(rt[ok])
        deb_pts.append(rp[ok])
    keep = lot_pts > 0
    return (
        lot_code[keep],
        lot_t[keep],
        lot_pts[keep],
        np.concatenate(deb_code).astype(np.int64),
        np.concatenate(deb_t).astype(np.int64),
        np.concatenate(deb_pts),
    )


def _records(machine: _TierMachine) -> tuple[np.ndarray, ...]:
    if not machine.rec:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, empty
    return tuple(np.concatenate([r[i] for r in machine.rec]) for i in range(5))


def _points(
    hist: _History,
    machine: _TierMachine,
    cfg: PolicyConfig,
    codes: np.ndarray,
    secs: np.ndarray,
    redemptions: pd.DataFrame | None,
) -> tuple[np.ndarray, np.ndarray]:
    end = int(secs.max()) if len(secs) else 0
    lot_code, lot_t, lot_pts, deb_code, deb_t, deb_pts = _ledger(
        hist, machine, cfg, redemptions, end
    )
    pts = cfg.points
    lot_exp = _shift_months(lot_t, pts.expiry_months)
    earned = KeyedCumsum(lot_code, lot_t, lot_pts)
    # Lots sorted by (member, earn time) in the order they are consumed; C = cumulative earned
    # through each lot. Expiry order equals earn order (same duration), so an expiry at x sets
    # "consumed-or-expired from the front" P to at least C of the expiring lot.
    order = np.lexsort((lot_t, lot_code))
    lc, lp, lx = lot_code[order], lot_pts[order], lot_exp[order]
    csum = np.cumsum(lp)
    start_of = np.r_[True, lc[1:] != lc[:-1]] if len(lc) else np.zeros(0, bool)
    group_base = (
        np.maximum.accumulate(np.where(start_of, np.arange(len(lc)), 0))
        if len(lc)
        else np.zeros(0, np.int64)
    )
    cum_through = csum - np.r_[0.0, csum][group_base]
    exp_keep = lx <= end
    # Non-earn operations: expiries (P = max(P, C)) and debits (P = min(P + d, E)).
    op_code = np.r_[lc[exp_keep], deb_code]
    op_t = np.r_[lx[exp_keep], deb_t]
    op_kind = np.r_[np.full(exp_keep.sum(), _EXPIRE), np.full(len(deb_code), _DEBIT)]
    op_val = np.r_[cum_through[exp_keep], deb_pts]
    seq = np.arange(len(op_code))
    o = np.lexsort((seq, op_kind, op_t, op_code))
    op_code, op_t, op_kind, op_val = op_code[o], op_t[o], op_kind[o], op_val[o]
    # E at a debit: everything earned up to and including its instant (earns precede debits).
    e_at = earned.prefix(op_code, op_t, inclusive=True) if len(op_code) else np.zeros(0)
    p_after = np.zeros(len(op_code))
    if len(op_code):
        first = np.r_[True, op_code[1:] != op_code[:-1]]
        rank = np.arange(len(op_code)) - np.maximum.accumulate(
            np.where(first, np.arange(len(op_code)), 0)
        )
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.searchsorted(rank[by_rank], np.arange(rank.max() + 2))
        p = np.zeros(hist.n)
        # One vectorised step per rank: every member's k-th operation at once.
        for k in range(len(bounds) - 1):
            idx = by_rank[bounds[k] : bounds[k + 1]]
            mc = op_code[idx]
            cur = p[mc]
            new = np.where(
                op_kind[idx] == _EXPIRE,
                np.maximum(cur, op_val[idx]),
                np.minimum(cur + op_val[idx], np.maximum(e_at[idx], cur)),
            )
            p[mc] = new
            p_after[idx] = new
    last_p = LastValue(op_code, op_t, p_after)
    (p_now,) = last_p.lookup(codes, secs, (0.0,), inclusive=True)
    e_now = earned.prefix(codes, secs, inclusive=True)
    balance = np.maximum(e_now - p_now, 0.0)
    soon = secs + pts.expiring_soon_days * DAY
    by_expiry = KeyedCumsum(lot_code, lot_exp, lot_pts)
    expiring = np.clip(by_expiry.prefix(codes, soon, inclusive=True) - p_now, 0.0, balance)
    return np.round(balance).astype(np.int64), np.round(expiring).astype(np.int64)


# ------------------------------------------------------------------------------- usage


def _usage(
    hist: _History,
    cfg: PolicyConfig,
    offers: pd.DataFrame | None,
    codes: np.ndarray,
    secs: np.ndarray,
) -> dict[str, np.ndarray]:
    """Grants of each limited benefit in the snapshot's calendar month and year."""
    limited = [
        bid
        for bid, b in cfg.benefits.items()
        if b.max_per_month is not None or b.max_per_year is not None
    ]
    out: dict[str, np.ndarray] = {}
    if not limited:
        return out
    if offers is None or not len(offers):
        for bid in limited:
            out[f"used_month__{bid}"] = np.zeros(len(codes), np.int64)
            out[f"used_year__{bid}"] = np.zeros(len(codes), np.int64)
        return out
    oc = hist.index.get_indexer(offers["member_id"].astype(str))
    ot = to_secs(offers["offered_at"])
    bids = offers["benefit_id"].astype(str).to_numpy()
    # An offer counts as used unless the log says it was not converted (unknown counts: the
    # limits are caps, so err on the side of not over-granting).
    used = (
        pd.to_numeric(offers["converted"], errors="coerce").fillna(1).to_numpy() != 0
        if "converted" in offers
        else np.ones(len(offers), bool)
    )
    t_idx = pd.DatetimeIndex(pd.to_datetime(secs, unit="s"))  # naive UTC: periods drop tz
    month_start = (
        to_secs(t_idx.to_period("M").to_timestamp().tz_localize("UTC")) if len(secs) else secs
    )
    year_start = (
        to_secs(t_idx.to_period("Y").to_timestamp().tz_localize("UTC")) if len(secs) else secs
    )
    for bid in limited:
        sel = (oc >= 0) & used & (bids == bid)
        index = KeyedCumsum(oc[sel], ot[sel])
        out[f"used_month__{bid}"] = np.round(
            index.window(codes, month_start, secs, lo_inclusive=True)
        ).astype(np.int64)
        out[f"used_year__{bid}"] = np.round(
            index.window(codes, year_start, secs, lo_inclusive=True)
        ).astype(np.int64)
    return out


def member_state(
    data: Any, member_id: str, at: Any, config: PolicyConfig | None = None
) -> pd.Series:
    """One member's state at ``at`` (the serving path): replay of that member's rows only."""
    tables = _tables(data)
    mid = str(member_id)
    small: dict[str, pd.DataFrame | None] = {}
    for name, frame in tables.items():
        if frame is None or "member_id" not in frame:
            small[name] = frame
        else:
            small[name] = frame[frame["member_id"].astype(str) == mid]
    if small["members"] is None or not len(small["members"]):
        raise MissingDataError(f"member {mid!r} not found")
    result = replay(small, config, as_of=at)
    if not len(result):
        raise MissingDataError(f"member {mid!r} had not joined by {to_utc(at)}")
    return result.iloc[0]
