"""Point-in-time training frames through Feast's ``get_historical_features`` (labels not included).

The snapshots needed are built first at exactly the requested instants, so Feast's as-of join
finds each entity row's own snapshot; everything Feast returns is therefore what the pipeline
computed from data at or before that row's timestamp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.contract.io import Dataset
from loyalty_ml.errors import MissingDataError
from loyalty_ml.features.store import AppliedStore, apply_repo
from loyalty_ml.features.tables import write_feature_tables
from loyalty_ml.timeutil import to_utc, utc_series

ROW = "__row"


def read_entities(path: Path | str) -> pd.DataFrame:
    """An entity file: member_id and event_timestamp columns (CSV or Parquet)."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"entity file not found: {path}")
    frame = (
        pd.read_parquet(path)
        if path.suffix == ".parquet"
        else pd.read_csv(path, dtype={"member_id": str})
    )
    missing = [c for c in ("member_id", "event_timestamp") if c not in frame.columns]
    if missing:
        raise MissingDataError(f"{path.name}: missing column(s) {', '.join(missing)}")
    out = pd.DataFrame(
        {
            "member_id": frame["member_id"].astype(str),
            "event_timestamp": utc_series(frame["event_timestamp"]),
        }
    )
    if out["event_timestamp"].isna().any():
        raise MissingDataError(f"{path.name}: event_timestamp has missing or unparseable values")
    return out


def join_labels(frame: pd.DataFrame, labels: pd.DataFrame, key: str = "member_id") -> pd.DataFrame:
    """``frame`` plus the other columns of ``labels`` (one row per ``key``) matched on ``key``;
    rows without a label get missing values. Same rows, same order as ``frame``.

    One hash lookup of the keys and the label columns appended, where ``merge`` also rebuilds
    every feature column: 1M rows x 89 features 0.16-0.25 s vs 0.35-0.46 s for ``merge`` in the
    same run (``benchmarks/results/features.md``).
    """
    index = pd.Index(labels[key])
    if not index.is_unique:
        raise ValueError(f"labels have more than one row per {key}")
    rows = index.get_indexer(frame[key])
    fill = bool((rows < 0).any())
    added = {
        col: labels[col].array.take(rows, allow_fill=fill) for col in labels.columns if col != key
    }
    return pd.concat([frame, pd.DataFrame(added, index=frame.index)], axis=1, copy=False)


def members_at(dataset: Dataset, as_of: object) -> pd.DataFrame:
    """One entity row per member known at ``as_of``."""
    t = to_utc(as_of)
    members = dataset.members[dataset.members["joined_at"] <= t]
    return pd.DataFrame(
        {
            "member_id": members["member_id"].astype(str).to_numpy(),
            "event_timestamp": pd.Series([t] * len(members), dtype="datetime64[ns, UTC]"),
        }
    )


def training_set(
    dataset: Dataset,
    service: str,
    as_of: object | None = None,
    entities: pd.DataFrame | None = None,
    entities_file: Path | str | None = None,
    home: Path | None = None,
    applied: AppliedStore | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """(frame, unavailable families): member_id, event_timestamp, then the service's features."""
    if entities_file is not None:
        entities = read_entities(entities_file)
    if entities is None:
        if as_of is None:
            raise MissingDataError("training set needs --as-of or an entity file")
        entities = members_at(dataset, as_of)
        write_feature_tables(dataset, as_ofs=[as_of], home=home)
    else:
        write_feature_tables(dataset, entities=entities, home=home)
    applied = applied or apply_repo(home=home)
    return historical_frame(applied, service, entities), applied.unavailable(service)


def historical_frame(
    applied: AppliedStore, service: str, entities: pd.DataFrame, family_views: bool = False
) -> pd.DataFrame:
    """``member_id``, ``event_timestamp``, then the service's features as of each entity row,
    through Feast's ``get_historical_features``; rows in the entities' order.

    The service's training view (its families side by side, ``tables.write_training_tables``)
    when it exists: one point-in-time join instead of one per family view.
    ``family_views=True`` asks Feast for the feature service itself (one join per family).
    """
    store = applied.store
    try:
        feature_service = store.get_feature_service(service)
    except Exception as exc:  # Feast's FeatureServiceNotFoundException
        raise MissingDataError(
            f"feature service {service} has no available features "
            f"({applied.unavailable(service) or 'unknown service'})"
        ) from exc
    entity_df = entities[["member_id", "event_timestamp"]].reset_index(drop=True).copy()
    entity_df[ROW] = np.arange(len(entity_df))
    entity_df["event_timestamp"] = entity_df["event_timestamp"].astype("datetime64[us, UTC]")
    # The pipeline's column order (the registry may hand features back sorted by name).
    views = applied.objects.views
    ours = applied.objects.services.get(service, feature_service)
    ordered = [f.name for p in ours.feature_view_projections for f in views[p.name].features]
    training_view = applied.objects.training_views.get(service)
    refs: Any = feature_service
    if (
        not family_views
        and training_view is not None
        and [f.name for f in training_view.features] == ordered
    ):
        refs = [f"{training_view.name}:{name}" for name in ordered]
    frame = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    rows = frame[ROW].to_numpy()
    frame = frame[["member_id", "event_timestamp", *ordered]]
    if not (rows[1:] > rows[:-1]).all():
        frame = frame.take(np.argsort(rows, kind="stable"))
    return frame.reset_index(drop=True)
