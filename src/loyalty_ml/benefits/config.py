"""``config/benefits.yaml`` as a validated pydantic model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loyalty_ml.errors import ConfigError
from loyalty_ml.settings import get_settings

Objective = Literal["conversion", "revenue", "margin"]
ObjectiveChoice = Literal["auto", "conversion", "revenue", "margin"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecisionConfig(_Strict):
    shrinkage: float = Field(default=1.0, ge=0.0, le=1.0)
    switch_margin: float = Field(default=0.0, ge=0.0)
    tune: bool = True
    shrinkage_grid: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    switch_margin_grid: list[float] = Field(
        default_factory=lambda: [0.0, 0.0025, 0.005, 0.01, 0.02, 0.04]
    )
    require_confident_gain: bool = True
    confidence_z: float = Field(default=1.645, ge=0.0)
    confirm_z: float = Field(default=1.0, ge=0.0)
    calibrate: bool = True
    calibration_bins: int = Field(default=10, ge=1)
    calibration_min_rows: int = Field(default=500, ge=1)
    net_confidence_z: float = Field(default=1.0, ge=0.0)
    gate_keep_z: float = Field(default=0.0, ge=0.0)


class OptunaConfig(_Strict):
    trials: int = Field(default=10, ge=0)
    timeout_s: float = Field(default=600, gt=0)
    space: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "num_leaves": (3, 31),
            "min_child_samples": (50, 2000),
            "learning_rate": (0.01, 0.2),
            "n_estimators": (30, 300),
            "reg_lambda": (0.0, 20.0),
        }
    )


class GateConfig(_Strict):
    metric: Literal["policy_value_dr", "policy_value_ips", "policy_value_snips"] = "policy_value_dr"
    margin: float = 0.0


class BenefitsConfig(_Strict):
    min_observations_per_arm: int = Field(default=200, ge=1)
    min_conversions_per_arm: int = Field(default=5, ge=0)
    objective: ObjectiveChoice = "auto"
    margin_rate: float | None = Field(default=None, gt=0.0, le=1.0)
    conversion_value: float | None = Field(default=None, gt=0.0)
    cost_overrides: dict[str, float] = Field(default_factory=dict)
    exploration: float = Field(default=0.0, ge=0.0, lt=1.0)
    learners: list[Literal["t", "x", "dr", "to", "m"]] = Field(
        default_factory=lambda: ["t", "x", "dr"]
    )
    ensemble: bool = True
    validation_share: float = Field(default=0.3, gt=0.0, lt=0.9)
    cross_fit_folds: int = Field(default=3, ge=2)
    seed: int = 42
    num_threads: int | None = Field(default=None, ge=1)  # None = the cores this process may use
    feature_source: Literal["auto", "feast", "pipeline"] = "auto"
    feature_service: str = "benefits_v1"
    lightgbm: dict[str, Any] = Field(default_factory=dict)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    optuna: OptunaConfig = Field(default_factory=OptunaConfig)
    gate: GateConfig = Field(default_factory=GateConfig)


def benefits_config_from_dict(raw: dict[str, Any] | None, source: str = "<dict>") -> BenefitsConfig:
    try:
        return BenefitsConfig.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: {key}: {first['msg']}") from exc


def load_benefits_config(path: Path | str | None = None) -> BenefitsConfig:
    """Read ``benefits.yaml`` (default: the settings' config directory); absent file = defaults."""
    path = Path(path) if path else get_settings().config_dir / "benefits.yaml"
    if not path.is_file():
        if path.name == "benefits.yaml" and path.parent == get_settings().config_dir:
            return BenefitsConfig()
        raise ConfigError(f"benefits config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return benefits_config_from_dict(raw, str(path))
