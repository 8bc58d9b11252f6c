"""Simulated A/B experiments with a known effect, for tests, docs and the demo."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from loyalty_ml.abtest.assign import assign_variants


def simulate_experiment(
    n: int = 20_000,
    splits: Mapping[str, float] | None = None,
    *,
    experiment: str = "sim",
    kind: str = "proportion",
    baseline: float = 0.10,
    effect: float | Mapping[str, float] = 0.01,
    covariate_corr: float = 0.7,
    seed: int = 0,
    start: str = "2026-01-01",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(exposures, outcomes) with an additive ``effect`` per non-control arm.

    ``kind="mean"``: spend ~ baseline + effect + noise, with a pre-period spend covariate
    correlated ``covariate_corr`` with the outcome (what CUPED exploits).
    """
    splits = dict(splits or {"control": 0.5, "treatment": 0.5})
    rng = np.random.default_rng(seed)
    members = np.array([f"m{i:07d}" for i in range(n)], dtype=object)
    variants = assign_variants(experiment, members, splits)
    eff = (
        effect
        if isinstance(effect, Mapping)
        else {v: (0.0 if v == "control" else float(effect)) for v in splits}
    )
    shift = np.array([eff.get(v, 0.0) for v in variants])
    pre = rng.normal(0.0, 1.0, n)
    noise = covariate_corr * pre + np.sqrt(1 - covariate_corr**2) * rng.normal(0.0, 1.0, n)
    if kind == "proportion":
        # A latent threshold keeps P(y=1) = baseline + shift while y still correlates with pre.
        from scipy import stats

        u = stats.norm.cdf(noise)
        y = (u < baseline + shift).astype(float)
        pre_spend = 50 + 20 * pre
    else:
        y = baseline + shift + 10.0 * noise
        pre_spend = 50 + 20 * pre
    stamps = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(rng.integers(0, 14 * 86400, n), "s")
    exposures = pd.DataFrame(
        {
            "experiment": experiment,
            "variant": variants,
            "member_id": members,
            "exposed_at": stamps,
            "context": "{}",
        }
    )
    outcomes = pd.DataFrame(
        {
            "member_id": members,
            "converted" if kind == "proportion" else "spend": y,
            "pre_spend": pre_spend,
        }
    )
    return exposures, outcomes
