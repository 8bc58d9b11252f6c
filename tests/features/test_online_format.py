"""The bulk encoders emit exactly the bytes Feast's own code produces."""

from __future__ import annotations

import numpy as np
import pytest

from loyalty_ml.features import online_format as fmt


def test_entity_keys_match_feast() -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    ids = ["m1", "", "ü-ñ-42", "x" * 300]
    ours = fmt.entity_keys("member_id", ids, suffix=b"proj")
    for i, got in zip(ids, ours, strict=True):
        key = EntityKey(join_keys=["member_id"], entity_values=[Value(string_val=i)])
        assert got == serialize_entity_key(key, entity_key_serialization_version=3) + b"proj"
        assert fmt.entity_key("member_id", i) + b"proj" == got


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("Float64", np.array([0.0, -0.0, 1.5, np.nan, 1e300, -3.25, 1 / 3])),
        ("Int64", np.array([0, 1, -5, 2**40, 7, 0])),
        ("String", np.array(["bags", None, "", "ü", "bags", float("nan")], dtype=object)),
    ],
)
def test_values_match_feast(kind: str, values: np.ndarray) -> None:
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    vtype = {"Float64": ValueType.DOUBLE, "Int64": ValueType.INT64, "String": ValueType.STRING}[
        kind
    ]
    clean = [None if (isinstance(v, float) and np.isnan(v)) else v for v in values.tolist()]
    want = [p.SerializeToString() for p in python_values_to_proto_values(clean, vtype)]
    assert fmt.encode_values(values, kind).items() == want


def test_resp_commands_are_well_formed() -> None:
    from loyalty_ml.features.materialize import _hset_commands

    values = fmt.encode_values(np.array([1.0, np.nan]), "Float64")
    buf, ends = _hset_commands([b"k1", b"key-2"], [(b"f", values)])
    raw = buf.tobytes()
    first = raw[: ends[0]]
    assert (
        first
        == b"*4\r\n$4\r\nHSET\r\n$2\r\nk1\r\n$1\r\nf\r\n$9\r\n)"
        + np.float64(1.0).tobytes()
        + b"\r\n"
    )
    assert raw[ends[0] :] == b"*4\r\n$4\r\nHSET\r\n$5\r\nkey-2\r\n$1\r\nf\r\n$0\r\n\r\n"


def test_ragged_take_and_timestamps() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    r = fmt.Ragged.from_list([b"a", b"", b"ccc"])
    assert r.take(np.array([2, 0, 1, 2])).items() == [b"ccc", b"a", b"", b"ccc"]
    t = np.array([1_700_000_000_123_456_789, 0], dtype=np.int64)
    want = [
        Timestamp(seconds=1_700_000_000, nanos=123_456_789).SerializeToString(),
        Timestamp().SerializeToString(),
    ]
    assert fmt.timestamp_bytes(t).items() == want


def test_crc64_is_redis_crc64() -> None:
    # Redis' own test vector (src/crc64.c): crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca.
    assert fmt.crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert fmt.crc64(b"") == 0
    # Rows of different lengths in one lockstep pass equal the one-at-a-time value.
    rng = np.random.default_rng(3)
    rows = [rng.bytes(int(k)) for k in (0, 1, 7, 8, 9, 100, 333)]
    width = -(-max(len(r) for r in rows) // 8) * 8
    mat = np.array([bytes(width - len(r)) + r for r in rows], dtype=f"S{width}")
    got = fmt.crc64_right_aligned(mat.view(np.uint8).reshape(len(rows), width))
    assert got.tolist() == [fmt.crc64(r) for r in rows]
    assert fmt.crc64(b"x" * 9) != fmt.crc64(b"x" * 8 + b"y")


def test_small_unique_equals_numpy_unique() -> None:
    rng = np.random.default_rng(5)
    for arr in (
        rng.integers(-3, 40, 500),
        rng.integers(0, 2**50, 300),  # wide range: falls back to sorting
        np.array([7]),
        np.array([], dtype=np.int64),
    ):
        uniq, inverse = fmt._small_unique(arr)
        want_uniq, want_inverse = np.unique(arr, return_inverse=True)
        assert uniq.tolist() == want_uniq.tolist()
        assert inverse.tolist() == want_inverse.ravel().tolist()


@pytest.mark.services
def test_restore_builds_the_hash_hset_builds(redis_service: tuple[str, int]) -> None:
    """RESTORE of our listpack payload == HSET of the same fields, byte for byte (HGETALL)."""
    import socket
    import uuid

    import redis

    client = redis.Redis(*redis_service)
    columns = [
        ("Float64", np.array([1.5, np.nan, -0.0, 1e300, 2.0])),
        ("Int64", np.array([0, -5, 2**40, 7, 7])),
        # "x" * 62 serializes to 64 bytes: the longest value a listpack hash keeps (default).
        ("String", np.array(["a", None, "x" * 62, "ü" * 20, ""], dtype=object)),
    ]
    names = [b"f1", b"\x00\xff\x10\x7f", b"_ts:member_rfm"]
    tag = uuid.uuid4().hex.encode()
    keys = [b"test-restore:" + tag + b":%d" % i for i in range(5)]
    version = int.from_bytes(client.dump(_probe(client, tag))[-10:-8], "little")
    entries = [(n, fmt.listpack_values(v, k)[0]) for n, (k, v) in zip(names, columns, strict=True)]
    assert fmt.listpack_values(columns[2][1], "String")[1] == 64
    assert fmt.listpack_values(np.array(["x" * 63], dtype=object), "String")[1] == 65
    buf, _ = fmt.restore_commands(keys, entries, version)
    with socket.create_connection(redis_service) as sock:
        sock.sendall(buf.tobytes())
        replies = b""
        while replies.count(b"\r\n") < len(keys):
            replies += sock.recv(4096)
    try:
        assert replies == b"+OK\r\n" * len(keys)
        for i, key in enumerate(keys):
            want = {
                n: fmt.encode_values(v, k).items()[i]
                for n, (k, v) in zip(names, columns, strict=True)
            }
            hset_key = key + b":hset"
            client.hset(hset_key, mapping=want)
            assert client.hgetall(key) == client.hgetall(hset_key) == want
            assert client.object("encoding", key) == client.object("encoding", hset_key)
    finally:
        client.delete(*keys, *(k + b":hset" for k in keys), b"test-restore-probe:" + tag)


def _probe(client: object, tag: bytes) -> bytes:
    key = b"test-restore-probe:" + tag
    client.hset(key, b"f", b"v")  # type: ignore[attr-defined]
    return key
