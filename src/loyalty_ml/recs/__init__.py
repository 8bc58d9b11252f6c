"""Recommendations: candidate models, offline evaluation, tuning, serving (see docs/recs.md).

Public API (imported lazily so ``import loyalty_ml.recs`` stays light):

- ``train_recs(dataset, as_of, config, trials, name) -> RecsTrainResult``
- ``Recommender.load(path_or_model_uri)`` → ``recommend(member_id, n, context, cart=None,
  product_id=None, member_tier=None, now=None) -> RecommendationResult`` and ``recommend_batch``.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Recommender": "loyalty_ml.recs.serving",
    "RecommendationResult": "loyalty_ml.recs.serving",
    "build_recommender": "loyalty_ml.recs.serving",
    "train_recs": "loyalty_ml.recs.train",
    "RecsTrainResult": "loyalty_ml.recs.train",
    "RecsConfig": "loyalty_ml.recs.config",
    "load_recs_config": "loyalty_ml.recs.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
