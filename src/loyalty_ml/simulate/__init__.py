"""Membership simulator: a synthetic loyalty shop with the ground truth real data lacks.

``simulate(cfg) -> (Dataset, Truth)`` in memory; ``generate(cfg, out_dir)`` streams parquet;
``oracle_item_scores(truth_dir, member_ids)`` gives each member's true product propensities.
Defaults: ``config/simulator.yaml``; file schemas: ``docs/simulator.md``.
"""

from loyalty_ml.simulate.api import Truth, generate, simulate
from loyalty_ml.simulate.config import SimulatorConfig, load_config
from loyalty_ml.simulate.oracle import oracle_item_scores, oracle_scores

__all__ = [
    "SimulatorConfig",
    "Truth",
    "generate",
    "load_config",
    "oracle_item_scores",
    "oracle_scores",
    "simulate",
]
