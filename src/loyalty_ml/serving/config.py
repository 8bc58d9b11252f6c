"""Typed serving configuration (``config/serving.yaml``): limits, key scopes, timeouts, fallbacks."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loyalty_ml.errors import ConfigError
from loyalty_ml.settings import get_settings

Scope = Literal["storefront", "campaigns", "admin"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpLimits(_Strict):
    max_body_bytes: int = Field(262_144, ge=1024)
    max_batch_member_ids: int = Field(1000, ge=1, le=1000)
    max_recommendations: int = Field(100, ge=1, le=100)
    max_cart_items: int = Field(200, ge=1)
    max_campaign_limit: int = Field(100_000, ge=1)


class Timeouts(_Strict):
    recommend: int = Field(80, ge=1)
    churn_score: int = Field(2000, ge=1)
    benefits: int = Field(1000, ge=1)
    at_risk: int = Field(120_000, ge=1)


def _default_key_scopes() -> dict[str, list[Scope]]:
    return {
        "storefront": ["storefront"],
        "campaigns": ["campaigns"],
        "admin": ["admin", "campaigns", "storefront"],
    }


def _default_routes() -> dict[str, Scope]:
    return {
        "/recommend": "storefront",
        "/churn_score": "campaigns",
        "/benefits": "campaigns",
        "/campaigns": "campaigns",
        "/admin": "admin",
    }


class AuthConfig(_Strict):
    header: str = "x-api-key"
    keys_env: str = "LOYALTY_API_KEYS"
    keys_file: Path | None = None
    key_scopes: dict[str, list[Scope]] = Field(default_factory=_default_key_scopes)
    routes: dict[str, Scope] = Field(default_factory=_default_routes)
    public: list[str] = Field(
        default_factory=lambda: [
            "/healthz",
            "/readyz",
            "/metrics",
            "/docs",
            "/redoc",
            "/openapi.json",
        ]
    )

    @field_validator("header")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @property
    def keys_path(self) -> Path:
        return self.keys_file or get_settings().path("api_keys.json")


class FallbackConfig(_Strict):
    popular_items: int = Field(100, ge=1)
    refresh_s: float = Field(300, gt=0)


class CampaignConfig(_Strict):
    holdout_share: float = Field(0.1, ge=0.0, lt=1.0)
    default_channel: str = "email"
    postgres_schema: str = Field("loyalty", pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class SnapshotConfig(_Strict):
    max_members: int = Field(2_000_000, ge=1)
    reason_candidates_per_slot: int = Field(10, ge=1)
    min_reason_candidates: int = Field(2000, ge=1)
    reason_cache_members: int = Field(50_000, ge=0)
    reason_warm_batch: int = Field(500, ge=1)


class OnlineStoreConfig(_Strict):
    """How the service talks to the online store (Redis in production)."""

    connect_timeout_ms: int = Field(50, ge=1)
    read_timeout_ms: int = Field(50, ge=1)
    retry_after_s: float = Field(1.0, ge=0)  # after a failed read, skip the store this long


class PrivacyConfig(_Strict):
    # How often a running service re-reads LOYALTY_HOME/privacy/erasures.jsonl (0: only at
    # start and reload). An erased member is unknown to the service within this time.
    erasure_poll_s: float = Field(default=1.0, ge=0)


class RuntimeConfig(_Strict):
    gc_freeze: bool = True
    fast_path: bool = True
    # gc.set_threshold(gen0, gen1, gen2) in each worker; None keeps Python's (700, 10, 10).
    gc_threshold: tuple[int, int, int] | None = None


class AbTestServing(_Strict):
    """Which A/B experiment (``config/abtest.yaml``) tags each endpoint's responses."""

    endpoints: dict[Literal["recommend", "benefits"], str] = Field(default_factory=dict)
    flush_s: float = Field(1.0, gt=0)
    max_buffer: int = Field(100_000, ge=1)


class ServingConfig(_Strict):
    http: HttpLimits = Field(default_factory=HttpLimits)
    timeouts_ms: Timeouts = Field(default_factory=Timeouts)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    fallback: FallbackConfig = Field(default_factory=FallbackConfig)
    campaigns: CampaignConfig = Field(default_factory=CampaignConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    snapshot: SnapshotConfig = Field(default_factory=SnapshotConfig)
    abtest: AbTestServing = Field(default_factory=AbTestServing)
    online_store: OnlineStoreConfig = Field(default_factory=OnlineStoreConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)


def read_serving_config(path: Path) -> ServingConfig:
    try:
        raw = yaml.safe_load(path.read_text()) if path.exists() else {}
        return ServingConfig.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path.name}: {key}: {first['msg']}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML ({exc})") from exc


@lru_cache(maxsize=4)
def _cached(path: str) -> ServingConfig:
    return read_serving_config(Path(path))


def load_serving_config(path: Path | None = None) -> ServingConfig:
    """``config/serving.yaml`` (or ``LOYALTY_CONFIG_DIR``'s copy); defaults when absent."""
    return _cached(str(path or get_settings().config_dir / "serving.yaml"))
