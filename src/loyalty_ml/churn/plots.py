"""Evaluation plots written as PNG files (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(
    directory: Path,
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    shap_by_feature: dict[str, float] | None = None,
    shap_by_reason: dict[str, float] | None = None,
) -> list[Path]:
    """ROC, PR, calibration, lift/gain, SHAP summary and score distribution."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _plt()
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    y = np.asarray(y)

    def save(fig, name: str) -> None:  # type: ignore[no-untyped-def]
        path = directory / name
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k:")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(fontsize=7)
    save(fig, "roc.png")

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, s in scores.items():
        prec, rec, _ = precision_recall_curve(y, s)
        ax.plot(rec, prec, label=name)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax.legend(fontsize=7)
    save(fig, "pr.png")

    p = scores["model"]
    fig, ax = plt.subplots(figsize=(5, 5))
    bins = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(p, bins) - 1, 0, 9)
    xs = [p[idx == b].mean() for b in range(10) if (idx == b).any()]
    ys = [y[idx == b].mean() for b in range(10) if (idx == b).any()]
    ax.plot(xs, ys, "o-", label="model")
    ax.plot([0, 1], [0, 1], "k:")
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate", title="Calibration")
    save(fig, "calibration.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    frac = np.linspace(0.01, 1, 100)
    for name, s in scores.items():
        order = np.argsort(-s, kind="stable")
        cum = np.cumsum(y[order]) / max(y.sum(), 1)
        gains = cum[(frac * len(y)).astype(int) - 1]
        ax1.plot(frac, gains, label=name)
        ax2.plot(frac, gains / frac, label=name)
    ax1.plot([0, 1], [0, 1], "k:")
    ax1.set(xlabel="share of members contacted", ylabel="share of churners captured", title="Gain")
    ax2.set(xlabel="share of members contacted", ylabel="lift", title="Lift")
    ax1.legend(fontsize=7)
    save(fig, "lift_gain.png")

    if shap_by_feature:
        top = sorted(shap_by_feature.items(), key=lambda kv: kv[1])[-20:]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 5))
        ax1.barh([k for k, _ in top], [v for _, v in top])
        ax1.set(title="mean |SHAP| by feature", xlabel="log-odds")
        ax1.tick_params(axis="y", labelsize=6)
        if shap_by_reason:
            items = sorted(shap_by_reason.items(), key=lambda kv: kv[1])
            ax2.barh([k for k, _ in items], [v for _, v in items])
            ax2.set(title="mean |SHAP| by reason code", xlabel="log-odds")
        save(fig, "shap_summary.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.hist(p[y == 1], bins=40, alpha=0.6, label="churned", density=True)
    ax.hist(p[y == 0], bins=40, alpha=0.6, label="retained", density=True)
    ax.set(xlabel="churn probability", title="Score distribution")
    ax.legend()
    save(fig, "score_distribution.png")
    return paths
