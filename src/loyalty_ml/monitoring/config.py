"""Typed monitoring configuration (``config/monitoring.yaml``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty_ml.configfile import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PSIConfig(_Strict):
    bins: int = Field(10, ge=2)
    warn: float = Field(0.10, gt=0)
    alert: float = Field(0.25, gt=0)
    max_categories: int = Field(50, ge=2)
    # Extra columns to leave out of the drift table (entity keys and row timestamps always are).
    exclude: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> PSIConfig:
        if self.warn >= self.alert:
            raise ValueError("psi.warn must be below psi.alert")
        return self


class CalibrationConfig(_Strict):
    bins: int = Field(10, ge=2)
    max_gap: float = Field(0.05, gt=0, lt=1)


class ReportConfig(_Strict):
    dir: str = "reports"
    top_features: int = Field(20, ge=1)
    log_to_mlflow: bool = False
    experiment: str = "monitoring"


class MonitoringConfig(_Strict):
    psi: PSIConfig = Field(default_factory=PSIConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)


def load_monitoring_config(path: Path | str | None = None) -> MonitoringConfig:
    return load_yaml_model(MonitoringConfig, path, "monitoring.yaml", "monitoring")
