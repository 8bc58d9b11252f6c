"""Typed A/B testing configuration (``config/abtest.yaml``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty_ml.configfile import load_yaml_model
from loyalty_ml.settings import get_settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentSpec(_Strict):
    splits: dict[str, float]
    salt: str | None = None  # defaults to the experiment name; change it to re-randomise

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        if not self.splits or any(w < 0 for w in self.splits.values()):
            raise ValueError("splits must be non-empty with non-negative weights")
        if sum(self.splits.values()) <= 0:
            raise ValueError("splits must have a positive total weight")
        return self


class ABConfig(_Strict):
    control: str = "control"
    holdout: float = Field(0.10, gt=0, lt=1)
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.80, gt=0, lt=1)
    srm_alpha: float = Field(0.001, gt=0, lt=1)
    exposures_file: str = "ab/exposures.csv"
    experiments: dict[str, ExperimentSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _every_campaign_has_control(self) -> ABConfig:
        # Without a control arm no incremental effect can ever be measured: refuse early.
        for name, spec in self.experiments.items():
            if self.control not in spec.splits or spec.splits[self.control] <= 0:
                raise ValueError(f"experiments.{name}.splits needs a '{self.control}' arm")
        return self

    def exposures_path(self) -> Path:
        return get_settings().path(*Path(self.exposures_file).parts)


def load_ab_config(path: Path | str | None = None) -> ABConfig:
    return load_yaml_model(ABConfig, path, "abtest.yaml", "A/B testing")
