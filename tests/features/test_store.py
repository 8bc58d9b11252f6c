"""Feast wiring on the local profile: config files, apply, training sets, materialization, reads.

One store is built per module (Feast's import and first DuckDB query take seconds): the tests then
check that every path returns exactly the pipeline's offline values.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from loyalty_ml.features.pipeline import build_member_features, build_member_features_at
from loyalty_ml.settings import reset_settings_cache

from .fixtures import T, tiny_dataset
from .helpers import assert_same_values, frame_as_online
from .test_pipeline import _append_future

REPO = Path(__file__).resolve().parents[2] / "features"
CHURN_FAMILIES = ["rfm", "engagement", "service", "preferences", "static", "loyalty"]


@pytest.fixture(scope="module")
def local_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    saved = {k: os.environ.get(k) for k in ("LOYALTY_HOME", "LOYALTY_PROFILE")}
    os.environ["LOYALTY_HOME"] = str(home)
    os.environ["LOYALTY_PROFILE"] = "local"
    reset_settings_cache()
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_settings_cache()


@pytest.fixture(scope="module")
def churn_set(local_home: Path):
    from loyalty_ml.features.training import training_set

    return training_set(tiny_dataset(), "churn_v1", as_of=T)


@pytest.mark.parametrize(
    ("yaml_file", "profile"),
    [("feature_store.yaml", "local"), ("feature_store.production.yaml", "production")],
)
def test_yaml_files_match_package_config(
    yaml_file: str, profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty_ml.features.store import repo_config_dict

    monkeypatch.setenv("LOYALTY_HOME", str(tmp_path))
    monkeypatch.delenv("LOYALTY_FEAST_PROJECT", raising=False)
    reset_settings_cache()
    declared = yaml.safe_load(os.path.expandvars((REPO / yaml_file).read_text()))
    assert declared == repo_config_dict(profile=profile, home=tmp_path)
    reset_settings_cache()


def test_training_set_as_of_equals_pipeline(churn_set) -> None:
    frame, unavailable = churn_set
    want = build_member_features(tiny_dataset(), T, families=CHURN_FAMILIES)
    assert_same_values(frame, want)  # one row per member known at T, pipeline column order
    assert unavailable == {}


def test_training_set_entity_rows_and_leakage(local_home: Path, churn_set, tmp_path: Path) -> None:
    from loyalty_ml.features.training import training_set

    entities = pd.DataFrame(
        {
            "member_id": ["m1", "m2", "m1"],
            "event_timestamp": ["2024-03-15T00:00:00Z", T, "2024-03-31T11:59:59+00:00"],
        }
    )
    path = tmp_path / "entities.csv"
    entities.to_csv(path, index=False)
    frame, _ = training_set(tiny_dataset(), "recs_v1", entities_file=path)
    want = build_member_features_at(
        tiny_dataset(), entities, families=["rfm", "preferences", "static", "loyalty"]
    )
    assert_same_values(frame, want)
    # Future rows appended to the raw data change nothing at the same cutoffs.
    again, _ = training_set(_append_future(tiny_dataset()), "recs_v1", entities_file=path)
    assert_same_values(again, frame)
    churn_again, _ = training_set(_append_future(tiny_dataset()), "churn_v1", as_of=T)
    assert_same_values(churn_again, churn_set[0])


def test_materialize_and_read_online_local(local_home: Path, churn_set) -> None:
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.online import OnlineFeatureReader
    from loyalty_ml.features.store import open_store

    applied = open_store()
    report = materialize(applied, T, engine="fast")
    assert report.rows["member_rfm"] == 2 and report.online_store == "sqlite"
    ids = ["m1", "m2", "nobody"]
    feast_reader = OnlineFeatureReader("churn_v1", backend="feast", applied=applied)
    online = feast_reader.get(ids)
    features = [c for c in churn_set[0].columns if c not in ("member_id", "event_timestamp")]
    # Online after materialization == offline values at the same instant.
    assert online == frame_as_online(churn_set[0], "member_id", ids, features)
    memory = OnlineFeatureReader("churn_v1", backend="memory", applied=applied)
    assert memory.get(ids) == online
    assert memory.get_one("m1") == {k: v[0] for k, v in online.items()}
    # The ids held online, from the warm copy and from Feast's SQLite tables alike.
    assert memory.member_ids() == ["m1", "m2"]
    assert feast_reader.member_ids() == ["m1", "m2"]
    # Feast's own materialization writes the same thing.
    materialize(applied, T, engine="feast")
    assert feast_reader.get(ids) == online


def test_missing_events_table_degrades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.online import OnlineFeatureReader
    from loyalty_ml.features.training import training_set

    monkeypatch.setenv("LOYALTY_HOME", str(tmp_path))
    monkeypatch.setenv("LOYALTY_PROFILE", "local")
    reset_settings_cache()
    ds = tiny_dataset(with_events=False)
    frame, unavailable = training_set(ds, "churn_v1", as_of=T)
    assert unavailable["engagement"] == "no events table"
    assert unavailable["service"] == "no events table"
    assert not [c for c in frame.columns if c.startswith(("engagement__", "service__"))]
    assert "rfm__orders_30d" in frame.columns
    from loyalty_ml.features.store import open_store

    applied = open_store()
    views = {v.name for v in applied.store.list_feature_views()}
    assert "member_engagement" not in views and "member_rfm" in views
    service = applied.store.get_feature_service("churn_v1")
    assert service.tags["unavailable"] == "engagement,loyalty,service" or service.tags[
        "unavailable"
    ].startswith("engagement")
    assert service.tags["unavailable.engagement"] == "no events table"
    materialize(applied, T)
    got = OnlineFeatureReader("churn_v1", backend="memory", applied=applied).get_one("m1")
    assert got["rfm__orders_30d"] == 2
    reset_settings_cache()


def test_join_labels_equals_a_left_merge() -> None:
    from loyalty_ml.features.training import join_labels

    frame = pd.DataFrame({"member_id": ["m2", "m1", "m3", "m1"], "x": [1.0, 2.0, None, 4.0]})
    labels = pd.DataFrame({"member_id": ["m1", "m2", "m9"], "churned": [True, False, True]})
    got = join_labels(frame, labels)
    want = frame.merge(labels, on="member_id", how="left")
    assert_same_values(got, want)
    assert list(frame.columns) == ["member_id", "x"]  # the input is left alone
    with pytest.raises(ValueError, match="more than one row"):
        join_labels(frame, pd.concat([labels, labels]))


def test_training_view_equals_the_family_views(local_home: Path, churn_set) -> None:
    """The service's training view (one point-in-time join) returns what Feast's per-family
    joins of the feature service return: entity rows before, between, at and after snapshots."""
    from loyalty_ml.features.store import open_store
    from loyalty_ml.features.tables import write_feature_tables
    from loyalty_ml.features.training import historical_frame

    write_feature_tables(tiny_dataset(), as_ofs=["2024-03-01T00:00:00Z", "2024-03-15T00:00:00Z", T])
    applied = open_store()
    assert "churn_v1" in applied.objects.training_views
    stamps = ["2024-03-10", "2024-03-20T06:00:00Z", T, "2023-01-01", T, "2024-03-15T00:00:00Z"]
    entities = pd.DataFrame(
        {
            "member_id": ["m1", "m2", "m1", "m2", "ghost", "m1"],
            "event_timestamp": pd.to_datetime(stamps, utc=True, format="ISO8601"),
        }
    )
    via_view = historical_frame(applied, "churn_v1", entities)
    via_families = historical_frame(applied, "churn_v1", entities, family_views=True)
    assert_same_values(via_view, via_families)
    assert via_view["member_id"].tolist() == entities["member_id"].tolist()
    assert via_view["rfm__orders_lifetime"].notna().sum() >= 3  # real values, not all null


def test_no_training_table_when_family_rows_differ(tmp_path: Path) -> None:
    from loyalty_ml.features.config import FeaturesConfig, StoreConfig
    from loyalty_ml.features.tables import Manifest, training_table_file, write_training_tables

    config = FeaturesConfig(store=StoreConfig(services={"s": ["rfm", "static"]}))
    t = pd.Timestamp(T)
    rfm = pd.DataFrame({"member_id": ["a", "b"], "event_timestamp": [t, t], "rfm__x": [1.0, 2.0]})
    static = pd.DataFrame({"member_id": ["a", "b"], "event_timestamp": [t, t], "static__y": [3, 4]})
    manifest = Manifest()
    write_training_tables(manifest, {"rfm": rfm, "static": static}, tmp_path, config)
    table = pd.read_parquet(training_table_file("s", tmp_path))
    assert list(table.columns) == ["member_id", "event_timestamp", "rfm__x", "static__y"]
    assert manifest.training["s"].columns == {"rfm__x": "Float64", "static__y": "Int64"}
    # One family holds another instant (e.g. rebuilt alone): no side-by-side table.
    shifted = static.assign(event_timestamp=[t, t - pd.Timedelta(days=1)])
    manifest = Manifest()
    write_training_tables(manifest, {"rfm": rfm, "static": shifted}, tmp_path, config)
    assert manifest.training == {}
    assert not training_table_file("s", tmp_path).exists()
