"""Experiment files: ``experiments/<name>.yaml`` = a base job spec + variants (or a grid search).

Variant ``overrides`` are dotted keys of the job's config (``label.horizon_days: 30``,
``als.factors: 128``, ``learners: [dr]``) plus a few runner keys that are not config:

- churn: ``families`` (feature families kept, ablation), ``provider`` (auto|builtin|pipeline)
- recs: ``method`` (which evaluated recommender the variant reports: als, item_knn, blend, ...)
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty_ml.configfile import read_yaml_mapping, validate_model
from loyalty_ml.errors import ConfigError
from loyalty_ml.settings import get_settings

RUNNER_KEYS = {"families", "provider", "method"}
DEFAULT_METRIC = {"churn": "auc", "recs": "ndcg@10", "benefits": "policy_value_dr"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variant(_Strict):
    name: str
    overrides: dict[str, Any] = Field(default_factory=dict)


class ExperimentSpec(_Strict):
    name: str = ""
    description: str = ""
    job: Literal["churn", "recs", "benefits"]
    # ${LOYALTY_HOME} and other environment variables expand; relative paths are from the cwd.
    data: str = "${LOYALTY_HOME}/data/demo"
    as_of: str | None = None  # latest fold's cut-off; default: the data's latest timestamp
    feature_service: str | None = None  # informational: the Feast feature service the job uses
    metric: str = ""  # primary metric compared; default per job
    folds: int = Field(3, ge=1, le=12)  # rolling as-of dates, newest first
    fold_spacing_days: int = Field(30, ge=1)
    trials: int = Field(0, ge=0)  # Optuna trials inside each training (0 = config defaults)
    base: dict[str, Any] = Field(default_factory=dict)
    variants: list[Variant] = Field(default_factory=list)
    search: dict[str, list[Any]] | None = None  # grid: one variant per combination

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        if not self.variants and not self.search:
            raise ValueError("give variants or a search grid")
        if self.search:
            keys = list(self.search)
            for combo in itertools.product(*(self.search[k] for k in keys)):
                label = ",".join(
                    f"{k.split('.')[-1]}={v}" for k, v in zip(keys, combo, strict=True)
                )
                self.variants.append(
                    Variant(name=label, overrides=dict(zip(keys, combo, strict=True)))
                )
            self.search = None
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique: {names}")
        if not self.metric:
            self.metric = DEFAULT_METRIC[self.job]
        return self

    def data_path(self) -> Path:
        home = str(get_settings().home_dir)
        return Path(os.path.expandvars(self.data.replace("${LOYALTY_HOME}", home))).expanduser()

    @property
    def mlflow_experiment(self) -> str:
        return f"exp-{self.name}"


def experiments_dir() -> Path:
    """``experiments/`` at the repo root (next to ``config/``); LOYALTY_EXPERIMENTS_DIR overrides."""
    override = os.environ.get("LOYALTY_EXPERIMENTS_DIR")
    return Path(override) if override else get_settings().config_dir.parent / "experiments"


def resolve_spec_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = experiments_dir() / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in experiments_dir().glob("*.yaml"))
    raise ConfigError(f"experiment {name_or_path!r} not found; known: {', '.join(known) or 'none'}")


def load_spec(name_or_path: str | Path) -> ExperimentSpec:
    path = resolve_spec_path(name_or_path)
    raw = read_yaml_mapping(path, "experiment")
    raw.setdefault("name", path.stem)
    return validate_model(ExperimentSpec, raw, path)
