"""Feast objects (entities, sources, views, services) built from the feature-table manifest.

Both the declarative repo in ``features/`` (for ``feast plan/apply``) and
:mod:`loyalty_ml.features.store` take their objects from here, so the two never diverge. Views
exist only for families whose table was built; each feature service lists in its tags the
families it would use but cannot (``unavailable``) and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from loyalty_ml.features.config import FeaturesConfig, load_features_config
from loyalty_ml.features.tables import PRODUCT_FAMILY, Manifest, read_manifest

PRODUCT_SERVICE = "products_v1"


def view_name(family: str) -> str:
    return "product_stats" if family == PRODUCT_FAMILY else f"member_{family}"


def training_view_name(service: str) -> str:
    """The offline-only view over a service's training table (``tables.write_training_tables``)."""
    return f"{service}_training"


def service_views(
    manifest: Manifest, config: FeaturesConfig
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Per feature service: its views whose table was built (in the service's order) and the
    families it would use but cannot, with the reason. Pure: Feast's objects and the Feast-free
    online layout (``online_layout``) both take the services from here."""
    services = dict(config.store.services)
    services[PRODUCT_SERVICE] = [PRODUCT_FAMILY]
    out: dict[str, tuple[list[str], dict[str, str]]] = {}
    for service, families in services.items():
        built = [f for f in families if f in manifest.tables]
        missing = {f: manifest.absent.get(f, "not built") for f in families if f not in built}
        out[service] = ([view_name(f) for f in built], missing)
    return out


@dataclass
class FeastObjects:
    entities: dict[str, object] = field(default_factory=dict)
    sources: dict[str, object] = field(default_factory=dict)
    views: dict[str, object] = field(default_factory=dict)
    services: dict[str, object] = field(default_factory=dict)
    unavailable: dict[str, dict[str, str]] = field(default_factory=dict)
    # Feature service -> its offline-only training view (never materialized, never read online).
    training_views: dict[str, object] = field(default_factory=dict)

    def all(self) -> list[object]:
        return [
            *self.entities.values(),
            *self.sources.values(),
            *self.views.values(),
            *self.services.values(),
            *(v.batch_source for v in self.training_views.values()),
            *self.training_views.values(),
        ]

    def view_names(self) -> set[str]:
        """Every view to register: the families' and the training views."""
        return {*self.views, *(v.name for v in self.training_views.values())}


def feast_objects(
    manifest: Manifest | None = None,
    config: FeaturesConfig | None = None,
    home: Path | None = None,
) -> FeastObjects:
    """All Feast objects for the tables in ``manifest`` (default: the one under LOYALTY_HOME)."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64, String

    types = {"Int64": Int64, "Float64": Float64, "String": String}
    config = config or load_features_config()
    manifest = manifest if manifest is not None else read_manifest(home)
    out = FeastObjects()
    member = Entity(
        name="member",
        join_keys=["member_id"],
        value_type=ValueType.STRING,
        description="A loyalty-programme member",
    )
    product = Entity(
        name="product",
        join_keys=["product_id"],
        value_type=ValueType.STRING,
        description="A product",
    )
    out.entities = {"member": member, "product": product}
    if manifest is None:
        return out
    ttl = timedelta(days=config.store.ttl_days)
    for family, table in manifest.tables.items():
        name = view_name(family)
        source = FileSource(
            name=f"{name}_source",
            path=table.path,
            timestamp_field="event_timestamp",
            description=f"{family} feature snapshots written by `loyalty features build`",
        )
        entity = product if table.entity == "product" else member
        out.sources[name] = source
        out.views[name] = FeatureView(
            name=name,
            entities=[entity],
            ttl=ttl,
            source=source,
            schema=[Field(name=col, dtype=types[kind]) for col, kind in table.columns.items()],
            online=True,
            tags={"family": family},
        )
    for service, table in manifest.training.items():
        name = training_view_name(service)
        out.training_views[service] = FeatureView(
            name=name,
            entities=[member],
            ttl=ttl,
            source=FileSource(
                name=f"{name}_source",
                path=table.path,
                timestamp_field="event_timestamp",
                description=f"the families of {service} side by side, for training sets",
            ),
            schema=[Field(name=col, dtype=types[kind]) for col, kind in table.columns.items()],
            online=False,
            tags={"training_for": service},
        )
    for service, (present, missing) in service_views(manifest, config).items():
        out.unavailable[service] = missing
        tags = {"unavailable": ",".join(sorted(missing))} if missing else {}
        tags.update({f"unavailable.{f}": why for f, why in missing.items()})
        if present:
            out.services[service] = FeatureService(
                name=service,
                features=[out.views[v] for v in present],
                tags=tags,
                description=f"features of model {service}",
            )
    return out
