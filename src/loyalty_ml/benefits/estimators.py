"""Off-policy value estimators on a logged offers table: IPS, self-normalised IPS and doubly
robust (DR), each with a normal-approximation confidence interval, plus the paired interval of
the difference between two policies evaluated on the same log.

Notation: row ``i`` of the log had arm ``a_i`` chosen with logged probability ``p_i`` (the
``propensity`` column) and reward ``r_i``. A target policy is given as ``pi_i`` = the probability
it puts on the *logged* arm ``a_i`` (1/0 for a deterministic policy: ``pi_i = [policy(x_i) ==
a_i]``). Every estimator returns per-row contributions so that paired differences and CIs are
computed the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from loyalty_ml.errors import LoyaltyError

Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Estimate:
    """A policy value with its 95% interval (normal approximation over rows)."""

    value: float
    se: float
    n: int
    method: str

    @property
    def ci(self) -> tuple[float, float]:
        return (self.value - Z95 * self.se, self.value + Z95 * self.se)

    @property
    def lo(self) -> float:
        return self.ci[0]

    @property
    def hi(self) -> float:
        return self.ci[1]

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}value": self.value,
            f"{prefix}ci_lo": self.lo,
            f"{prefix}ci_hi": self.hi,
            f"{prefix}se": self.se,
        }


def _arrays(*values: ArrayLike) -> list[NDArray[np.float64]]:
    out = [np.asarray(v, dtype=np.float64) for v in values]
    n = len(out[0])
    if any(len(v) != n for v in out):
        raise LoyaltyError("estimator inputs must have the same length")
    if n == 0:
        raise LoyaltyError("cannot estimate a policy value from an empty log")
    return out


def check_propensity(propensity: ArrayLike) -> NDArray[np.float64]:
    """Logged propensities must lie in (0, 1]; anything else makes IPS meaningless."""
    p = np.asarray(propensity, dtype=np.float64)
    bad = ~np.isfinite(p) | (p <= 0) | (p > 1)
    if bad.any():
        raise LoyaltyError(
            f"{int(bad.sum())} logged propensities are missing or outside (0, 1] "
            f"(e.g. {p[bad][:3].tolist()}); inverse-propensity estimates need the probability "
            "with which the logging policy chose each offer"
        )
    return p


def _mean_se(contrib: NDArray[np.float64]) -> tuple[float, float]:
    n = len(contrib)
    se = float(contrib.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return float(contrib.mean()), se


def ips_contributions(
    reward: ArrayLike, propensity: ArrayLike, target_prob: ArrayLike
) -> NDArray[np.float64]:
    r, p, pi = _arrays(reward, propensity, target_prob)
    check_propensity(p)
    return pi * r / p


def ips(reward: ArrayLike, propensity: ArrayLike, target_prob: ArrayLike) -> Estimate:
    """Inverse propensity scoring: ``mean(pi_i * r_i / p_i)``."""
    contrib = ips_contributions(reward, propensity, target_prob)
    value, se = _mean_se(contrib)
    return Estimate(value, se, len(contrib), "ips")


def snips_contributions(
    reward: ArrayLike, propensity: ArrayLike, target_prob: ArrayLike
) -> tuple[float, NDArray[np.float64]]:
    """The SNIPS value and its linearised (delta-method) per-row influence terms."""
    r, p, pi = _arrays(reward, propensity, target_prob)
    check_propensity(p)
    w = pi / p
    wbar = w.mean()
    if wbar <= 0:
        raise LoyaltyError("the target policy never agrees with the logged arm: SNIPS undefined")
    value = float((w * r).sum() / w.sum())
    # Influence function of a ratio estimator: w_i (r_i - V) / mean(w); mean 0, variance -> SE.
    influence = w * (r - value) / wbar
    return value, value + influence


def snips(reward: ArrayLike, propensity: ArrayLike, target_prob: ArrayLike) -> Estimate:
    """Self-normalised IPS: ``sum(w_i r_i) / sum(w_i)`` with ``w_i = pi_i / p_i``."""
    value, contrib = snips_contributions(reward, propensity, target_prob)
    _, se = _mean_se(contrib)
    return Estimate(value, se, len(contrib), "snips")


def dr_contributions(
    reward: ArrayLike,
    propensity: ArrayLike,
    target_prob: ArrayLike,
    q_logged: ArrayLike,
    q_target: ArrayLike,
) -> NDArray[np.float64]:
    """``q_target_i + pi_i (r_i - q_logged_i) / p_i``.

    ``q_logged`` is the outcome model's prediction for the logged arm, ``q_target`` its
    expected prediction under the target policy (``sum_a pi(a|x_i) q(x_i, a)``).
    """
    r, p, pi, ql, qt = _arrays(reward, propensity, target_prob, q_logged, q_target)
    check_propensity(p)
    return qt + pi * (r - ql) / p


def dr(
    reward: ArrayLike,
    propensity: ArrayLike,
    target_prob: ArrayLike,
    q_logged: ArrayLike,
    q_target: ArrayLike,
) -> Estimate:
    """Doubly robust value: direct-method prediction corrected by IPS-weighted residuals."""
    contrib = dr_contributions(reward, propensity, target_prob, q_logged, q_target)
    value, se = _mean_se(contrib)
    return Estimate(value, se, len(contrib), "dr")


def paired_difference(
    contrib_a: ArrayLike, contrib_b: ArrayLike, method: str = "paired"
) -> Estimate:
    """Value(A) - Value(B) from per-row contributions on the same log (paired rows, so the
    shared noise cancels and the interval is much narrower than the two separate ones)."""
    a, b = _arrays(contrib_a, contrib_b)
    value, se = _mean_se(a - b)
    return Estimate(value, se, len(a), method)


def policy_match(logged_arm: ArrayLike, policy_arm: ArrayLike) -> NDArray[np.float64]:
    """``pi_i`` for a deterministic policy: 1.0 where it picks the logged arm."""
    logged = np.asarray(logged_arm, dtype=object)
    chosen = np.asarray(policy_arm, dtype=object)
    if len(logged) != len(chosen):
        raise LoyaltyError("policy and log have different lengths")
    return (logged == chosen).astype(np.float64)
