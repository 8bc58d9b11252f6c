"""The Feast feature store of the active profile: configuration, apply, and the store object.

``local``: file registry, SQLite online store, DuckDB offline store, all under LOYALTY_HOME.
``production``: SQL registry on PostgreSQL, Redis online store, DuckDB offline store.
The same settings are written declaratively in ``features/feature_store*.yaml`` for the Feast CLI;
a test checks the two agree. Feast is imported only inside functions (5 s cold import).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loyalty_ml.errors import ConfigError
from loyalty_ml.features.config import FeaturesConfig, load_features_config
from loyalty_ml.features.definitions import FeastObjects, feast_objects
from loyalty_ml.features.tables import features_dir, require_manifest

if TYPE_CHECKING:
    from feast import FeatureStore


def sqlalchemy_url(dsn: str) -> str:
    """psycopg 3 is the installed driver; SQLAlchemy needs it named in the URL."""
    if dsn.startswith("postgresql://"):
        return "postgresql+psycopg://" + dsn.removeprefix("postgresql://")
    if dsn.startswith("postgres://"):
        return "postgresql+psycopg://" + dsn.removeprefix("postgres://")
    return dsn


def repo_config_dict(
    profile: str | None = None,
    project: str | None = None,
    home: Path | None = None,
    config: FeaturesConfig | None = None,
) -> dict[str, Any]:
    """The ``feature_store.yaml`` content of a profile, with paths resolved."""
    from loyalty_ml.settings import get_settings

    settings = get_settings()
    profile = profile or settings.profile
    config = config or load_features_config()
    base = features_dir(home or settings.home_dir) / "feast"
    common: dict[str, Any] = {
        "project": project or config.store.project_name,
        "provider": "local",
        "offline_store": {"type": "duckdb"},
        "entity_key_serialization_version": 3,
    }
    if profile == "local":
        return {
            **common,
            "registry": {
                "registry_type": "file",
                "path": str(base / "registry.db"),
                "cache_ttl_seconds": 60,
            },
            "online_store": {"type": "sqlite", "path": str(base / "online.db")},
        }
    if profile == "production":
        return {
            **common,
            "registry": {
                "registry_type": "sql",
                "path": sqlalchemy_url(settings.postgres_dsn),
                "cache_ttl_seconds": 60,
                "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
            },
            "online_store": {
                "type": "redis",
                "connection_string": f"{settings.redis_host}:{settings.redis_port}",
            },
        }
    raise ConfigError(f"unknown profile {profile!r} (local or production)")


def repo_config(profile: str | None = None, project: str | None = None, home: Path | None = None):
    from feast.repo_config import RepoConfig

    raw = repo_config_dict(profile, project, home)
    base = (
        Path(raw["registry"]["path"]).parent if raw["registry"]["registry_type"] == "file" else None
    )
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return RepoConfig(repo_path=features_dir(home).parent, **raw)


def get_store(
    profile: str | None = None, project: str | None = None, home: Path | None = None
) -> FeatureStore:
    """A FeatureStore for the active profile (nothing is applied)."""
    from feast import FeatureStore

    return FeatureStore(config=repo_config(profile, project, home))


@dataclass
class AppliedStore:
    store: FeatureStore
    objects: FeastObjects

    def unavailable(self, service: str) -> dict[str, str]:
        """Families the service would use but this data set cannot provide, with the reason."""
        return self.objects.unavailable.get(service, {})


def apply_repo(
    profile: str | None = None, project: str | None = None, home: Path | None = None
) -> AppliedStore:
    """Register the built feature tables' objects (and drop views whose table is gone)."""
    store = get_store(profile, project, home)
    objects = feast_objects(require_manifest(home), home=home)
    keep = objects.view_names()
    stale_views = [fv for fv in store.list_feature_views() if fv.name not in keep]
    keep_services = set(objects.services)
    stale_services = [s for s in store.list_feature_services() if s.name not in keep_services]
    store.apply(
        objects.all(),
        objects_to_delete=[*stale_services, *stale_views],
        partial=False,
    )
    return AppliedStore(store, objects)


def open_store(
    profile: str | None = None, project: str | None = None, home: Path | None = None
) -> AppliedStore:
    """The store with the objects of the current manifest, applying only when the registry lags."""
    store = get_store(profile, project, home)
    objects = feast_objects(require_manifest(home), home=home)
    registered = {fv.name for fv in store.list_feature_views()}
    if registered != objects.view_names():
        return apply_repo(profile, project, home)
    return AppliedStore(store, objects)


def teardown_project(
    profile: str | None = None, project: str | None = None, home: Path | None = None
) -> None:
    """Remove ONE project's online data and registry entries (tests use a project per test).

    Never ``FeatureStore.teardown()``: in Feast 0.67 it deletes every project of the registry, and
    the SQL registry's teardown empties its tables for all projects (shared PostgreSQL).
    """
    store = get_store(profile, project, home)
    views = store.list_feature_views()
    entities = store.list_entities()
    store._get_provider().teardown_infra(store.project, views, entities)
    with contextlib.suppress(Exception):  # the project may never have been applied
        store.registry.delete_project(store.project, commit=True)
