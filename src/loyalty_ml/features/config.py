"""Typed view of ``config/features.yaml``: windows, sensitive attributes, store settings."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loyalty_ml.configfile import load_yaml_model

FEATURES_CONFIG_FILE = "features.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive_sorted(values: list[int]) -> list[int]:
    if not values or any(v <= 0 for v in values):
        raise ValueError("windows must be a non-empty list of positive day counts")
    return sorted(set(values))


class WindowsConfig(_Strict):
    rfm: list[int] = Field(default_factory=lambda: [7, 30, 90, 365])
    engagement: list[int] = Field(default_factory=lambda: [7, 30, 90])
    service: list[int] = Field(default_factory=lambda: [30, 90, 365])
    preferences_days: int = Field(default=365, gt=0)
    products: list[int] = Field(default_factory=lambda: [7, 30, 90])

    _check = field_validator("rfm", "engagement", "service", "products")(_positive_sorted)


class StoreConfig(_Strict):
    project: str = Field(default="loyalty", pattern=r"^[a-z][a-z0-9_]*$")
    ttl_days: int = Field(default=0, ge=0)
    services: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "churn_v1": ["rfm", "engagement", "service", "preferences", "static", "loyalty"],
        }
    )
    redis_batch_members: int = Field(default=5000, gt=0)
    materialize_threads: int = Field(default=2, gt=0)

    @property
    def project_name(self) -> str:
        """The Feast project; tests and parallel shops override it with LOYALTY_FEAST_PROJECT."""
        return os.environ.get("LOYALTY_FEAST_PROJECT") or self.project


class FeaturesConfig(_Strict):
    windows: WindowsConfig = Field(default_factory=WindowsConfig)
    sensitive_attributes: list[str] = Field(default_factory=lambda: ["gender", "birth_date"])
    price_band_quantiles: tuple[float, float] = (0.33, 0.67)
    store: StoreConfig = Field(default_factory=StoreConfig)
    # Member snapshots are built this many members at a time (bounds memory; results identical).
    chunk_members: int = Field(default=250_000, gt=0)

    @field_validator("price_band_quantiles")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 < low < high < 1.0:
            raise ValueError("price_band_quantiles must satisfy 0 < low < high < 1")
        return value


def load_features_config(path: Path | str | None = None) -> FeaturesConfig:
    """Read ``features.yaml`` (default: the settings' config directory); bad keys raise ConfigError."""
    return load_yaml_model(FeaturesConfig, path, FEATURES_CONFIG_FILE, "features")
