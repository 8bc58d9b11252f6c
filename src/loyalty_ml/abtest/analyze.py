"""A/B analysis: lift with confidence intervals, CUPED, sample-ratio mismatch, sample size.

Every variant is compared against the control arm with a two-sample difference (unpooled
standard errors, so unequal splits and variances are handled). Proportions use the normal
approximation; means use Welch's t. The statistics are computed on arrays of per-arm summaries
(``diff_stats``) so the same code analyses one experiment or thousands of simulated ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from loyalty_ml.errors import LoyaltyError

Kind = Literal["proportion", "mean"]


def diff_stats(
    mean_t: np.ndarray | float,
    var_t: np.ndarray | float,
    n_t: np.ndarray | float,
    mean_c: np.ndarray | float,
    var_c: np.ndarray | float,
    n_c: np.ndarray | float,
    *,
    alpha: float = 0.05,
    kind: Kind = "mean",
) -> dict[str, np.ndarray]:
    """Difference (treatment - control) with a two-sided (1 - alpha) CI and p-value.

    ``var_*`` are sample variances (ddof=1). Vectorised over any matching array shapes.
    """
    from scipy import stats  # lazy: keeps the service's import of assign fast

    m_t, v_t, k_t = (np.asarray(a, dtype=float) for a in (mean_t, var_t, n_t))
    m_c, v_c, k_c = (np.asarray(a, dtype=float) for a in (mean_c, var_c, n_c))
    se_t2, se_c2 = v_t / k_t, v_c / k_c
    se = np.sqrt(se_t2 + se_c2)
    diff = m_t - m_c
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / se, 0.0)
        if kind == "proportion":
            crit = np.full_like(se, stats.norm.ppf(1 - alpha / 2))
            p = 2 * stats.norm.sf(np.abs(z))
        else:
            # Welch-Satterthwaite degrees of freedom; huge when n is large (-> normal).
            df = (se_t2 + se_c2) ** 2 / (se_t2**2 / (k_t - 1) + se_c2**2 / (k_c - 1))
            df = np.where(np.isfinite(df) & (df > 0), df, 1e9)
            crit = stats.t.ppf(1 - alpha / 2, df)
            p = 2 * stats.t.sf(np.abs(z), df)
        # Relative lift CI by the delta method (control mean is also uncertain).
        rel = diff / m_c
        rel_se = np.sqrt(se_t2 / m_c**2 + m_t**2 * se_c2 / m_c**4)
    p = np.where(se > 0, p, np.where(diff == 0, 1.0, 0.0))
    return {
        "diff": diff,
        "se": se,
        "ci_low": diff - crit * se,
        "ci_high": diff + crit * se,
        "p_value": p,
        "lift": rel,
        "lift_ci_low": rel - crit * rel_se,
        "lift_ci_high": rel + crit * rel_se,
    }


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """theta = cov(y, x) / var(x), pooled over all arms (valid because x is pre-period and so
    independent of the assignment)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    var = float(np.var(x, ddof=1))
    return 0.0 if var == 0 else float(np.cov(y, x, ddof=1)[0, 1] / var)


def cuped_adjust(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """CUPED: y - theta (x - mean x); same expectation per arm, lower variance when x correlates."""
    x = np.asarray(x, dtype=float)
    return np.asarray(y, dtype=float) - cuped_theta(y, x) * (x - x.mean())


def join_exposures(
    exposures: pd.DataFrame,
    outcomes: pd.DataFrame,
    metric: str,
    covariates: list[str] | None = None,
    experiment: str | None = None,
    fill: float = 0.0,
) -> pd.DataFrame:
    """One row per exposed member: variant + metric (+ covariates).

    Members first exposure wins; members seen in more than one variant are dropped (their
    outcome cannot be attributed). Exposed members without an outcome row get ``fill`` (no
    conversion / no spend): exposure, not outcome, defines the analysed population.
    """
    exp = exposures
    if experiment is not None:
        exp = exp[exp["experiment"] == experiment]
    elif "experiment" in exp and exp["experiment"].nunique() > 1:
        raise LoyaltyError(
            f"exposures hold several experiments {sorted(exp['experiment'].unique())}: pick one"
        )
    exp = exp.assign(member_id=exp["member_id"].astype(str))
    n_variants = exp.groupby("member_id")["variant"].nunique()
    clean = exp[exp["member_id"].isin(n_variants.index[n_variants == 1])]
    if "exposed_at" in clean:
        clean = clean.sort_values("exposed_at")
    first = clean.drop_duplicates("member_id")[["member_id", "variant"]]
    cols = [metric, *(covariates or [])]
    missing = [c for c in cols if c not in outcomes.columns]
    if missing:
        raise LoyaltyError(f"outcomes lack columns {missing}")
    out = outcomes.assign(member_id=outcomes["member_id"].astype(str))
    out = out.groupby("member_id", as_index=False)[cols].sum()
    joined = first.merge(out, on="member_id", how="left")
    joined[cols] = joined[cols].fillna(fill)
    joined.attrs["dropped_multi_variant"] = int((n_variants > 1).sum())
    return joined


def analyze(
    frame: pd.DataFrame,
    metric: str,
    kind: Kind = "proportion",
    cuped_covariate: str | None = None,
    *,
    control: str = "control",
    alpha: float = 0.05,
    variant_col: str = "variant",
) -> pd.DataFrame:
    """Per variant vs control: n, mean, diff, CI, p-value, relative lift (and CUPED if asked).

    ``frame`` has one row per analysed member (see ``join_exposures``).
    """
    if control not in set(frame[variant_col]):
        raise LoyaltyError(f"no '{control}' arm in the data: every test needs a control")
    y = frame[metric].to_numpy(dtype=float)
    if kind == "proportion" and not np.isin(y, (0.0, 1.0)).all():
        raise LoyaltyError(f"metric {metric!r} is not 0/1: use kind='mean'")
    if cuped_covariate is not None:
        y = cuped_adjust(y, frame[cuped_covariate].to_numpy(dtype=float))
    arms = pd.DataFrame({"v": frame[variant_col].to_numpy(), "y": y}).groupby("v")["y"]
    summary = arms.agg(["count", "mean", "var"]).fillna({"var": 0.0})
    if kind == "proportion" and cuped_covariate is None:
        # Bernoulli variance p(1-p) (ddof=0) is what the proportion test uses.
        summary["var"] = summary["mean"] * (1 - summary["mean"])
    c = summary.loc[control]
    treat = summary.drop(index=control)
    res = diff_stats(
        treat["mean"].to_numpy(),
        treat["var"].to_numpy(),
        treat["count"].to_numpy(),
        c["mean"],
        c["var"],
        c["count"],
        alpha=alpha,
        kind=kind if cuped_covariate is None else "mean",
    )
    table = pd.DataFrame(
        {
            "variant": treat.index,
            "n": treat["count"].astype(int).to_numpy(),
            "mean": treat["mean"].to_numpy(),
            "control_n": int(c["count"]),
            "control_mean": float(c["mean"]),
            **res,
        }
    )
    table["significant"] = table["p_value"] < alpha
    table["cuped"] = cuped_covariate is not None
    return table.reset_index(drop=True)


@dataclass(frozen=True)
class SRMResult:
    chi2: float
    p_value: float
    mismatch: bool
    observed: dict[str, int]
    expected: dict[str, float]


def srm_check(
    counts: Mapping[str, int] | pd.Series,
    expected_splits: Mapping[str, float],
    alpha: float = 0.001,
) -> SRMResult:
    """Sample-ratio mismatch: chi-square goodness of fit of arm counts vs the configured split.

    A mismatch means assignment or logging is broken and the lift cannot be trusted.
    """
    from scipy import stats  # lazy: keeps the service's import of assign fast

    names = sorted(expected_splits)
    obs = np.array([float(dict(counts).get(n, 0)) for n in names])
    w = np.array([float(expected_splits[n]) for n in names])
    exp = obs.sum() * w / w.sum()
    extra = set(dict(counts)) - set(names)
    if extra:
        raise LoyaltyError(f"arms {sorted(extra)} are not in the expected split")
    chi2, p = stats.chisquare(obs, exp)
    return SRMResult(
        float(chi2),
        float(p),
        bool(p < alpha),
        {n: int(o) for n, o in zip(names, obs, strict=True)},
        {n: float(e) for n, e in zip(names, exp, strict=True)},
    )


def sample_size(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    kind: Kind = "proportion",
    *,
    sd: float | None = None,
    relative: bool = False,
    ratio: float = 1.0,
) -> dict[str, int]:
    """Members per arm to detect an absolute (or ``relative``) effect ``mde`` two-sided.

    ``kind="mean"`` needs ``sd`` (outcome standard deviation); ``ratio`` = n_treatment/n_control.
    Returns ``{"control": n_c, "treatment": n_t, "total": ...}``.
    """
    from scipy import stats  # lazy: keeps the service's import of assign fast

    delta = mde * baseline if relative else mde
    if delta <= 0:
        raise LoyaltyError("mde must be positive")
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    if kind == "proportion":
        p1, p2 = baseline, baseline + delta
        if not (0 < p1 < 1 and 0 < p2 < 1):
            raise LoyaltyError("baseline and baseline + mde must lie in (0, 1)")
        pbar = (p1 + ratio * p2) / (1 + ratio)
        num = z_a * np.sqrt(pbar * (1 - pbar) * (1 + 1 / ratio)) + z_b * np.sqrt(
            p1 * (1 - p1) + p2 * (1 - p2) / ratio
        )
        n_c = (num / delta) ** 2
    else:
        if sd is None or sd <= 0:
            raise LoyaltyError("kind='mean' needs a positive sd")
        n_c = (1 + 1 / ratio) * ((z_a + z_b) * sd / delta) ** 2
    n_c = int(np.ceil(n_c))
    n_t = int(np.ceil(n_c * ratio))
    return {"control": n_c, "treatment": n_t, "total": n_c + n_t}
