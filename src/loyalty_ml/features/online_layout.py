"""Where one feature service's online values live, and in which order: read without Feast.

``OnlineFeatureReader`` needs only this much of Feast's registry — the service's views with
their features and types, the views' batch sources, the project, the join key and the online
store's address — and ``layout_from_manifest`` derives all of it from the feature-table manifest
and ``config/features.yaml``, which are what ``features apply`` registers in the first place
(``definitions.service_views`` is the one place that maps services to views). A serving worker
built on it never imports Feast (~9 s of imports plus the registry read per worker here);
``layout_from_applied`` reads the same from Feast's registry, and a test proves the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loyalty_ml.errors import MissingDataError
from loyalty_ml.features.materialize import JOIN_KEYS

ViewLayout = tuple[str, tuple[tuple[str, str], ...]]  # (view, ((feature, Feast type name), ...))


@dataclass(frozen=True)
class OnlineLayout:
    service: str
    project: str
    join_key: str
    views: tuple[ViewLayout, ...]  # in the service's order
    sources: dict[str, str] = field(default_factory=dict)  # view -> offline Parquet file
    online_store: dict[str, Any] = field(default_factory=dict)  # type + path | connection_string
    unavailable: dict[str, str] = field(default_factory=dict)  # family -> why it is absent

    @property
    def store_type(self) -> str:
        return str(self.online_store.get("type", ""))

    @property
    def feature_names(self) -> list[str]:
        return [name for _, feats in self.views for name, _ in feats]

    def redis_target(self) -> tuple[str, int]:
        conn = str(self.online_store.get("connection_string", "")).split(",")[0]
        host, _, port = conn.partition(":")
        return host or "127.0.0.1", int(port or 6379)


def _join_key(views: tuple[ViewLayout, ...]) -> str:
    entity = "product" if views and views[0][0] == "product_stats" else "member"
    return JOIN_KEYS[entity]


def layout_from_manifest(
    service: str = "churn_v1",
    profile: str | None = None,
    project: str | None = None,
    home: Path | None = None,
) -> OnlineLayout:
    """The layout of ``service`` from the feature-table manifest under LOYALTY_HOME (no Feast)."""
    from loyalty_ml.features.config import load_features_config
    from loyalty_ml.features.definitions import service_views, view_name
    from loyalty_ml.features.store import repo_config_dict
    from loyalty_ml.features.tables import require_manifest

    config = load_features_config()
    manifest = require_manifest(home)
    services = service_views(manifest, config)
    present, missing = services.get(service, ([], {}))
    if not present:
        raise MissingDataError(f"feature service {service} is not registered")
    tables = {view_name(family): table for family, table in manifest.tables.items()}
    views = tuple((v, tuple(tables[v].columns.items())) for v in present)
    repo = repo_config_dict(profile, project, home, config)
    return OnlineLayout(
        service=service,
        project=str(repo["project"]),
        join_key=_join_key(views),
        views=views,
        sources={v: tables[v].path for v in present},
        online_store=dict(repo["online_store"]),
        unavailable=dict(missing),
    )


def layout_from_applied(applied: Any, service: str = "churn_v1") -> OnlineLayout:
    """The same layout as Feast's registry has it (``applied``: a ``store.AppliedStore``)."""
    store = applied.store
    try:
        registered = store.get_feature_service(service)
    except Exception as exc:  # Feast raises its own not-found type
        raise MissingDataError(f"feature service {service} is not registered") from exc
    objects = applied.objects.views
    views = tuple(
        (proj.name, tuple((f.name, str(f.dtype)) for f in proj.features))
        for proj in registered.feature_view_projections
    )
    online = store.config.online_store
    if online.type == "redis":
        address: dict[str, Any] = {"type": "redis", "connection_string": online.connection_string}
    else:
        address = {"type": str(online.type), "path": str(getattr(online, "path", ""))}
    return OnlineLayout(
        service=service,
        project=str(store.project),
        join_key=_join_key(views),
        views=views,
        sources={name: objects[name].batch_source.path for name, _ in views},
        online_store=address,
        unavailable=dict(applied.unavailable(service)),
    )
