"""A/B testing of campaigns and recommenders: deterministic assignment, exposure log, analysis.

- ``assign_variant(experiment, member_id, splits, salt=None)`` / ``assign_variants`` (vectorised)
- ``in_control(experiment, member_id, share)``: the holdout draw campaigns use (same hash)
- ``Assigner`` (config-driven, ``expose`` logs exposures), ``append_exposures``, ``read_exposures``
- ``analyze``, ``join_exposures``, ``srm_check``, ``sample_size``, ``cuped_adjust``
"""

from loyalty_ml.abtest.analyze import (
    SRMResult,
    analyze,
    cuped_adjust,
    diff_stats,
    join_exposures,
    sample_size,
    srm_check,
)
from loyalty_ml.abtest.assign import (
    EXPOSURE_COLUMNS,
    Assigner,
    append_exposures,
    assign_variant,
    assign_variants,
    exposure_record,
    in_control,
    read_exposures,
    with_holdout,
)
from loyalty_ml.abtest.config import ABConfig, load_ab_config
from loyalty_ml.abtest.simulate import simulate_experiment

__all__ = [
    "EXPOSURE_COLUMNS",
    "ABConfig",
    "Assigner",
    "SRMResult",
    "analyze",
    "append_exposures",
    "assign_variant",
    "assign_variants",
    "cuped_adjust",
    "diff_stats",
    "exposure_record",
    "in_control",
    "join_exposures",
    "load_ab_config",
    "read_exposures",
    "sample_size",
    "simulate_experiment",
    "srm_check",
    "with_holdout",
]
