"""``loyalty demo``: the main job end to end on built-in synthetic data.

simulate a shop → validate → pipeline (features, churn, recs, benefits; tracked and gated in
MLflow) → batch scoring → an at-risk campaign list recorded in the contact log → sample
recommendations → a monitoring report → one experiment comparison, then where to look. Everything lands under LOYALTY_HOME.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loyalty_ml.settings import get_settings

DEMO_NAME = "demo"


@dataclass
class DemoResult:
    data_dir: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    pipeline: Any = None
    campaign: Any = None
    recommendations: pd.DataFrame | None = None


def demo_data_dir() -> Path:
    return get_settings().path("data", DEMO_NAME, ".keep").parent


def generate_demo_data(members: int, days: int, seed: int) -> Path:
    """Deterministic for (members, days, seed); reused when already generated with them."""
    import json

    from loyalty_ml.simulate import generate, load_config

    out = demo_data_dir()
    stamp = out / "demo-params.json"
    params = {"members": members, "days": days, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return out
    generate(load_config(members=members, days=days, seed=seed), out)
    stamp.write_text(json.dumps(params))
    return out


def demo_experiment(dataset: Any, name: str, folds: int, progress: Any = None) -> Any:
    """Run one shipped experiment file (``experiments/<name>.yaml``) on the demo shop: every
    variant over ``folds`` time folds, tracked in MLflow (``exp-<name>``), compared with CIs."""
    from loyalty_ml.experiments import load_spec, run_experiment

    return run_experiment(load_spec(name), dataset=dataset, folds=folds, progress=progress)


def sample_recommendations(
    dataset: Any, recs_source: str, member_ids: list[str], n: int
) -> pd.DataFrame:
    from loyalty_ml.recs.serving import Recommender

    recommender = Recommender.load(recs_source)
    rows = []
    for member_id in member_ids:
        result = recommender.recommend(member_id, n, context="home", now=dataset.latest_timestamp())
        for rank, item in enumerate(result.items, start=1):
            rows.append(
                {
                    "member_id": member_id,
                    "rank": rank,
                    "product_id": item["product_id"],
                    "score": round(float(item["score"]), 4),
                    "reason": item.get("reason"),
                    "points_to_earn": item.get("points_to_earn"),
                    "fallback": result.fallback,
                }
            )
    return pd.DataFrame(rows)
