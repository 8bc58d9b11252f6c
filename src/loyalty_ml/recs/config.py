"""Typed recommendation knobs, loaded from ``config/recs.yaml`` (every number lives there)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from loyalty_ml.configfile import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InteractionConfig(_Strict):
    """How contract rows become one member × product weight."""

    purchase_weight: float = Field(1.0, gt=0)
    event_weights: dict[str, float] = Field(default_factory=lambda: {"cart": 0.5, "view": 0.1})
    half_life_days: float | None = Field(180.0, gt=0, description="Time decay; null = none.")
    include_returned: bool = False


class PopularityConfig(_Strict):
    half_life_days: float | None = Field(None, gt=0)


class ALSConfig(_Strict):
    factors: int = Field(64, ge=2)
    regularization: float = Field(0.05, ge=0)
    alpha: float = Field(10.0, gt=0)
    iterations: int = Field(15, ge=1)


class BPRConfig(_Strict):
    factors: int = Field(64, ge=2)
    learning_rate: float = Field(0.05, gt=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, ge=1)


class ItemKNNConfig(_Strict):
    """Co-purchase similarity: c_ij / (n_i^alpha * n_j^(1-alpha) + shrink), top-K kept."""

    neighbours: int = Field(100, ge=1)
    alpha: float = Field(0.5, ge=0, le=1)
    shrink: float = Field(0.0, ge=0)
    history_decay: float = Field(0.8, gt=0, le=1, description="Weight decay^rank, rank 0 = latest.")
    max_history: int = Field(50, ge=1)


class TransitionConfig(_Strict):
    """What is bought next: pairs up to ``window`` steps apart in each member's sequence."""

    window: int = Field(3, ge=1)
    distance_decay: float = Field(0.5, gt=0, le=1)
    backward_weight: float = Field(0.3, ge=0, le=1)
    neighbours: int = Field(100, ge=1)
    alpha: float = Field(0.5, ge=0, le=1)
    shrink: float = Field(0.0, ge=0)
    history_decay: float = Field(0.4, gt=0, le=1)
    max_history: int = Field(10, ge=1)


class RepeatConfig(_Strict):
    """Replenishment: items members buy again (consumables)."""

    min_buyers: int = Field(5, ge=1)
    min_repeat_rate: float = Field(0.15, ge=0, le=1)
    history_decay: float = Field(0.7, gt=0, le=1)
    profile: Literal["history", "weights"] = Field(
        "history", description="Offline score: decay^rank history or time-decayed weights."
    )
    smoothing: float = Field(
        0.0, ge=0, description="Pseudo-buyers at the overall re-buy rate (0 = gated rate only)."
    )


class CategoryPopularityConfig(_Strict):
    """Popular items in the member's categories: P(category | member) x weight within it."""

    history_decay: float = Field(0.8, gt=0, le=1)
    max_history: int = Field(20, ge=1)
    prior: float = Field(
        0.0, ge=0, description="Dirichlet pseudo-count towards the overall category shares."
    )
    within: Literal["max", "share"] = Field(
        "max", description="Item weight: buyers / top item's buyers (max) or / category's (share)."
    )


class BlendConfig(_Strict):
    """Weights of each candidate source in the final score (0 disables a source)."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "transitions": 1.0,
            "item_knn": 0.5,
            "als": 0.3,
            "bpr": 0.0,
            "category_popularity": 0.0,
            "popularity": 0.02,
        }
    )


class TuningConfig(_Strict):
    trials: int = Field(30, ge=0)
    protocol: Literal["temporal", "leave_one_out"] = Field(
        "temporal",
        description="temporal: next-period purchases; leave_one_out: each member's last purchase "
        "(test) and the one before (validation).",
    )
    holdout_days: int = Field(28, ge=1, description="Temporal protocol: length of each period.")
    targets: Literal["new", "all"] = Field(
        "new",
        description="Temporal protocol: 'new' = products new to the member (the member's history "
        "is excluded from every ranking, as in `home`); 'all' = every product bought in the "
        "period, re-buys included, nothing excluded (replenishment / post_purchase view).",
    )
    metric: str = "ndcg@10"
    ks: list[int] = Field(default_factory=lambda: [5, 10, 20, 50])
    max_tuning_members: int = Field(30000, ge=100, description="Validation sample for tuning.")
    blend_candidates: int = Field(
        300, ge=10, description="Top items per source and member cached for blend tuning."
    )
    timeout_s: float | None = Field(None, gt=0)


class GateConfig(_Strict):
    metric: str = "ndcg@10"
    margin: float = 0.0


class ScenarioConfig(_Strict):
    """Serving knobs per request context."""

    precomputed_per_member: int = Field(
        200, ge=0, description="Factor-model top list stored per member."
    )
    precomputed_home: int = Field(
        50,
        ge=0,
        description="Final 'home' candidates stored per member (0 = score every request live); "
        "requests for more items, or left short by the tier filter, are scored live.",
    )
    candidates_per_item: int = Field(50, ge=1)
    cart_substitute_penalty: float = Field(
        1.0, ge=0, le=1, description="Drop share of cart candidates in the cart items' categories."
    )
    post_purchase_repeat_weight: float = Field(1.0, ge=0)
    tier_exclusive_boost: float = Field(0.0, ge=0, description="Relative boost; 0 = off.")
    exclude_purchased: bool = True
    segment_columns: list[str] = Field(
        default_factory=lambda: ["region", "tier", "acquisition_channel"]
    )
    popular_per_segment: int = Field(200, ge=1)
    similar_sources: list[str] = Field(
        default_factory=lambda: ["item_knn", "als"],
        description="Sources of 'similar' lists (ALS is O(items²·factors) to precompute).",
    )


class RecsConfig(_Strict):
    seed: int = 42
    threads: int = Field(0, ge=0, description="implicit threads; 0 = all cores.")
    interactions: InteractionConfig = InteractionConfig()
    popularity: PopularityConfig = PopularityConfig()
    als: ALSConfig = ALSConfig()
    bpr: BPRConfig = BPRConfig()
    item_knn: ItemKNNConfig = ItemKNNConfig()
    transitions: TransitionConfig = TransitionConfig()
    repeat: RepeatConfig = RepeatConfig()
    category_popularity: CategoryPopularityConfig = CategoryPopularityConfig()
    blend: BlendConfig = BlendConfig()
    tuning: TuningConfig = TuningConfig()
    gate: GateConfig = GateConfig()
    serving: ScenarioConfig = ScenarioConfig()
    experiment: str = "recs"
    method: Literal["blend"] = "blend"


def load_recs_config(path: Path | str | None = None) -> RecsConfig:
    """``config/recs.yaml`` (or ``path``) as a validated :class:`RecsConfig`."""
    return load_yaml_model(RecsConfig, path, "recs.yaml", "recommendations")
