"""Evaluation that cannot lie: the value of assignment policies on held-out logged data, by IPS,
self-normalised IPS and DR, each with a 95% CI, side by side with "everyone gets benefit k" for
every k, uniformly random assignment and no contact; plus the paired 95% CI of each policy's
difference to a reference (the best single arm by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from loyalty_ml.benefits import estimators as est

# A policy is either arm indices (n,) (deterministic) or an (n, n_arms) probability matrix.
Policy = NDArray[np.int64] | NDArray[np.float64]


def policy_probs(policy: Policy, n_arms: int) -> NDArray[np.float64]:
    arr = np.asarray(policy)
    if arr.ndim == 2:
        return arr.astype(np.float64)
    probs = np.zeros((len(arr), n_arms))
    probs[np.arange(len(arr)), arr.astype(np.int64)] = 1.0
    return probs


def baseline_policies(n: int, arms: Sequence[str]) -> dict[str, Policy]:
    """Every single-arm policy (``none`` = no contact) and uniform random assignment."""
    out: dict[str, Policy] = {}
    for j, arm in enumerate(arms):
        label = "no contact (none)" if j == 0 else f"everyone: {arm}"
        out[label] = np.full(n, j, dtype=np.int64)
    out["random"] = np.full((n, len(arms)), 1.0 / len(arms))
    return out


def contributions(
    policy: Policy,
    logged_arm: NDArray[np.int64],
    propensity: NDArray[np.float64],
    reward: NDArray[np.float64],
    q: NDArray[np.float64] | None,
) -> dict[str, NDArray[np.float64] | tuple[float, NDArray[np.float64]]]:
    probs = policy_probs(policy, q.shape[1] if q is not None else int(logged_arm.max()) + 1)
    rows = np.arange(len(logged_arm))
    pi = probs[rows, logged_arm]
    out: dict[str, NDArray[np.float64] | tuple[float, NDArray[np.float64]]] = {
        "ips": est.ips_contributions(reward, propensity, pi),
    }
    if pi.sum() > 0:
        out["snips"] = est.snips_contributions(reward, propensity, pi)
    if q is not None:
        out["dr"] = est.dr_contributions(
            reward, propensity, pi, q[rows, logged_arm], (probs * q).sum(axis=1)
        )
    return out


def evaluate_policies(
    policies: Mapping[str, Policy],
    logged_arm: NDArray[np.int64],
    propensity: NDArray[np.float64],
    reward: NDArray[np.float64],
    q: NDArray[np.float64] | None = None,
    reference: str | None = None,
) -> pd.DataFrame:
    """One row per policy: value and 95% CI by IPS, SNIPS and (with ``q``) DR, and the paired
    difference to ``reference`` (default: the best single-arm policy by IPS)."""
    contrib = {
        name: contributions(p, logged_arm, propensity, reward, q) for name, p in policies.items()
    }
    rows = []
    for name, c in contrib.items():
        row: dict[str, object] = {"policy": name}
        ips = c["ips"]
        assert isinstance(ips, np.ndarray)
        row.update(_summ(ips, "ips"))
        if "snips" in c:
            v, infl = c["snips"]  # type: ignore[misc]
            row.update(_summ(infl, "snips", value=v))
        if "dr" in c:
            row.update(_summ(c["dr"], "dr"))  # type: ignore[arg-type]
        rows.append(row)
    table = pd.DataFrame(rows)
    if reference is None:
        single = table[table["policy"].str.startswith(("everyone:", "no contact"))]
        reference = str(single.loc[single["ips"].idxmax(), "policy"]) if len(single) else None
    if reference is not None:
        ref = contrib[reference]
        for method in ("ips", "dr"):
            if method not in ref:
                continue
            diffs = [
                est.paired_difference(c[method], ref[method])  # type: ignore[arg-type]
                for c in contrib.values()
            ]
            table[f"{method}_diff"] = [d.value for d in diffs]
            table[f"{method}_diff_lo"] = [d.lo for d in diffs]
            table[f"{method}_diff_hi"] = [d.hi for d in diffs]
        table.attrs["reference"] = reference
    return table


def _summ(
    contrib: NDArray[np.float64], method: str, value: float | None = None
) -> dict[str, float]:
    v = float(contrib.mean()) if value is None else float(value)
    se = float(contrib.std(ddof=1) / np.sqrt(len(contrib)))
    return {method: v, f"{method}_lo": v - est.Z95 * se, f"{method}_hi": v + est.Z95 * se}
