"""Compare an experiment's variants: mean and 95% t-interval over the time-based folds, a table
and a PNG with one panel per metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from loyalty_ml.errors import LoyaltyError
from loyalty_ml.experiments.spec import ExperimentSpec, load_spec
from loyalty_ml.settings import get_settings


def summarise(frame: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per variant and metric: folds, mean, sd, and the half-width of the t-interval (nan with
    one fold: no interval can be claimed from a single time slice)."""
    from scipy import stats

    g = frame.groupby(["variant", "metric"], sort=False)["value"]
    table = g.agg(folds="count", mean="mean", sd="std").reset_index()
    crit = stats.t.ppf(1 - alpha / 2, np.maximum(table["folds"] - 1, 1))
    table["ci_half"] = np.where(
        table["folds"] > 1, crit * table["sd"] / np.sqrt(table["folds"]), np.nan
    )
    table["ci_low"] = table["mean"] - table["ci_half"]
    table["ci_high"] = table["mean"] + table["ci_half"]
    return table


def compare_frame(
    frame: pd.DataFrame, spec: ExperimentSpec, out_dir: Path, metrics: list[str] | None = None
) -> tuple[pd.DataFrame, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarise(frame)
    shown = metrics or [
        m for m in [spec.metric, *_secondary(spec.job)] if m in set(table["metric"])
    ]
    shown = shown or [spec.metric]
    order = [v.name for v in spec.variants if v.name in set(table["variant"])]
    fig, axes = plt.subplots(
        1, len(shown), figsize=(4.2 * len(shown), 0.45 * len(order) + 1.8), squeeze=False
    )
    for ax, metric in zip(axes[0], shown, strict=False):
        part = table[table["metric"] == metric].set_index("variant").reindex(order)
        y = np.arange(len(order))
        ax.errorbar(
            part["mean"].to_numpy(),
            y,
            xerr=part["ci_half"].fillna(0).to_numpy(),
            fmt="o",
            capsize=3,
        )
        folds = frame[(frame["metric"] == metric)]
        for i, name in enumerate(order):
            values = folds.loc[folds["variant"] == name, "value"].to_numpy()
            ax.scatter(values, np.full(values.shape, i), marker="|", c="grey", s=60, zorder=0)
        ax.set_yticks(y, order)
        ax.set_title(metric)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"{spec.name}: mean ± 95% CI over {int(table['folds'].max())} time folds", fontsize=10
    )
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "comparison.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    table.to_csv(out_dir / "comparison.csv", index=False)
    return table, path


def _secondary(job: str) -> list[str]:
    return {
        "churn": ["pr_auc", "brier", "lift@10"],
        "recs": ["recall@10", "coverage"],
        "benefits": ["policy_value_ips", "incremental_value"],
    }.get(job, [])


def compare_experiment(
    name_or_path: str | Path, metrics: list[str] | None = None
) -> tuple[pd.DataFrame, Path]:
    """Table (variant x metric: mean, CI) and plot path from the last ``run_experiment``."""
    spec = load_spec(name_or_path)
    out_dir = get_settings().path("experiments", spec.name, ".keep").parent
    source = out_dir / "metrics.csv"
    if not source.exists():
        raise LoyaltyError(
            f"no results for {spec.name!r}: run `loyalty experiment run {spec.name}` first"
        )
    frame = pd.read_csv(source)
    return compare_frame(frame, spec, out_dir, metrics)
