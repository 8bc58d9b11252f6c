"""The Feast-free online reader (``layout=``) reads exactly what Feast reads, in both profiles.

``layout_from_manifest`` (feature-table manifest + config, no Feast) must equal what Feast's
registry holds after ``apply``, and a reader built on it must return Feast's own
``get_online_features`` dictionary — values, nulls, unknown members, order — and never import
Feast (the serving workers' start depends on that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty_ml.settings import reset_settings_cache

from .fixtures import T, tiny_dataset

SERVICES = ("churn_v1", "products_v1")


def _assert_reads_like_feast(applied: object, backend: str) -> None:
    from loyalty_ml.features.online import OnlineFeatureReader
    from loyalty_ml.features.online_layout import layout_from_applied, layout_from_manifest

    for service in SERVICES:
        layout = layout_from_manifest(service)
        assert layout == layout_from_applied(applied, service), service
        feast_reader = OnlineFeatureReader(service, backend="feast", applied=applied)
        lean = OnlineFeatureReader(service, backend=backend, layout=layout)
        assert lean.store is None and lean.backend == backend
        ids = feast_reader.member_ids()
        assert ids and lean.member_ids() == ids
        asked = [*ids, "nobody", ids[0]] * 3  # unknowns, repeats, and 8+ ids (bulk decode)
        want = feast_reader.get(asked)
        assert lean.get(asked) == want, service
        assert lean.get(asked[:1]) == feast_reader.get(asked[:1])
        assert lean.feature_names == feast_reader.feature_names
        assert lean.join_key == feast_reader.join_key
    with pytest.raises(Exception, match="backend feast needs"):
        OnlineFeatureReader("churn_v1", backend="feast", layout=layout_from_manifest("churn_v1"))


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.store import open_store
    from loyalty_ml.features.training import training_set

    monkeypatch.setenv("LOYALTY_HOME", str(tmp_path))
    monkeypatch.setenv("LOYALTY_PROFILE", "local")
    monkeypatch.delenv("LOYALTY_FEAST_PROJECT", raising=False)
    reset_settings_cache()
    training_set(tiny_dataset(), "churn_v1", as_of=T)
    applied = open_store()
    materialize(applied, T)
    yield applied
    reset_settings_cache()


def test_layout_reader_equals_feast_local(local_store: object, tmp_path: Path) -> None:
    _assert_reads_like_feast(local_store, "memory")
    # A serving worker's reader: built and read without importing Feast.
    code = (
        "import sys, json\n"
        "from loyalty_ml.features.online import OnlineFeatureReader\n"
        "from loyalty_ml.features.online_layout import layout_from_manifest\n"
        "r = OnlineFeatureReader('churn_v1', layout=layout_from_manifest('churn_v1'))\n"
        "got = r.get(['m1', 'nobody'])\n"
        "print(json.dumps({'feast': 'feast' in sys.modules, 'n': len(got)}))\n"
    )
    env = {**os.environ, "LOYALTY_HOME": str(tmp_path), "LOYALTY_PROFILE": "local"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["n"] > 1 and result["feast"] is False


@pytest.mark.services
def test_layout_reader_equals_feast_production(
    loyalty_home: Path,
    redis_service: tuple[str, int],
    postgres_service: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.store import open_store, teardown_project
    from loyalty_ml.features.training import training_set

    project = "t" + uuid.uuid4().hex[:12]
    monkeypatch.setenv("LOYALTY_PROFILE", "production")
    monkeypatch.setenv("LOYALTY_FEAST_PROJECT", project)
    reset_settings_cache()
    try:
        training_set(tiny_dataset(), "churn_v1", as_of=T)
        applied = open_store()
        materialize(applied, T)
        _assert_reads_like_feast(applied, "redis")
    finally:
        teardown_project(project=project)
        reset_settings_cache()


def test_value_decoding_and_field_hash_equal_feasts() -> None:
    from feast.infra.online_stores.helpers import _mmh3
    from feast.protos.feast.types.Value_pb2 import Value

    from loyalty_ml.features import online_format as fmt

    values = [Value(int64_val=v) for v in (0, 1, -1, 300, 2**62, -(2**63), 2**63 - 1)] + [
        Value(int32_val=-7),
        Value(string_val=""),
        Value(string_val="é" * 200),  # a two-byte length
        Value(bool_val=True),
        Value(bool_val=False),
        Value(double_val=-1.5),
        Value(float_val=2.5),
        Value(unix_timestamp_val=5),  # not a feature kind here: decoded by Feast's class
    ]
    for value in values:
        which = value.WhichOneof("val")
        assert fmt.decode_value(value.SerializeToString()) == getattr(value, which), value
    assert fmt.decode_value(b"") is None
    for name in ("member_rfm:rfm__orders_30d", "x", "abcd", "abcde", "é:ü"):
        assert fmt.field_hash(name) == _mmh3(name), name
