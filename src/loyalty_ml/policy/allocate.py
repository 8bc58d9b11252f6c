"""Budgeted benefit allocation: at most one option per member, total cost within the budget.

This is a multiple-choice knapsack. :func:`allocate` is the classic MCKP greedy by value/cost: each
member's options are reduced to their upper concave hull, the hull *increments* (from nothing to
the cheapest efficient option, then to the next, ...) are taken in one global order of
Δvalue/Δcost while they fit, in vectorised rounds so 1M members × 12 options take seconds; the
"best single option" fallback guards the worst case. :func:`allocate_exact` is a dynamic programme over integer costs used to measure the greedy's
optimality gap on small cases (tests and ``benchmarks/bench_policy.py`` report it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loyalty_ml.errors import LoyaltyError

REQUIRED = ("member_id", "option_id", "value", "cost")


def _check(candidates: pd.DataFrame, budget: float) -> None:
    missing = [c for c in REQUIRED if c not in candidates]
    if missing:
        raise LoyaltyError(f"allocate: candidates need column(s) {', '.join(missing)}")
    if not np.isfinite(budget) or budget < 0:
        raise LoyaltyError(f"allocate: budget must be a finite number >= 0, got {budget!r}")
    cost = pd.to_numeric(candidates["cost"], errors="coerce")
    if (cost < 0).any():
        raise LoyaltyError("allocate: option costs must be >= 0")


def _hull(members: np.ndarray, cost: np.ndarray, value: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows on each member's upper concave hull of (cost, value) from the origin, by cost.

    Dominated options (no more value for more cost) and options under the chord of their
    neighbours can never be the LP-optimal choice; removing them makes each member's increments
    have decreasing value/cost, which is what lets the greedy take increments in one global order.
    """
    rows = rows[np.lexsort((-value[rows], cost[rows], members[rows]))]
    m = members[rows]
    best_before = (
        pd.Series(value[rows]).groupby(m).cummax().groupby(m).shift(1).fillna(0.0).to_numpy()
    )
    rows = rows[value[rows] > best_before]
    while len(rows):
        m = members[rows]
        c, v = cost[rows], value[rows]
        same_prev = np.r_[False, m[1:] == m[:-1]]
        same_next = np.r_[m[:-1] == m[1:], False]
        pc = np.where(same_prev, np.r_[0.0, c[:-1]], 0.0)
        pv = np.where(same_prev, np.r_[0.0, v[:-1]], 0.0)
        nc = np.r_[c[1:], 0.0]
        nv = np.r_[v[1:], 0.0]
        # Point i is not a hull vertex when it lies on or below the chord prev -> next:
        # (v - pv) * (nc - pc) <= (nv - pv) * (c - pc).
        below = same_next & ((v - pv) * (nc - pc) <= (nv - pv) * (c - pc))
        if not below.any():
            break
        rows = rows[~below]
    return rows


def allocate(candidates: pd.DataFrame, budget: float) -> pd.DataFrame:
    """The chosen rows of ``candidates`` (original index and columns, original order).

    Options with value <= 0 or a missing value/cost are never chosen. The result's ``attrs`` hold
    ``total_cost``, ``total_value`` and ``method`` (``greedy`` or ``best_single``).
    """
    budget = float(budget)
    _check(candidates, budget)
    value = pd.to_numeric(candidates["value"], errors="coerce").to_numpy(dtype=float)
    cost = pd.to_numeric(candidates["cost"], errors="coerce").to_numpy(dtype=float)
    usable = np.isfinite(value) & np.isfinite(cost) & (value > 0) & (cost <= budget)
    members = pd.factorize(candidates["member_id"].astype(str))[0]
    pos = np.flatnonzero(usable)

    # Increments along each member's hull: from the previous hull option (or nothing) to this one.
    hull = _hull(members, cost, value, pos)
    m = members[hull]
    first = np.r_[True, m[1:] != m[:-1]] if len(hull) else np.zeros(0, bool)
    d_cost = cost[hull] - np.where(first, 0.0, np.r_[0.0, cost[hull][:-1]])
    d_value = value[hull] - np.where(first, 0.0, np.r_[0.0, value[hull][:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d_cost > 0, d_value / np.where(d_cost > 0, d_cost, 1.0), np.inf)
    step = np.arange(len(hull))
    # Global order by ratio; within a member ratios decrease, so a prefix never skips a step.
    order = np.lexsort((step, -ratio))
    pool = order
    taken = np.zeros(len(hull), dtype=bool)
    remaining = budget
    tol = 1e-9 * max(1.0, budget)
    while len(pool):
        # An increment that does not fit never will (the budget only shrinks); the member's later
        # increments build on it, so they go too.
        nofit = d_cost[pool] > remaining + tol
        blocked = pd.Series(nofit).groupby(m[pool]).cummax().to_numpy()
        pool = pool[~blocked]
        if not len(pool):
            break
        csum = np.cumsum(d_cost[pool])
        k = int(np.searchsorted(csum, remaining + tol, side="right"))
        taken[pool[:k]] = True
        remaining -= float(csum[k - 1])
        pool = pool[k:]
    # Each member's choice is its last taken hull step.
    taken_rows = hull[taken]
    taken_m = m[taken]
    last = np.r_[taken_m[1:] != taken_m[:-1], True] if len(taken_rows) else np.zeros(0, bool)
    chosen = np.sort(taken_rows[last])
    method = "greedy"
    if len(pos):
        best = pos[np.argmax(value[pos])]
        if value[best] > value[chosen].sum():
            chosen, method = np.array([best]), "best_single"
    result = candidates.iloc[chosen]
    result.attrs.update(
        total_cost=float(cost[chosen].sum()), total_value=float(value[chosen].sum()), method=method
    )
    return result


def allocate_exact(candidates: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Optimal allocation by dynamic programming; costs and budget must be integers (small cases).

    O(members × options × budget): meant for tests and gap measurements, not production.
    """
    _check(candidates, float(budget))
    value = pd.to_numeric(candidates["value"], errors="coerce").to_numpy(dtype=float)
    cost_f = pd.to_numeric(candidates["cost"], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(cost_f)) or not np.allclose(cost_f, np.round(cost_f)):
        raise LoyaltyError("allocate_exact: costs must be integers")
    cost = np.round(cost_f).astype(np.int64)
    budget = int(budget)
    members, _ = pd.factorize(candidates["member_id"].astype(str))
    n_members = int(members.max()) + 1 if len(members) else 0
    neg = -np.inf
    dp = np.zeros(budget + 1)  # best value with spend <= b over the members seen so far
    choice = np.full((n_members, budget + 1), -1, dtype=np.int64)
    for m in range(n_members):
        rows = np.flatnonzero(members == m)
        new = dp.copy()
        for r in rows:
            if not (np.isfinite(value[r]) and value[r] > 0) or cost[r] > budget:
                continue
            c = cost[r]
            cand = np.full(budget + 1, neg)
            cand[c:] = dp[: budget + 1 - c] + value[r]
            better = cand > new
            new[better] = cand[better]
            choice[m, better] = r
        dp = new
    # Backtrack.
    chosen: list[int] = []
    b = budget
    for m in range(n_members - 1, -1, -1):
        r = choice[m, b]
        if r >= 0:
            chosen.append(int(r))
            b -= int(cost[r])
    idx = np.sort(np.array(chosen, dtype=np.int64))
    result = candidates.iloc[idx]
    result.attrs.update(
        total_cost=float(cost[idx].sum()), total_value=float(value[idx].sum()), method="exact"
    )
    return result
