"""Experiments as files: ``run_experiment(name)`` trains every variant over rolling time folds
into the MLflow experiment ``exp-<name>``; ``compare_experiment(name) -> (table, plot_path)``."""

from loyalty_ml.experiments.compare import compare_experiment, compare_frame, summarise
from loyalty_ml.experiments.runner import ExperimentResult, fold_dates, run_experiment
from loyalty_ml.experiments.spec import ExperimentSpec, Variant, experiments_dir, load_spec

__all__ = [
    "ExperimentResult",
    "ExperimentSpec",
    "Variant",
    "compare_experiment",
    "compare_frame",
    "experiments_dir",
    "fold_dates",
    "load_spec",
    "run_experiment",
    "summarise",
]
