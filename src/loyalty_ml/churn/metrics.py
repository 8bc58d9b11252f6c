"""Evaluation metrics of churn scores (pure numpy/sklearn; ``y`` = 1 means churned)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

TOP_FRACTIONS = (0.05, 0.10, 0.20)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Equal-width-bin ECE: sum over bins of |mean(y) - mean(p)| weighted by the bin's share."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return float(total)


def lift_capture(y: np.ndarray, score: np.ndarray, fraction: float) -> tuple[float, float]:
    """(lift, capture) of the top ``fraction`` by score: churn rate there / overall churn rate,
    and the share of all churners found there."""
    y = np.asarray(y, dtype=float)
    n_top = max(1, round(len(y) * fraction))
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n_top]
    positives = y.sum()
    if positives == 0:
        return float("nan"), float("nan")
    rate_top = y[order].mean()
    return float(rate_top / y.mean()), float(y[order].sum() / positives)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def churn_metrics(y: np.ndarray, p: np.ndarray, *, probabilities: bool = True) -> dict[str, float]:
    """AUC, PR-AUC, lift/capture at 5/10/20%; plus log loss, Brier and ECE when ``p`` are
    probabilities (a ranking-only baseline passes ``probabilities=False``)."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    out: dict[str, float] = {
        "n": float(len(y)),
        "churn_rate": float(y.mean()) if len(y) else float("nan"),
    }
    if len(np.unique(y)) < 2:
        out.update(auc=float("nan"), pr_auc=float("nan"))
    else:
        out["auc"] = float(roc_auc_score(y, p))
        out["pr_auc"] = float(average_precision_score(y, p))
    if probabilities:
        out["log_loss"] = log_loss(y, p)
        out["brier"] = float(np.mean((p - y) ** 2))
        out["ece"] = expected_calibration_error(y, p)
        out["mean_p"] = float(p.mean())
    for fraction in TOP_FRACTIONS:
        lift, capture = lift_capture(y, p, fraction)
        pct = round(fraction * 100)
        out[f"lift_{pct}"] = lift
        out[f"capture_{pct}"] = capture
    return out
