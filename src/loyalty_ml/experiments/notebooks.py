"""Builds the numbered notebooks in ``notebooks/`` (stored without outputs).

The notebooks are generated so that their code stays reviewable as plain Python here and they
never drift from the package API: ``python -m loyalty_ml.experiments.notebooks [OUT_DIR]``.
Each runs in well under a minute on a 2,000-member simulated shop made inside the notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

SETUP = """\
# Small simulated shop, made here so the notebook runs anywhere (CI included).
# To use your own data instead: dataset = loyalty_ml.contract.validate.load_valid_dataset("path")
import os, tempfile
os.environ.setdefault("LOYALTY_HOME", tempfile.mkdtemp(prefix="loyalty-nb-"))
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from loyalty_ml.simulate import load_config, simulate

dataset, truth = simulate(load_config(members=2000, days=240, seed=1))
as_of = dataset.latest_timestamp()
{name: len(t) for name, t in vars(dataset).items() if isinstance(t, pd.DataFrame)}"""

CHURN_TRAIN = """\
from loyalty_ml.churn.config import load_churn_config
from loyalty_ml.churn.job import train_churn

# Small, fast settings for a notebook; the defaults live in config/churn.yaml.
cfg = load_churn_config().with_overrides(**{
    "snapshots.n_train": 3, "lightgbm.num_boost_round": 80, "label.horizon_days": 60})
result = train_churn(dataset, as_of, cfg, provider="builtin", track=False, register=False,
                     backtest=False, plots=False)
pd.Series(result.gate_metrics).round(4)"""

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01-explore-shop": [
        (
            "md",
            "# 01 · Explore a shop's data\nTables, activity over time, spend, and how much "
            "the member base drifts between two windows (PSI, the monitoring statistic).",
        ),
        ("code", SETUP),
        (
            "code",
            """\
orders = dataset.orders
orders.head()""",
        ),
        (
            "code",
            """\
monthly = orders.set_index("ordered_at").resample("MS").size()
ax = monthly.plot(kind="bar", title="orders per month", figsize=(7, 3))
monthly.tail()""",
        ),
        (
            "code",
            """\
per_member = orders.groupby("member_id").size()
print(f"members with orders: {per_member.size} of {len(dataset.members)}")
per_member.describe()""",
        ),
        ("md", "## Feature drift between the first and last 60 days"),
        (
            "code",
            """\
from loyalty_ml.churn.features import builtin_provider
from loyalty_ml.monitoring import drift_table

early_t = as_of - pd.Timedelta(days=120)
early = builtin_provider(dataset.as_of(early_t), early_t)
late = builtin_provider(dataset, as_of)
drift_table(early, late).head(10)""",
        ),
    ],
    "02-churn-model": [
        (
            "md",
            "# 02 · Train and inspect the churn model\nQuality, calibration of the predicted "
            "risk, and the reason codes behind individual scores.",
        ),
        ("code", SETUP),
        ("code", CHURN_TRAIN),
        (
            "code",
            """\
from loyalty_ml.churn.scorer import ChurnScorer

scorer = ChurnScorer(result.model)
scored = scorer.score_dataset(dataset, as_of, reasons_top=200)
scored.head()""",
        ),
        (
            "md",
            "## Calibration on a matured cohort\nScore members at an earlier date whose horizon "
            "has passed, then compare predicted with realised churn.",
        ),
        (
            "code",
            """\
from loyalty_ml.churn.labels import build_labels
from loyalty_ml.monitoring import calibration_summary, calibration_table

past = as_of - pd.Timedelta(days=60)
labels = build_labels(dataset, past, 60).frame[["member_id", "churned"]]
past_scores = scorer.score_frame(scorer.features_for(dataset, past))
matured = past_scores.merge(labels.assign(member_id=labels["member_id"].astype("string")), on="member_id")
matured = matured.rename(columns={"churn_probability": "score"}).assign(cohort=str(past.date()))
cal = calibration_table(matured, bins=8)
ax = cal.plot(x="predicted", y="realised", marker="o", title="predicted vs realised", figsize=(4, 4))
ax.plot([0, 1], [0, 1], "--", c="grey")
calibration_summary(cal)""",
        ),
        (
            "code",
            """\
# Most common top reasons among the riskiest members
scored.head(200)["top_reason"].value_counts()""",
        ),
    ],
    "03-recommendations": [
        (
            "md",
            "# 03 · Evaluate recommendations\nEvery candidate recommender on the same time "
            "split: ranking quality and coverage.",
        ),
        ("code", SETUP),
        (
            "code",
            """\
from loyalty_ml.recs.train import train_recs

recs = train_recs(dataset, as_of, trials=0, track=False, register=False)
table = pd.DataFrame(recs.metrics).T
table""",
        ),
        (
            "code",
            """\
metric = [c for c in table.columns if c.startswith("ndcg")][0]
ax = table[metric].sort_values().plot(kind="barh", title=metric, figsize=(6, 3))""",
        ),
    ],
    "04-recall-campaign": [
        (
            "md",
            "# 04 · Plan a recall campaign under a budget\nScore churn risk, value each "
            "contact, pick members within the budget, keep a holdout and check the test "
            "can detect the effect we hope for.",
        ),
        ("code", SETUP),
        ("code", CHURN_TRAIN),
        (
            "code",
            """\
from loyalty_ml.churn.scorer import ChurnScorer

scored = ChurnScorer(result.model).score_dataset(dataset, as_of, reasons_top=0)
# Assumptions of this plan (edit them): a contact saves 15% of the at-risk value, costs 4.
SAVE_RATE, COST, BUDGET = 0.15, 4.0, 1500.0
candidates = scored.assign(option_id="recall_contact", value=scored["value_at_risk"] * SAVE_RATE - COST, cost=COST)
candidates[["member_id", "churn_probability", "value_at_risk", "value"]].head()""",
        ),
        (
            "code",
            """\
from loyalty_ml.policy.allocate import allocate

chosen = allocate(candidates[["member_id", "option_id", "value", "cost"]], BUDGET)
print(f"{len(chosen)} members, cost {chosen.attrs['total_cost']:.0f}, "
      f"expected net value {chosen.attrs['total_value']:.0f}")""",
        ),
        (
            "code",
            """\
from loyalty_ml.abtest import assign_variants, sample_size, with_holdout

splits = with_holdout({"recall": 1.0}, holdout=0.2)
chosen = chosen.assign(variant=assign_variants("recall-nb", chosen["member_id"], splits))
print(chosen["variant"].value_counts().to_dict())
base = float(candidates.loc[candidates["member_id"].isin(chosen["member_id"]), "churn_probability"].mean())
need = sample_size(1 - base, 0.05, kind="proportion", ratio=4.0)  # +5 points retention
print(f"baseline retention {1 - base:.2f}; members needed for +5 points: {need}")""",
        ),
    ],
}


def build(out_dir: Path) -> list[Path]:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(
            cells=[new_code_cell(s) if k == "code" else new_markdown_cell(s) for k, s in cells],
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
        )
        # Deterministic cell ids keep regenerated notebooks byte-identical in git.
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name[:2]}-{i:02d}"
        path = out_dir / f"{name}.ipynb"
        nbformat.write(nb, path)
        written.append(path)
    return written


def main() -> None:
    default = Path(__file__).resolve().parents[3] / "notebooks"
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else default):
        print(path)


if __name__ == "__main__":
    main()
