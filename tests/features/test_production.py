"""Production profile: PostgreSQL SQL registry + Redis online store (marked ``services``).

Each test uses its own Feast project (Redis keys end with the project name) and removes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty_ml.settings import reset_settings_cache

from .fixtures import T, tiny_dataset
from .helpers import frame_as_online

pytestmark = pytest.mark.services


@pytest.fixture
def production(
    loyalty_home: Path,
    redis_service: tuple[str, int],
    postgres_service: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    from loyalty_ml.features.store import teardown_project

    project = "t" + uuid.uuid4().hex[:12]
    monkeypatch.setenv("LOYALTY_PROFILE", "production")
    monkeypatch.setenv("LOYALTY_FEAST_PROJECT", project)
    reset_settings_cache()
    yield project
    teardown_project(project=project)
    import redis

    client = redis.Redis(*redis_service)
    assert not list(client.scan_iter(match=b"*" + project.encode())), "Redis keys left behind"


def test_production_training_materialize_and_read(
    production: str, redis_service: tuple[str, int]
) -> None:
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.online import OnlineFeatureReader
    from loyalty_ml.features.store import open_store
    from loyalty_ml.features.training import training_set

    offline, unavailable = training_set(tiny_dataset(with_items=False), "churn_v1", as_of=T)
    assert unavailable == {"preferences": "no order_items, products table"}
    applied = open_store()
    assert applied.store.config.registry.registry_type == "sql"
    assert applied.store.project == production
    report = materialize(applied, T, engine="fast")
    assert report.online_store == "redis" and report.rows["member_rfm"] == 2
    ids = ["m2", "m1", "ghost"]
    features = [c for c in offline.columns if c not in ("member_id", "event_timestamp")]
    feast_reader = OnlineFeatureReader("churn_v1", backend="feast", applied=applied)
    online = feast_reader.get(ids)
    assert online == frame_as_online(offline, "member_id", ids, features)
    assert OnlineFeatureReader("churn_v1", backend="redis", applied=applied).get(ids) == online
    assert OnlineFeatureReader("churn_v1", backend="memory", applied=applied).get(ids) == online
    one = OnlineFeatureReader("churn_v1", applied=applied)  # auto -> redis on production
    assert one.backend == "redis"
    assert one.get_one("m1") == {k: v[1] for k, v in online.items()}
    # Batches of 8+ members take the vectorised decode path (nulls and unknown ids included).
    many = ids * 4
    assert one.get(many) == feast_reader.get(many)
    # A hash whose fields are stored in another order takes the per-member path, same values.
    import redis

    from loyalty_ml.features import online_format as fmt

    client = redis.Redis(*redis_service)
    (m2,) = fmt.entity_keys("member_id", ["m2"], suffix=production.encode())
    fields = list(client.hgetall(m2).items())
    client.delete(m2)
    client.hset(m2, mapping=dict(reversed(fields)))
    assert list(client.hgetall(m2)) != [f for f, _ in fields]
    assert one.get(many) == feast_reader.get(many)
    # The ids the online store holds (the serving layer's at-risk population).
    assert one.member_ids() == ["m1", "m2"]
    assert feast_reader.member_ids() == ["m1", "m2"]
    # Feast's default materialization writes the very same hashes, byte for byte.
    materialize(applied, T, engine="fast")
    keys = fmt.entity_keys("member_id", ["m1", "m2"], suffix=production.encode())
    fast_hashes = [client.hgetall(k) for k in keys]
    assert all(fast_hashes)
    client.delete(*keys)
    materialize(applied, T, engine="feast")
    assert [client.hgetall(k) for k in keys] == fast_hashes
    assert feast_reader.get(ids) == online


def test_restore_limits() -> None:
    from loyalty_ml.features import online_format as fmt
    from loyalty_ml.features.materialize import _Restore

    limits = _Restore(rdb_version=10, max_entries=3, max_value=64)
    entries = [(b"f", fmt.Padded.const(b"", 1))] * 3
    assert limits.fits(entries, 64)
    assert not limits.fits(entries, 65)  # Redis would keep such a hash as a hashtable: HSET
    assert not limits.fits(entries * 2, 9)
    assert not limits.fits([(b"n" * 65, fmt.Padded.const(b"", 1))], 9)
