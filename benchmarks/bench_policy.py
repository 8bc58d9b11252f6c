"""Policy engine benchmark: vectorised replay of 1M members × 1 year, and the batch rules.

``python -m benchmarks policy`` (default 1,000,000 members; ``--members=N`` to change,
``--quick`` for 100k). Synthetic histories are generated here (no data set needed): ~6 orders,
~3 behaviour events, ~2 offers and ~0.5 redemptions per member-year. Results go to
``bench-results/policy.json`` and a Markdown summary to stdout (copied into
``benchmarks/results/policy.md``). Run it under ``nice`` on a shared machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from benchmarks.common import markdown_table, peak_rss_mb, percentiles, save

CPU: dict[str, float] = {}


@contextmanager
def timed(label: str, sink: dict[str, float]) -> Iterator[None]:
    """Wall and CPU seconds: on a shared machine the CPU time is the comparable number."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    sink[label] = time.perf_counter() - wall
    CPU[label] = time.process_time() - cpu


YEAR_START = pd.Timestamp("2025-01-01", tz="UTC")
AS_OF = pd.Timestamp("2026-01-01", tz="UTC")


def _times(rng: np.random.Generator, n: int) -> pd.Series:
    secs = rng.integers(0, int((AS_OF - YEAR_START).total_seconds()), n)
    return pd.Series(YEAR_START + pd.to_timedelta(secs, unit="s"))


def synthetic(n_members: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.char.add("m", np.arange(n_members).astype(str)).astype(object)
    # Heavy-tailed activity: most members buy a few times a year, some every week.
    rate = rng.gamma(1.2, 5.0, n_members)
    n_orders = rng.poisson(rate)
    o_member = np.repeat(np.arange(n_members), n_orders)
    n = len(o_member)
    status = rng.choice(["completed", "returned", "cancelled"], n, p=[0.93, 0.05, 0.02])
    orders = pd.DataFrame(
        {
            "order_id": np.arange(n).astype(str),
            "member_id": ids[o_member],
            "ordered_at": _times(rng, n),
            "amount": np.round(rng.lognormal(4.5, 0.9, n), 2),
            "status": status,
        }
    )
    n_ev = rng.poisson(3, n_members)
    e_member = np.repeat(np.arange(n_members), n_ev)
    events = pd.DataFrame(
        {
            "member_id": ids[e_member],
            "occurred_at": _times(rng, len(e_member)),
            "event_type": rng.choice(["review", "share", "checkin", "referral"], len(e_member)),
        }
    )
    n_off = rng.poisson(2, n_members)
    f_member = np.repeat(np.arange(n_members), n_off)
    benefits = np.array(
        ["coupon_50", "coupon_200_50", "double_points", "free_shipping", "vip_service_48h"]
    )
    offers = pd.DataFrame(
        {
            "offer_id": np.arange(len(f_member)).astype(str),
            "member_id": ids[f_member],
            "offered_at": _times(rng, len(f_member)),
            "benefit_id": rng.choice(benefits, len(f_member)),
            "converted": rng.integers(0, 2, len(f_member)),
        }
    )
    n_red = rng.poisson(0.5, n_members)
    r_member = np.repeat(np.arange(n_members), n_red)
    redemptions = pd.DataFrame(
        {
            "member_id": ids[r_member],
            "redeemed_at": _times(rng, len(r_member)),
            "points": rng.integers(100, 2000, len(r_member)),
        }
    )
    members = pd.DataFrame(
        {
            "member_id": ids,
            "joined_at": YEAR_START
            - pd.to_timedelta(rng.integers(0, 3 * 365, n_members), unit="D"),
            "birth_date": pd.Timestamp("1960-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 40 * 365, n_members), unit="D"),
        }
    )
    return {
        "members": members,
        "orders": orders,
        "events": events,
        "offers": offers,
        "redemptions": redemptions,
    }


def _gap(cases: int = 200) -> dict[str, float]:
    from loyalty_ml.policy import allocate, allocate_exact

    rng = np.random.default_rng(1)
    ratios = []
    for _ in range(cases):
        n = int(rng.integers(2, 8))
        rows = [
            (f"m{m}", f"o{o}", int(rng.integers(1, 100)), int(rng.integers(1, 40)))
            for m in range(n)
            for o in range(int(rng.integers(1, 5)))
        ]
        cands = pd.DataFrame(rows, columns=["member_id", "option_id", "value", "cost"])
        budget = int(rng.integers(10, 150))
        opt = allocate_exact(cands, budget).attrs["total_value"]
        if opt > 0:
            ratios.append(allocate(cands, budget).attrs["total_value"] / opt)
    arr = np.asarray(ratios)
    return {
        "cases": len(arr),
        "mean_ratio": float(arr.mean()),
        "min_ratio": float(arr.min()),
        "share_optimal": float((arr > 1 - 1e-9).mean()),
    }


def main(argv: list[str]) -> None:
    from loyalty_ml.policy import (
        allocate,
        apply_contact_policy,
        eligible_matrix,
        load_policy,
        member_state,
        points_to_earn,
        replay,
    )

    n_members = 100_000 if "--quick" in argv else 1_000_000
    for arg in argv:
        if arg.startswith("--members="):
            n_members = int(arg.split("=", 1)[1])
    cfg = load_policy()
    t: dict[str, float] = {}
    with timed("generate", t):
        data = synthetic(n_members)
    sizes = {k: len(v) for k, v in data.items()}
    print(f"synthetic: {sizes}", flush=True)

    with timed("replay_1_snapshot", t):
        state = replay(data, cfg, as_of=AS_OF)
    print(f"replay: {t['replay_1_snapshot']:.1f} s", flush=True)
    with timed("replay_4_quarterly_snapshots", t):
        quarters = [AS_OF - pd.DateOffset(months=k) for k in (9, 6, 3, 0)]
        replay(data, cfg, snapshots=quarters)
    print(f"replay x4: {t['replay_4_quarterly_snapshots']:.1f} s", flush=True)
    tiers = state["tier"].value_counts().to_dict()
    # Features-style queries: every member at its own instant (1M distinct times).
    own = pd.DataFrame(
        {
            "member_id": data["members"]["member_id"],
            "as_of": AS_OF
            - pd.to_timedelta(
                np.random.default_rng(5).integers(0, 180 * 86400, n_members), unit="s"
            ),
        }
    )
    with timed("replay_own_time_per_member", t):
        replay(data, cfg, snapshots=own)
    print(f"replay per-member times: {t['replay_own_time_per_member']:.1f} s", flush=True)

    with timed("eligible_matrix_12_benefits", t):
        eligible_matrix(state, None, AS_OF, cfg)
    with timed("points_to_earn_vectorised_orders", t):
        points_to_earn(
            np.zeros(len(data["orders"]), np.int64),
            data["orders"]["amount"].to_numpy(),
            data["orders"]["ordered_at"],
            cfg,
        )
    rng = np.random.default_rng(3)
    log = pd.DataFrame(
        {
            "member_id": data["members"]["member_id"]
            .sample(2 * n_members, replace=True, random_state=1)
            .to_numpy(),
            "contacted_at": AS_OF
            - pd.to_timedelta(rng.integers(0, 14 * 86400, 2 * n_members), unit="s"),
        }
    )
    cands = pd.DataFrame({"member_id": data["members"]["member_id"], "channel": "email"})
    with timed("contact_policy_all_members", t):
        kept, dropped = apply_contact_policy(cands, log, AS_OF, cfg, suppressed={"m1", "m2"})
    options = pd.DataFrame(
        {
            "member_id": np.repeat(data["members"]["member_id"].to_numpy(), 4),
            "option_id": np.tile(
                ["coupon_50", "double_points", "free_shipping", "vip_service_48h"], n_members
            ),
            "value": rng.normal(20, 15, 4 * n_members),
            "cost": np.tile([50.0, 2.0, 10.0, 15.0], n_members),
        }
    )
    budget = 0.05 * options["cost"].sum() / 4
    with timed("allocate_4_options_per_member", t):
        chosen = allocate(options, budget)
    gap = _gap()

    # The serving path: one member's state from that member's rows.
    one_member = data["members"]["member_id"].iloc[42]
    small = {k: v[v["member_id"] == one_member] for k, v in data.items()}
    lat = []
    for _ in range(30):
        started = time.perf_counter()
        member_state(small, one_member, AS_OF, cfg)
        lat.append((time.perf_counter() - started) * 1000)
    member_ms = percentiles(lat)

    rows = [
        {"step": k, "wall_s": v, "cpu_s": CPU[k], "cpu_per_member_us": CPU[k] / n_members * 1e6}
        for k, v in t.items()
        if k != "generate"
    ]
    payload = {
        "members": n_members,
        "sizes": sizes,
        "timings_s": t,
        "cpu_s": CPU,
        "tiers": tiers,
        "kept": len(kept),
        "dropped": dropped["reason"].value_counts().to_dict(),
        "allocated": len(chosen),
        "allocated_cost": chosen.attrs["total_cost"],
        "budget": budget,
        "greedy_gap": gap,
        "member_state_ms": member_ms,
        "peak_rss_mb": peak_rss_mb(),
    }
    path = save("policy", payload)
    print(markdown_table(rows))
    print(f"\ntiers at {AS_OF:%Y-%m-%d}: {tiers}")
    print(f"greedy vs exact on {gap['cases']} small cases: {gap}")
    print(f"member_state latency (ms): {member_ms}")
    print(f"peak RSS: {payload['peak_rss_mb']:.0f} MB; results: {path}")
