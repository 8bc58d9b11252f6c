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
