"""Feature tables on disk: one Parquet file per family under LOYALTY_HOME, plus a manifest.

The Feast repository (``features/``) and :mod:`loyalty_ml.features.store` read the manifest to know
which feature views exist and with which columns; a family whose input table is missing has no
file and is listed under ``absent`` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from loyalty_ml.contract.io import Dataset
from loyalty_ml.errors import MissingDataError
from loyalty_ml.features.config import FeaturesConfig, load_features_config
from loyalty_ml.features.pipeline import (
    available_families,
    build_member_features_at,
    build_member_snapshots,
    build_product_features,
)
from loyalty_ml.timeutil import to_utc

MANIFEST_VERSION = 1
PRODUCT_FAMILY = "product"


def features_dir(home: Path | None = None) -> Path:
    if home is None:
        from loyalty_ml.settings import get_settings

        home = get_settings().home_dir
    return Path(home) / "features"


def training_table_file(service: str, home: Path | None = None) -> Path:
    """A feature service's member families side by side (one source for training sets)."""
    return features_dir(home) / "tables" / "member" / f"training_{service}.parquet"


def table_file(family: str, home: Path | None = None) -> Path:
    entity = "product" if family == PRODUCT_FAMILY else "member"
    name = "product_stats" if family == PRODUCT_FAMILY else f"member_{family}"
    return features_dir(home) / "tables" / entity / f"{name}.parquet"


def feast_dtype(series: pd.Series) -> str:
    """The Feast type name a column is declared with (see definitions.FEAST_TYPES)."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        return "Int64"
    if pd.api.types.is_float_dtype(series):
        return "Float64"
    return "String"


@dataclass
class FamilyTable:
    entity: str
    path: str
    columns: dict[str, str]
    rows: int
    as_ofs: list[str]


@dataclass
class Manifest:
    version: int = MANIFEST_VERSION
    dataset: str = ""
    tables: dict[str, FamilyTable] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)
    # Feature service -> its training table (``write_training_tables``).
    training: dict[str, FamilyTable] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)  # key order = column order

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        tables = {k: FamilyTable(**v) for k, v in raw.pop("tables", {}).items()}
        training = {k: FamilyTable(**v) for k, v in raw.pop("training", {}).items()}
        return cls(tables=tables, training=training, **raw)


def manifest_path(home: Path | None = None) -> Path:
    return features_dir(home) / "manifest.json"


def read_manifest(home: Path | None = None) -> Manifest | None:
    path = manifest_path(home)
    if not path.is_file():
        return None
    return Manifest.from_json(path.read_text(encoding="utf-8"))


def require_manifest(home: Path | None = None) -> Manifest:
    manifest = read_manifest(home)
    if manifest is None:
        raise MissingDataError(
            f"no feature tables under {features_dir(home)}: run `loyalty features build` first"
        )
    return manifest


def to_offline_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Types the DuckDB offline store accepts: microsecond UTC timestamps, plain strings."""
    out = frame.copy()
    out["event_timestamp"] = out["event_timestamp"].astype("datetime64[us, UTC]")
    for col in out.columns:
        if out[col].dtype == object or isinstance(out[col].dtype, pd.StringDtype):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def _merge_snapshots(path: Path, fresh: pd.DataFrame, key: str) -> pd.DataFrame:
    """Replace the snapshots at the instants in ``fresh``; keep other instants already on disk."""
    if not path.is_file():
        return fresh
    old = pd.read_parquet(path)
    if list(old.columns) != list(fresh.columns):
        return fresh  # the schema changed (config or data): older snapshots are stale
    old = old[~old["event_timestamp"].isin(fresh["event_timestamp"].unique())]
    merged = pd.concat([old, fresh], ignore_index=True)
    return merged.sort_values(["event_timestamp", key], kind="stable").reset_index(drop=True)


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.parquet")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)  # readers never see a half-written file


def split_families(frame: pd.DataFrame, families: Iterable[str]) -> dict[str, pd.DataFrame]:
    """One frame per family: entity columns plus that family's ``<family>__*`` columns."""
    key = ["member_id", "event_timestamp"]
    return {
        fam: frame[key + [c for c in frame.columns if c.startswith(f"{fam}__")]] for fam in families
    }


def write_feature_tables(
    dataset: Dataset,
    as_ofs: Sequence[object] | None = None,
    entities: pd.DataFrame | None = None,
    home: Path | None = None,
    config: FeaturesConfig | None = None,
    replace: bool = False,
) -> Manifest:
    """Build member snapshots (at ``as_ofs`` or at each entity row) and product features.

    Existing snapshots at other instants are kept unless ``replace``: a point-in-time join can then
    use every instant built so far.
    """
    config = config or load_features_config()
    status = available_families(dataset)
    families = list(status.available)
    if entities is not None:
        ent = entities[["member_id", "event_timestamp"]].drop_duplicates()
        frame = build_member_features_at(dataset, ent, families=families, config=config)
    else:
        instants = list(as_ofs) if as_ofs else [dataset.latest_timestamp()]
        frame = build_member_snapshots(dataset, instants, families=families, config=config)
    frame = to_offline_frame(frame)
    manifest = Manifest(dataset=dataset.name, absent=dict(status.absent))
    written = {}
    for fam, part in split_families(frame, families).items():
        path = table_file(fam, home)
        merged = part if replace else _merge_snapshots(path, part, "member_id")
        _write(merged, path)
        manifest.tables[fam] = _describe(merged, "member", path, "member_id")
        written[fam] = merged
    write_training_tables(manifest, written, home, config)
    for fam in status.absent:
        stale = table_file(fam, home)
        if stale.exists():
            stale.unlink()  # a table that vanished from the data must not serve old values
    if dataset.products is not None:
        latest = max(pd.Timestamp(t) for t in frame["event_timestamp"].unique())
        products = to_offline_frame(build_product_features(dataset, latest, config=config))
        path = table_file(PRODUCT_FAMILY, home)
        merged = products if replace else _merge_snapshots(path, products, "product_id")
        _write(merged, path)
        manifest.tables[PRODUCT_FAMILY] = _describe(merged, "product", path, "product_id")
    else:
        manifest.absent[PRODUCT_FAMILY] = "no products table"
        table_file(PRODUCT_FAMILY, home).unlink(missing_ok=True)
    mpath = manifest_path(home)
    mpath.parent.mkdir(parents=True, exist_ok=True)
    mpath.write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def write_training_tables(
    manifest: Manifest,
    family_frames: dict[str, pd.DataFrame],
    home: Path | None = None,
    config: FeaturesConfig | None = None,
) -> None:
    """Per feature service, its member families' columns side by side in one table (recorded in
    ``manifest.training``): Feast's point-in-time join then runs once per training set instead of
    once per family (see ``definitions.training_view_name``).

    Only where the families' tables hold exactly the same (member, instant) rows, so the one
    join returns what the per-family joins return; otherwise no table, and training sets use the
    service's family views.
    """
    config = config or load_features_config()
    key = ["member_id", "event_timestamp"]
    for service, families in config.store.services.items():
        path = training_table_file(service, home)
        present = [f for f in families if f in family_frames]
        frames = [family_frames[f] for f in present]
        aligned = bool(frames) and all(
            len(f) == len(frames[0]) and f[key].equals(frames[0][key]) for f in frames[1:]
        )
        if not aligned:
            path.unlink(missing_ok=True)
            continue
        table = pd.concat(
            [frames[0][key], *(f.drop(columns=key) for f in frames)], axis=1, copy=False
        )
        _write(table, path)
        manifest.training[service] = _describe(table, "member", path, "member_id")
    known = {training_table_file(s, home) for s in manifest.training}
    pattern = training_table_file("*", home)
    for stale in pattern.parent.glob(pattern.name):
        if stale not in known:
            stale.unlink()


def _describe(frame: pd.DataFrame, entity: str, path: Path, key: str) -> FamilyTable:
    columns = {c: feast_dtype(frame[c]) for c in frame.columns if c not in (key, "event_timestamp")}
    stamps = np.sort(frame["event_timestamp"].unique())
    return FamilyTable(
        entity=entity,
        path=str(path),
        columns=columns,
        rows=len(frame),
        as_ofs=[pd.Timestamp(s).isoformat() for s in stamps[-20:]],
    )


def latest_values(path: Path | str, as_of: object, key: str = "member_id") -> pd.DataFrame:
    """Per entity, the newest row with event_timestamp <= as_of (what materialization serves)."""
    t = to_utc(as_of)
    frame = pd.read_parquet(path)
    frame = frame[frame["event_timestamp"] <= t]
    frame = frame.sort_values([key, "event_timestamp"], kind="stable")
    return frame.drop_duplicates(key, keep="last").reset_index(drop=True)
