"""Figures logged with every benefits training run: Qini and uplift curves per benefit (validation
slice) and the distribution of estimated per-member effects per benefit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from loyalty_ml.benefits.metrics import qini_curve, uplift_curve


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_figure(
    out: Path,
    arms: list[str],
    y: NDArray[np.float64],
    arm: NDArray[np.int64],
    weight: NDArray[np.float64],
    effects: dict[str, NDArray[np.float64]],
    kind: str = "qini",
) -> Path:
    """One panel per benefit: the curve of every learner against the random line."""
    plt = _plt()
    k = len(arms) - 1
    fig, axes = plt.subplots(1, k, figsize=(5 * k, 4), squeeze=False)
    fn = qini_curve if kind == "qini" else uplift_curve
    for j in range(1, len(arms)):
        ax = axes[0, j - 1]
        pair = (arm == 0) | (arm == j)
        t = (arm[pair] == j).astype(int)
        for name, eff in effects.items():
            x, v = fn(y[pair], eff[pair, j], t, weight[pair])
            ax.plot(x / x[-1], v, label=name)
        ax.plot([0, 1], [0, v[-1]], "k--", label="random")
        ax.set_title(f"{kind} curve: {arms[j]} vs {arms[0]}")
        ax.set_xlabel("share targeted (by predicted uplift)")
        ax.set_ylabel("incremental outcome" if kind == "qini" else "uplift x n")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def effects_figure(out: Path, arms: list[str], effect: NDArray[np.float64], unit: str) -> Path:
    """Histogram of per-member estimated effects, one panel per benefit."""
    plt = _plt()
    k = len(arms) - 1
    fig, axes = plt.subplots(1, k, figsize=(5 * k, 3.5), squeeze=False)
    for j in range(1, len(arms)):
        ax = axes[0, j - 1]
        ax.hist(effect[:, j], bins=50, color="tab:blue", alpha=0.8)
        ax.axvline(0.0, color="k", lw=1)
        ax.axvline(float(effect[:, j].mean()), color="tab:red", lw=1, label="mean")
        ax.set_title(f"{arms[j]}: estimated effect ({unit})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
