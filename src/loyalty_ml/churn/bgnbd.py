"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma spend, fitted by maximum likelihood with
scipy — the repeat-buying baseline and the value model.

Inputs per member: ``x`` repeat transactions (distinct purchase days after the first),
``t_x`` time of the last purchase since the first, ``T`` time since the first purchase, all in
the same unit (weeks by convention). Members with no purchase yet have x = t_x = T = 0 (the
model then says "new": P(alive) = 1 and population rates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize as _scipy_minimize
from scipy.special import betaln, gammaln, hyp2f1


def minimize(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    """``scipy.optimize.minimize`` with BLAS on one thread: the fits are tiny (3-4 parameters),
    and OpenBLAS thread wake-ups made them 2-3x slower on the shared 2-core machine (same
    optimum either way)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        return _scipy_minimize(*args, **kwargs)


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def bgnbd_log_likelihood(
    params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    ll = a1 + a2 + np.logaddexp(a3, a4)
    if weights is not None:
        return float(np.sum(ll * weights))
    return float(np.sum(ll))


def fit_bgnbd(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    *,
    max_rows: int = 30_000,
    seed: int = 0,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD. Identical (x, t_x, T) rows are collapsed with weights, and very
    large inputs are subsampled to ``max_rows`` members (the fit needs far fewer)."""
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    keep = T > 0
    x, t_x, T = x[keep], t_x[keep], T[keep]
    if len(x) > max_rows:
        idx = np.random.default_rng(seed).choice(len(x), max_rows, replace=False)
        x, t_x, T = x[idx], t_x[idx], T[idx]
    stacked = np.round(np.column_stack([x, t_x, T]), 4)
    uniq, counts = np.unique(stacked, axis=0, return_counts=True)
    ux, ut, uT = uniq[:, 0], uniq[:, 1], uniq[:, 2]
    w = counts.astype(float)

    def objective(log_params: np.ndarray) -> float:
        value = -bgnbd_log_likelihood(np.exp(log_params), ux, ut, uT, w)
        return value if np.isfinite(value) else 1e300

    scale = float(np.mean(T)) if len(T) else 1.0
    start = np.log([0.5, max(scale / 10, 1e-3), 1.0, 2.0])
    result = minimize(objective, start, method="L-BFGS-B")
    if not result.success:
        result = minimize(objective, result.x, method="Nelder-Mead", options={"maxiter": 2000})
    r, alpha, a, b = np.exp(result.x)
    return BGNBDParams(float(r), float(alpha), float(a), float(b), float(-result.fun))


def p_alive(params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        odds = np.where(
            x > 0, np.exp(np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) + log_ratio), 0.0
        )
    return 1.0 / (1.0 + odds)


def expected_transactions(
    params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[number of transactions in (T, T + t] | x, t_x, T]."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
    out = head * body * p_alive(params, x, t_x, T)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)


def p_no_purchase(
    params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(no transaction in (T, T + t]): dead already, or alive with zero Poisson events."""
    alive = p_alive(params, x, t_x, T)
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    stay_quiet = ((params.alpha + T) / (params.alpha + T + t)) ** (params.r + x)
    return (1 - alive) + alive * stay_quiet


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def fit_gamma_gamma(
    x: np.ndarray, m: np.ndarray, *, max_rows: int = 200_000, seed: int = 0
) -> GammaGammaParams:
    """Gamma-Gamma spend model on members with x >= 1 transactions of mean value m > 0."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    keep = (x >= 1) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if len(x) > max_rows:
        idx = np.random.default_rng(seed).choice(len(x), max_rows, replace=False)
        x, m = x[idx], m[idx]
    if len(x) < 10:
        mean = float(np.mean(m)) if len(m) else 0.0
        return GammaGammaParams(1.0, 3.0, max(mean, 1e-6) * 2.0)

    def objective(log_params: np.ndarray) -> float:
        p, q, g = np.exp(log_params)
        ll = (
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(g)
            + (p * x - 1) * np.log(m)
            + (p * x) * np.log(x)
            - (p * x + q) * np.log(g + m * x)
        )
        value = -float(np.sum(ll))
        return value if np.isfinite(value) else 1e300

    start = np.log([1.0, 2.0, max(float(np.mean(m)), 1e-3)])
    result = minimize(objective, start, method="L-BFGS-B")
    if not result.success:
        result = minimize(objective, result.x, method="Nelder-Mead", options={"maxiter": 2000})
    p, q, g = np.exp(result.x)
    return GammaGammaParams(float(p), float(q), float(g))


def expected_spend_per_transaction(
    params: GammaGammaParams, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    p, q, g = params.p, params.q, params.gamma
    x = np.asarray(x, dtype=float)
    m = np.nan_to_num(np.asarray(m, dtype=float))
    population = p * g / (q - 1) if q > 1 else float(np.mean(m[x > 0])) if np.any(x > 0) else 0.0
    weight = (q - 1) / (p * x + q - 1) if q > 1 else np.zeros_like(x)
    return np.where(x > 0, weight * population + (1 - weight) * m, population)
