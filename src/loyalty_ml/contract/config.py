"""Typed view of ``config/data.yaml``: validation thresholds and real-data adapter assumptions."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from loyalty_ml.configfile import load_yaml_model

DATA_CONFIG_FILE = "data.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValidationConfig(_Strict):
    max_per_kind: int = Field(gt=0)
    min_timestamp: date
    min_birth_date: date
    future_tolerance_days: int = Field(ge=0)
    order_before_join: Literal["warning", "error"]


class HillstromConfig(_Strict):
    offer_date: date
    offer_channel: str | None
    arms: dict[str, str] = Field(min_length=1)


class AmazonSeqConfig(_Strict):
    start_date: date
    placeholder_price: float = Field(ge=0.0)


class AdaptersConfig(_Strict):
    hillstrom: HillstromConfig
    amazon_seq: AmazonSeqConfig


class DataConfig(_Strict):
    validation: ValidationConfig
    adapters: AdaptersConfig


def load_data_config(path: Path | str | None = None) -> DataConfig:
    """Read ``data.yaml`` (default: the settings' config directory); bad keys raise ConfigError."""
    return load_yaml_model(DataConfig, path, DATA_CONFIG_FILE, "data")
