"""The decision layer: from estimated effects to one benefit per member.

Net value of arm k for a member = (shrunk) uplift in the objective - the benefit's cost. The
control arm (``none``) has net value 0 and is always allowed, so a member gets ``none`` whenever
no allowed benefit is worth its cost. A member is moved off the default arm (the best "same
benefit for everyone" choice) only when the estimated gain exceeds ``switch_margin``. With a
budget, the policy engine's :func:`loyalty_ml.policy.allocate` picks across members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from loyalty_ml.benefits.config import Objective

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class DecisionParams:
    shrinkage: float = 1.0
    switch_margin: float = 0.0
    default_arm: int = 0  # index into arms (0 = control)


def objective_uplift(
    objective: Objective,
    uplift_conversion: Matrix,
    uplift_revenue: Matrix | None,
    margin_rate: float | None,
) -> Matrix:
    """Effect in objective units, ``(n, n_arms)``."""
    if objective == "conversion":
        return uplift_conversion
    if uplift_revenue is None:
        raise ValueError(f"objective {objective} needs revenue effects")
    if objective == "revenue":
        return uplift_revenue
    return (margin_rate or 0.0) * uplift_revenue


def cost_in_objective_units(
    objective: Objective, costs: Sequence[float], conversion_value: float | None
) -> NDArray[np.float64]:
    c = np.asarray(costs, dtype=np.float64)
    if objective == "conversion":
        return c / conversion_value if conversion_value else np.zeros_like(c)
    return c


def net_values(
    uplift: Matrix, centers: Sequence[float], shrinkage: float, unit_costs: Sequence[float]
) -> Matrix:
    """``center_k + shrinkage * (uplift - center_k) - cost_k``; column 0 (control) is 0."""
    ctr = np.asarray(centers, dtype=np.float64)[None, :]
    net = ctr + shrinkage * (uplift - ctr) - np.asarray(unit_costs, dtype=np.float64)[None, :]
    net[:, 0] = 0.0
    return net


def choose(
    net: Matrix, eligible: NDArray[np.bool_] | None, params: DecisionParams
) -> NDArray[np.int64]:
    """One arm index per member (0 = control)."""
    n, k = net.shape
    ok = np.ones((n, k), dtype=bool) if eligible is None else eligible.copy()
    ok[:, 0] = True
    masked = np.where(ok, net, -np.inf)
    best = masked.argmax(axis=1)
    rows = np.arange(n)
    default = np.where(ok[:, params.default_arm], params.default_arm, 0)
    gain = masked[rows, best] - masked[rows, default]
    choice = np.where(gain > params.switch_margin, best, default)
    # Nothing worth its cost -> control.
    return np.where(masked[rows, choice] > 0, choice, 0).astype(np.int64)


def candidate_options(
    member_ids: Sequence[str],
    net: Matrix,
    costs: Matrix,
    eligible: NDArray[np.bool_] | None,
) -> pd.DataFrame:
    """Options for the budgeted allocation: every allowed benefit with positive net value.
    Columns member_id, option_id (arm index), value, cost.

    Under a budget the alternative to an option is ``none`` (the money goes to another member),
    not the default arm: the default-arm/switch-margin rule of :func:`choose` does not apply. It
    used to (only the default arm or an arm beating it by the margin was a candidate); on the
    simulator that shut cheap benefits out for every member whose default was an expensive one
    and halved the budgeted value (8k members: 4.6 instead of 8.0 with the same net values)."""
    n, k = net.shape
    ok = np.ones((n, k), dtype=bool) if eligible is None else eligible.copy()
    ok[:, 0] = False
    r, c = np.nonzero(ok & (net > 0))
    return pd.DataFrame(
        {
            "member_id": np.asarray(member_ids, dtype=object)[r],
            "option_id": c,
            "value": net[r, c],
            "cost": costs[r, c],
        }
    )


def allocate_with_budget(
    member_ids: Sequence[str],
    net: Matrix,
    costs: Matrix,
    eligible: NDArray[np.bool_] | None,
    budget: float,
) -> NDArray[np.int64]:
    """Arm index per member under a total cost budget (policy engine's MCKP greedy)."""
    from loyalty_ml.policy import allocate

    cands = candidate_options(member_ids, net, costs, eligible)
    choice = np.zeros(len(net), dtype=np.int64)
    if len(cands) == 0:
        return choice
    chosen = allocate(cands, budget)
    pos = pd.Index(np.asarray(member_ids, dtype=object)).get_indexer(chosen["member_id"])
    choice[pos] = chosen["option_id"].to_numpy(dtype=np.int64)
    return choice


def explore(
    choice: NDArray[np.int64],
    eligible: NDArray[np.bool_] | None,
    n_arms: int,
    share: float,
    seed: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Epsilon-greedy exploration; returns the final arms and their logging propensities."""
    n = len(choice)
    if share <= 0:
        return choice, np.ones(n)
    ok = np.ones((n, n_arms), dtype=bool) if eligible is None else eligible.copy()
    ok[:, 0] = True
    n_ok = ok.sum(axis=1)
    rng = np.random.default_rng(seed)
    u = rng.random((n, n_arms))
    random_arm = np.where(ok, u, -1.0).argmax(axis=1)
    take = rng.random(n) < share
    final = np.where(take, random_arm, choice).astype(np.int64)
    prop = share / n_ok + np.where(final == choice, 1.0 - share, 0.0)
    return final, prop


# ----------------------------------------------------------------------------- calibration


@dataclass
class NetCalibration:
    """Per benefit: predicted effect (objective units) -> calibrated *net* effect and its sd.

    Fitted out of fold: members are binned by the learner's predicted effect, each bin's true
    net effect is the mean of doubly robust pseudo-outcomes (effect - cost, from logged
    outcomes), and bin means are shrunk toward the benefit's overall mean by empirical Bayes
    (between-bin variance by the method of moments). A learner whose ranking carries no signal
    thus calibrates to the benefit's average; the sd gives a lower confidence bound per member,
    so a benefit is given only where its net value is confidently positive.
    """

    edges: list[NDArray[np.float64]]  # per arm: interior bin edges (arm 0: empty)
    mean: list[NDArray[np.float64]]  # per arm: calibrated net effect per bin
    sd: list[NDArray[np.float64]]  # per arm: its standard deviation per bin
    z: float = 1.0

    def _lookup(self, effect: Matrix, table: list[NDArray[np.float64]]) -> Matrix:
        out = np.zeros_like(effect, dtype=np.float64)
        for j in range(1, effect.shape[1]):
            out[:, j] = table[j][np.searchsorted(self.edges[j], effect[:, j], side="right")]
        return out

    def net(self, effect: Matrix) -> Matrix:
        return self._lookup(effect, self.mean)

    def lower(self, effect: Matrix) -> Matrix:
        """Lower confidence bound of the net effect (mean - z * sd); column 0 is 0."""
        return self._lookup(effect, self.mean) - self.z * self._lookup(effect, self.sd)


def fit_net_calibration(
    effect: Matrix, pseudo_net: Matrix, bins: int, min_rows: int, z: float
) -> NetCalibration:
    """``effect``: out-of-fold predicted effects; ``pseudo_net``: DR pseudo-outcomes of the net
    effect per row and arm (same shape). Quantile bins of at least ``min_rows`` rows."""
    n, k = effect.shape
    edges: list[NDArray[np.float64]] = [np.array([])]
    means: list[NDArray[np.float64]] = [np.zeros(1)]
    sds: list[NDArray[np.float64]] = [np.zeros(1)]
    for j in range(1, k):
        b = int(max(1, min(bins, n // max(min_rows, 1))))
        cuts = np.unique(np.quantile(effect[:, j], np.linspace(0, 1, b + 1)[1:-1]))
        idx = np.searchsorted(cuts, effect[:, j], side="right")
        phi = pseudo_net[:, j]
        grand = float(phi.mean())
        grand_se = float(phi.std(ddof=1) / np.sqrt(n)) if n > 1 else np.inf
        m = np.array(
            [phi[idx == i].mean() if (idx == i).any() else grand for i in range(len(cuts) + 1)]
        )
        cnt = np.array([(idx == i).sum() for i in range(len(cuts) + 1)], dtype=float)
        se2 = np.array(
            [phi[idx == i].var(ddof=1) / c if c > 1 else np.inf for i, c in enumerate(cnt)]
        )
        w = cnt / cnt.sum()
        between = float((w * (m - grand) ** 2).sum())
        tau2 = max(0.0, between - float((w * np.where(np.isfinite(se2), se2, 0.0)).sum()))
        if tau2 > 0:
            prec = 1.0 / se2 + 1.0 / tau2
            post = (m / se2 + grand / tau2) / prec
            post_var = 1.0 / prec + grand_se**2
        else:
            post = np.full(len(m), grand)
            post_var = np.full(len(m), grand_se**2)
        edges.append(cuts)
        means.append(np.asarray(post, dtype=np.float64))
        sds.append(np.sqrt(np.asarray(post_var, dtype=np.float64)))
    return NetCalibration(edges, means, sds, z)


def dr_net_pseudo_outcomes(
    q: Matrix, arm: NDArray[np.int64], propensity: NDArray[np.float64], reward: NDArray[np.float64]
) -> Matrix:
    """``q_k - q_0 + 1[a=k](r - q_k)/p - 1[a=0](r - q_0)/p`` per arm (column 0 zeros); ``q`` and
    ``r`` are net of cost, so these are pseudo-outcomes of the net effect versus control."""
    n, k = q.shape
    rows = np.arange(n)
    resid = (reward - q[rows, arm]) / propensity
    out = q - q[:, [0]]
    for j in range(1, k):
        out[:, j] += np.where(arm == j, resid, 0.0) - np.where(arm == 0, resid, 0.0)
    out[:, 0] = 0.0
    return out


def confident_net(net: Matrix, effect: Matrix, calibration: NetCalibration | None) -> Matrix:
    """``net`` where the calibrated lower bound of the net effect is > 0, else ``min(net, 0)``
    (never chosen: a benefit is given only when it confidently pays for its cost)."""
    if calibration is None:
        return net
    lower = calibration.lower(effect)
    out = np.where(lower > 0, net, np.minimum(net, 0.0))
    out[:, 0] = 0.0
    return out
