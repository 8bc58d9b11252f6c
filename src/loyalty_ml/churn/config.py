"""Typed churn configuration (``config/churn.yaml``); invalid values raise ``ConfigError``
naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty_ml.configfile import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelConfig(_Strict):
    horizon_days: int = Field(90, ge=1)
    definition: Literal["no_purchase", "no_activity"] = "no_purchase"


class SnapshotConfig(_Strict):
    spacing_days: int = Field(30, ge=1)
    n_train: int = Field(6, ge=1)
    min_tenure_days: int = Field(0, ge=0)


class CalibrationConfig(_Strict):
    method: Literal["isotonic", "platt", "none"] = "isotonic"


class BandConfig(_Strict):
    thresholds: list[float] = Field(default_factory=lambda: [0.3, 0.6])
    labels: list[str] = Field(default_factory=lambda: ["low", "medium", "high"])

    @model_validator(mode="after")
    def _check(self) -> BandConfig:
        if len(self.labels) != len(self.thresholds) + 1:
            raise ValueError("bands.labels must have one more entry than bands.thresholds")
        if sorted(self.thresholds) != self.thresholds or any(
            not 0 < t < 1 for t in self.thresholds
        ):
            raise ValueError("bands.thresholds must be ascending and inside (0, 1)")
        return self


class ValueConfig(_Strict):
    horizon_days: int = Field(365, ge=1)
    high_quantile: float = Field(0.8, gt=0, lt=1)
    low_quantile: float = Field(0.4, gt=0, lt=1)
    potential_ratio: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ValueConfig:
        if self.low_quantile >= self.high_quantile:
            raise ValueError("value.low_quantile must be below value.high_quantile")
        return self


class OptunaConfig(_Strict):
    direction: Literal["maximize", "minimize"] = "maximize"
    n_folds: int = Field(2, ge=1)
    pruner: Literal["median", "none"] = "median"
    search_space: dict[str, list[Any]] = Field(default_factory=dict)


class GateConfig(_Strict):
    metric: str = "auc"
    margin: float = 0.002
    higher_is_better: bool = True


class ReasonConfig(_Strict):
    top_k: int = Field(3, ge=1)
    patterns: list[tuple[str, str]] = Field(default_factory=list)


class ChurnConfig(_Strict):
    label: LabelConfig = Field(default_factory=LabelConfig)
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    bands: BandConfig = Field(default_factory=BandConfig)
    value: ValueConfig = Field(default_factory=ValueConfig)
    lightgbm: dict[str, Any] = Field(default_factory=dict)
    # [feature-name regex, +1 | -1]: monotone constraints (first match wins; others free).
    monotone: list[tuple[str, int]] = Field(default_factory=list)
    optuna: OptunaConfig = Field(default_factory=OptunaConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    reasons: ReasonConfig = Field(default_factory=ReasonConfig)

    def with_overrides(self, **dotted: Any) -> ChurnConfig:
        """A copy with ``{"label.horizon_days": 60}``-style overrides (None values are skipped)."""
        data = self.model_dump()
        for key, value in dotted.items():
            if value is None:
                continue
            parts = key.split(".")
            node = data
            for part in parts[:-1]:
                node = node[part]
            node[parts[-1]] = value
        return ChurnConfig.model_validate(data)


def load_churn_config(path: Path | str | None = None) -> ChurnConfig:
    """Read ``config/churn.yaml`` (or ``path``); invalid values raise ``ConfigError``."""
    return load_yaml_model(ChurnConfig, path, "churn.yaml", "churn")
