"""Uplift ranking metrics for one treatment arm against control: uplift@k (both scikit-uplift
strategies), the Qini and uplift curves, and the normalised Qini coefficient.

The formulas follow scikit-uplift 0.5 (``sklift.metrics``) so that published figures are
comparable; ties in the score are broken the same way (stable sort, descending). Optional
``sample_weight`` (e.g. ``1 / propensity``) generalises the counts to non-uniform logging.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from loyalty_ml.errors import LoyaltyError

Strategy = Literal["overall", "by_group"]


def _prep(
    y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int8], NDArray[np.float64]]:
    yy = np.asarray(y, dtype=np.float64)
    uu = np.asarray(uplift, dtype=np.float64)
    tt = np.asarray(treatment).astype(np.int8)
    ww = np.ones_like(yy) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if not (len(yy) == len(uu) == len(tt) == len(ww)):
        raise LoyaltyError("uplift metric inputs must have the same length")
    if not set(np.unique(tt)) <= {0, 1}:
        raise LoyaltyError("treatment must be 0/1")
    if tt.sum() == 0 or tt.sum() == len(tt):
        raise LoyaltyError("uplift metrics need both treated and control rows")
    order = np.argsort(uu, kind="mergesort")[::-1]
    return yy[order], uu[order], tt[order], ww[order]


def _wmean(y: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    return float((y * w).sum() / w.sum()) if w.sum() > 0 else float("nan")


def uplift_at_k(
    y: ArrayLike,
    uplift: ArrayLike,
    treatment: ArrayLike,
    k: float = 0.3,
    strategy: Strategy = "overall",
    sample_weight: ArrayLike | None = None,
) -> float:
    """Treated minus control response rate among the top ``k`` share by predicted uplift.

    ``overall``: the top k of all rows, then split by group (scikit-uplift's default).
    ``by_group``: the top k of the treated and the top k of the controls, ranked separately.
    """
    if not 0 < k <= 1:
        raise LoyaltyError("k must be a share in (0, 1]")
    yy, _, tt, ww = _prep(y, uplift, treatment, sample_weight)
    if strategy == "overall":
        n = int(len(yy) * k)
        top_y, top_t, top_w = yy[:n], tt[:n], ww[:n]
        return _wmean(top_y[top_t == 1], top_w[top_t == 1]) - _wmean(
            top_y[top_t == 0], top_w[top_t == 0]
        )
    if strategy == "by_group":
        n_t = int((tt == 1).sum() * k)
        n_c = int((tt == 0).sum() * k)
        yt, wt = yy[tt == 1][:n_t], ww[tt == 1][:n_t]
        yc, wc = yy[tt == 0][:n_c], ww[tt == 0][:n_c]
        return _wmean(yt, wt) - _wmean(yc, wc)
    raise LoyaltyError(f"unknown uplift@k strategy {strategy!r}")


def _cumulative(
    yy: NDArray[np.float64], uu: NDArray[np.float64], tt: NDArray[np.int8], ww: NDArray[np.float64]
) -> tuple[NDArray[np.float64], ...]:
    distinct = np.where(np.diff(uu))[0]
    idx = np.r_[distinct, uu.size - 1]
    num_t = np.cumsum(ww * tt)[idx]
    num_c = np.cumsum(ww * (1 - tt))[idx]
    y_t = np.cumsum(ww * yy * tt)[idx]
    y_c = np.cumsum(ww * yy * (1 - tt))[idx]
    num_all = (idx + 1).astype(np.float64)
    return num_all, num_t, num_c, y_t, y_c


def qini_curve(
    y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """x = number targeted, y = incremental responders ``Y_t - Y_c * N_t / N_c``."""
    num_all, num_t, num_c, y_t, y_c = _cumulative(*_prep(y, uplift, treatment, sample_weight))
    ratio = np.divide(num_t, num_c, out=np.zeros_like(num_t), where=num_c != 0)
    values = y_t - y_c * ratio
    return np.r_[0.0, num_all], np.r_[0.0, values]


def uplift_curve(
    y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """x = number targeted, y = ``(Y_t/N_t - Y_c/N_c) * N``."""
    num_all, num_t, num_c, y_t, y_c = _cumulative(*_prep(y, uplift, treatment, sample_weight))
    rt = np.divide(y_t, num_t, out=np.zeros_like(y_t), where=num_t != 0)
    rc = np.divide(y_c, num_c, out=np.zeros_like(y_c), where=num_c != 0)
    return np.r_[0.0, num_all], np.r_[0.0, (rt - rc) * num_all]


def _auc(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    return float(np.trapezoid(y, x))


def qini_auc_score(
    y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike, sample_weight: ArrayLike | None = None
) -> float:
    """Qini coefficient: area between the model's Qini curve and the random line, divided by the
    same area for the perfect ranking (negative effects allowed, as scikit-uplift's default)."""
    yy = np.asarray(y, dtype=np.float64)
    tt = np.asarray(treatment).astype(np.int8)
    x_act, y_act = qini_curve(yy, uplift, tt, sample_weight)
    perfect_score = yy * tt - yy * (1 - tt)
    x_per, y_per = qini_curve(yy, perfect_score, tt, sample_weight)
    baseline = _auc(np.array([0.0, x_per[-1]]), np.array([0.0, y_per[-1]]))
    perfect = _auc(x_per, y_per) - baseline
    if perfect == 0:
        return float("nan")
    return (_auc(x_act, y_act) - baseline) / perfect
