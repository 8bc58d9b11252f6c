"""Typed runtime settings: the one source of defaults for paths, profiles and service knobs.

Domain rules (tiers, points, benefits, caps) live in YAML under ``config/``; this module only says
where things are and how the process runs. Nothing here touches the filesystem at import time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parent


def _default_config_dir() -> Path:
    """``config/`` at the repo root; a built wheel carries the same files as ``loyalty_ml/_config``."""
    shipped = PACKAGE_ROOT / "_config"
    return shipped if shipped.is_dir() else PACKAGE_ROOT.parent.parent / "config"


DEFAULT_CONFIG_DIR = _default_config_dir()


class Settings(BaseSettings):
    """Process settings, read from ``LOYALTY_*`` environment variables (and ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="LOYALTY_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path(".loyalty"), description="State directory (data, stores, runs)."
    )
    profile: Literal["local", "production"] = "local"
    config_dir: Path = Field(default=DEFAULT_CONFIG_DIR, description="Domain YAML configuration.")
    policy_file: Path | None = Field(default=None, description="Overrides config_dir/policy.yaml.")
    seed: int = 42

    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"

    mlflow_tracking_uri: str | None = Field(
        default=None, description="Defaults to a SQLite store under LOYALTY_HOME/mlflow."
    )

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    def path(self, *parts: str) -> Path:
        """A path under LOYALTY_HOME; parent folders are created on demand, not at import."""
        target = self.home_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    @property
    def policy_path(self) -> Path:
        return self.policy_file or self.config_dir / "policy.yaml"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.path('mlflow', 'mlflow.db')}"

    @property
    def artifact_root(self) -> Path:
        return self.path("mlflow", "artifacts", ".keep").parent


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Tests change LOYALTY_* variables; this drops the cached object."""
    get_settings.cache_clear()
