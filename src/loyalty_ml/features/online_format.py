"""Feast's online-store byte format, produced in bulk with NumPy.

Feast stores each feature value as a serialized ``feast.types.Value`` protobuf and keys entities by
``serialize_entity_key`` (version 3). Building those protobufs one Python object at a time is
what makes Feast's default materialization slow (431 s for 1M members into SQLite here); the
encoders below emit the identical bytes column-wise. ``tests/features/test_online.py`` checks them
byte for byte against Feast's own functions.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

DOUBLE_TAG = 0x29  # Value.double_val: field 5, wire type 1 (64-bit)
STRING_TYPE = 2  # ValueType.STRING in the entity-key encoding


@dataclass
class Ragged:
    """Variable-length byte strings, concatenated: ``flat`` plus one length per row."""

    flat: np.ndarray  # uint8
    lengths: np.ndarray  # int64

    @classmethod
    def from_matrix(cls, mat: np.ndarray, lengths: np.ndarray) -> Ragged:
        keep = np.arange(mat.shape[1])[None, :] < lengths[:, None]
        return cls(mat[keep], lengths.astype(np.int64))

    @classmethod
    def from_list(cls, items: Sequence[bytes]) -> Ragged:
        lengths = np.fromiter((len(b) for b in items), dtype=np.int64, count=len(items))
        return cls(np.frombuffer(b"".join(items), dtype=np.uint8), lengths)

    def take(self, rows: np.ndarray) -> Ragged:
        starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        lens = self.lengths[rows]
        idx = np.repeat(starts[rows] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        idx += np.arange(int(lens.sum()))
        return Ragged(self.flat[idx], lens)

    def items(self) -> list[bytes]:
        raw = self.flat.tobytes()
        ends = np.cumsum(self.lengths)
        starts = ends - self.lengths
        return [raw[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def entity_key(join_key: str, value: str) -> bytes:
    """``serialize_entity_key`` v3 for one string-valued join key."""
    jk = join_key.encode("utf-8")
    raw = value.encode("utf-8")
    return (
        struct.pack(f"<III{len(jk)}sII", 1, STRING_TYPE, len(jk), jk, STRING_TYPE, len(raw)) + raw
    )


def entity_keys(join_key: str, values: Sequence[str], suffix: bytes = b"") -> list[bytes]:
    jk = join_key.encode("utf-8")
    head = struct.pack(f"<III{len(jk)}sI", 1, STRING_TYPE, len(jk), jk, STRING_TYPE)
    out = []
    for v in values:
        raw = v.encode("utf-8")
        out.append(head + struct.pack("<I", len(raw)) + raw + suffix)
    return out


def field_hash(name: str) -> bytes:
    """The Redis hash field of ``"view:feature"``: Feast's ``_mmh3`` (murmur3-32, little endian),
    without importing Feast."""
    import mmh3  # Feast's own dependency for this very hash

    return struct.pack("<I", mmh3.hash(name, signed=False))


_STRING_TAG, _INT64_TAG, _INT32_TAG, _BOOL_TAG = 0x12, 0x20, 0x18, 0x38


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def decode_value(raw: bytes) -> object:
    """One serialized ``feast.types.Value`` as Feast's ``to_dict()`` gives it, for the scalar
    kinds features are stored as (double, int64, int32, bool, string); other kinds go through
    Feast's protobuf class (imported only then)."""
    if not raw:
        return None
    tag = raw[0]
    try:
        if tag == DOUBLE_TAG and len(raw) == 9:
            return struct.unpack_from("<d", raw, 1)[0]
        if tag in (_INT64_TAG, _INT32_TAG):
            value, end = _varint(raw, 1)
            if end == len(raw):
                return value - (1 << 64) if value >= 1 << 63 else value
        elif tag == _BOOL_TAG and len(raw) == 2:
            return bool(raw[1])
        elif tag == _STRING_TAG:
            length, start = _varint(raw, 1)
            if start + length == len(raw):
                return raw[start:].decode("utf-8")
    except IndexError:  # truncated: let protobuf say what it is
        pass
    from feast.protos.feast.types.Value_pb2 import Value

    val = Value.FromString(raw)
    which = val.WhichOneof("val")
    return None if which is None else getattr(val, which)


def _proto_bytes(kind: str, value: object) -> bytes:
    from feast.protos.feast.types.Value_pb2 import Value

    if value is None:
        return b""
    if kind == "Int64":
        return Value(int64_val=int(value)).SerializeToString()
    if kind == "String":
        return Value(string_val=str(value)).SerializeToString()
    if kind == "Float64":
        return Value(double_val=float(value)).SerializeToString()
    raise ValueError(f"unsupported feature type {kind}")


def encode_values(values: np.ndarray, kind: str) -> Ragged:
    """Serialized ``Value`` protos of one column; missing values become ``b""`` (Feast's null)."""
    if kind == "Float64":
        arr = np.asarray(values, dtype=np.float64)
        n = len(arr)
        mat = np.empty((n, 9), dtype=np.uint8)
        mat[:, 0] = DOUBLE_TAG
        mat[:, 1:] = np.ascontiguousarray(arr).astype("<f8").view(np.uint8).reshape(n, 8)
        return Ragged.from_matrix(mat, np.where(np.isnan(arr), 0, 9))
    items, inverse = encode_table(values, kind)
    return Ragged.from_list(items).take(inverse)


def encode_table(values: np.ndarray, kind: str) -> tuple[list[bytes], np.ndarray]:
    """(distinct serialized values, row -> index) of an Int64 or String column.

    Integers and strings have few distinct values: each is encoded once through protobuf itself.
    """
    n = len(values)
    if kind == "Int64":
        arr = np.asarray(values)
        if arr.dtype == object or np.issubdtype(arr.dtype, np.floating):
            null = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in arr])
            arr = np.where(null, 0, arr).astype(np.int64)
        else:
            null = np.zeros(n, dtype=bool)
            arr = arr.astype(np.int64)
        uniq, inverse = _small_unique(arr)
        items = [_proto_bytes("Int64", int(u)) for u in uniq] + [b""]
        return items, np.where(null, len(uniq), inverse)
    if kind != "String":
        raise ValueError(f"unsupported feature type {kind}")
    objs = np.asarray(values, dtype=object)
    null = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in objs], dtype=bool)
    inverse, uniq = pd.factorize(np.where(null, "", objs))
    items = [_proto_bytes("String", u) for u in uniq] + [b""]
    return items, np.where(null, len(uniq), inverse)


def _small_unique(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(arr, return_inverse=True)`` without sorting when the values span a small range
    (counts, days, tiers: the usual integer feature)."""
    if len(arr) == 0:
        return arr[:0], np.zeros(0, np.int64)
    lo, hi = int(arr.min()), int(arr.max())
    if hi - lo > 4 * len(arr) + 4096:
        uniq, inverse = np.unique(arr, return_inverse=True)
        return uniq, inverse.ravel()
    shifted = arr - lo
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[shifted] = True
    offsets = np.flatnonzero(present)
    lut = np.zeros(hi - lo + 1, dtype=np.int64)
    lut[offsets] = np.arange(len(offsets))
    return offsets + lo, lut[shifted]


def timestamp_table(t_ns: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """(distinct google.protobuf.Timestamp bytes, row -> index) of instants in ns."""
    from google.protobuf.timestamp_pb2 import Timestamp

    uniq, inverse = np.unique(np.asarray(t_ns, np.int64), return_inverse=True)
    items = []
    for v in uniq.tolist():
        ts = Timestamp(seconds=v // 1_000_000_000, nanos=v % 1_000_000_000)
        items.append(ts.SerializeToString())
    return items, inverse.ravel()


def timestamp_bytes(t_ns: np.ndarray) -> Ragged:
    """google.protobuf.Timestamp of each instant (Feast's ``_ts:<view>`` hash field)."""
    items, inverse = timestamp_table(t_ns)
    return Ragged.from_list(items).take(inverse)


def interleave(columns: Sequence[Ragged]) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise concatenation: row i = columns[0][i] + columns[1][i] + ...; returns bytes, row ends."""
    lens = np.stack([c.lengths for c in columns], axis=1)
    row_len = lens.sum(axis=1)
    row_end = np.cumsum(row_len)
    buf = np.empty(int(row_end[-1]) if len(row_end) else 0, dtype=np.uint8)
    # Destination offset of each (row, column) piece.
    dest = (row_end - row_len)[:, None] + np.concatenate(
        [np.zeros((len(lens), 1), np.int64), np.cumsum(lens, axis=1)[:, :-1]], axis=1
    )
    for j, col in enumerate(columns):
        src_start = np.concatenate([[0], np.cumsum(col.lengths)[:-1]])
        idx = np.repeat(dest[:, j] - src_start, col.lengths) + np.arange(len(col.flat))
        buf[idx] = col.flat
    return buf, row_end


def const(piece: bytes, n: int) -> Ragged:
    return Ragged(np.tile(np.frombuffer(piece, np.uint8), n), np.full(n, len(piece), np.int64))


def bulk_parts(values: Ragged) -> list[Ragged]:
    """The pieces of RESP bulk strings ``$<len>\r\n<bytes>\r\n``, to interleave with others."""
    n = len(values.lengths)
    lengths = np.unique(values.lengths)
    head_items = Ragged.from_list([f"${int(k)}\r\n".encode() for k in lengths])
    lut = np.zeros(int(lengths.max()) + 1 if n else 1, dtype=np.int64)
    lut[lengths] = np.arange(len(lengths))
    return [head_items.take(lut[values.lengths]), values, const(b"\r\n", n)]


def bulk_string(values: Ragged) -> Ragged:
    """RESP bulk strings ``$<len>\r\n<bytes>\r\n`` of each row."""
    buf, ends = interleave(bulk_parts(values))
    return Ragged(buf, np.diff(np.concatenate([[0], ends])).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Redis DUMP payloads: a whole entity hash as one RESTORE. Redis parses ~190 HSET arguments and
# inserts them one by one into the hash's listpack (~75 us of server CPU per member here); the
# RESTORE of the ready listpack costs ~7 us. The hash it creates holds exactly the field/value
# bytes HSET would write. Rows are built as padded byte matrices and compacted with one boolean
# mask (no per-byte index arrays).

RDB_TYPE_HASH_LISTPACK = 16
_CRC64_POLY = 0x95AC9329AC4BC9B5  # Jones polynomial, reflected: Redis' crc64


@dataclass
class Padded:
    """One variable-length byte string per row, left-aligned in a zero-padded matrix."""

    mat: np.ndarray  # (n, width) uint8
    lengths: np.ndarray  # (n,) int64
    right: bool = False  # the bytes are right-aligned instead

    def keep(self) -> np.ndarray:
        cols = np.arange(self.mat.shape[1])[None, :]
        if self.right:
            return cols >= (self.mat.shape[1] - self.lengths)[:, None]
        return cols < self.lengths[:, None]

    @classmethod
    def from_list(cls, items: Sequence[bytes]) -> Padded:
        lengths = np.fromiter((len(b) for b in items), dtype=np.int64, count=len(items))
        width = int(lengths.max()) if len(items) else 0
        if width == 0:
            return cls(np.zeros((len(items), 0), np.uint8), lengths)
        mat = np.array(items, dtype=f"S{width}").view(np.uint8).reshape(len(items), width)
        return cls(mat, lengths)

    @classmethod
    def const(cls, piece: bytes, n: int) -> Padded:
        mat = np.broadcast_to(np.frombuffer(piece, np.uint8), (n, len(piece)))
        return cls(mat, np.full(n, len(piece), np.int64))

    def take(self, rows: np.ndarray) -> Padded:
        return Padded(self.mat[rows], self.lengths[rows])


def compact(parts: Sequence[Padded]) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise concatenation of padded pieces: (bytes, row ends)."""
    mat = np.concatenate([p.mat for p in parts], axis=1)
    keep = np.concatenate([p.keep() for p in parts], axis=1)
    row_len = np.sum([p.lengths for p in parts], axis=0)
    return mat[keep], np.cumsum(row_len)


def _crc64_tables() -> np.ndarray:
    """Slicing-by-8 tables: row k = crc of byte b followed by k zero bytes."""
    one = np.uint64(1)
    t8 = np.arange(256, dtype=np.uint64)
    for _ in range(8):
        t8 = np.where(t8 & one, (t8 >> one) ^ np.uint64(_CRC64_POLY), t8 >> one)
    tables = [t8]
    for _ in range(7):
        prev = tables[-1]
        tables.append(t8[(prev & np.uint64(0xFF)).astype(np.int64)] ^ (prev >> np.uint64(8)))
    return np.stack(tables)


_CRC_TABLES: list[np.ndarray] = []


def crc64_right_aligned(rows: np.ndarray) -> np.ndarray:
    """Redis' crc64 (init 0) of each row of an (n, 8k) matrix whose bytes are left-padded with
    zeros: from state 0 leading zero bytes leave the CRC at 0, so all rows run in lockstep."""
    if not _CRC_TABLES:
        _CRC_TABLES.append(_crc64_tables())
    tables = _CRC_TABLES[0]
    n, width = rows.shape
    words = np.ascontiguousarray(np.ascontiguousarray(rows).view("<u8").T)
    crc = np.zeros(n, dtype=np.uint64)
    x = np.empty(n, dtype=np.uint64)
    looked = np.empty(n, dtype=np.uint64)
    x_bytes = x.view(np.uint8).reshape(n, 8)
    for j in range(width // 8):
        np.bitwise_xor(crc, words[j], out=x)
        np.take(tables[7], x_bytes[:, 0], out=crc)
        for k in range(1, 8):
            np.take(tables[7 - k], x_bytes[:, k], out=looked)
            np.bitwise_xor(crc, looked, out=crc)
    return crc


def crc64(data: bytes) -> int:
    """Redis' crc64 of one byte string."""
    pad = (-len(data)) % 8
    row = np.frombuffer(bytes(pad) + data, np.uint8).reshape(1, -1)
    return int(crc64_right_aligned(row)[0])


def _lp_entry(raw: bytes) -> bytes:
    """One listpack string entry: encoding header, bytes, back-length."""
    n = len(raw)
    if n < 64:
        head = bytes([0x80 | n])
    elif n < 4096:
        head = bytes([0xE0 | (n >> 8), n & 0xFF])
    else:
        raise ValueError("listpack strings over 4095 bytes are not produced here")
    size = len(head) + n
    back = bytes([size]) if size <= 127 else bytes([size >> 7, (size & 127) | 128])
    return head + raw + back


def _by_length(lengths: np.ndarray, make: object) -> Padded:
    """Per-row pieces that depend only on each row's length, built once per distinct length."""
    uniq, inverse = np.unique(lengths, return_inverse=True)
    return Padded.from_list([make(int(k)) for k in uniq]).take(inverse.ravel())  # type: ignore[operator]


def listpack_values(values: np.ndarray, kind: str) -> tuple[Padded, int]:
    """(listpack entries of one column's serialized ``Value`` protos, longest serialized value)."""
    if kind == "Float64":
        arr = np.asarray(values, dtype=np.float64)
        n = len(arr)
        mat = np.empty((n, 11), dtype=np.uint8)
        mat[:, 0] = 0x80 | 9
        mat[:, 1] = DOUBLE_TAG
        mat[:, 2:10] = np.ascontiguousarray(arr).astype("<f8").view(np.uint8).reshape(n, 8)
        mat[:, 10] = 10
        null = np.isnan(arr)
        mat[null, 0], mat[null, 1] = 0x80, 1  # the empty string b""
        return Padded(mat, np.where(null, 2, 11)), 9 if n and not null.all() else 0
    items, inverse = encode_table(values, kind)
    return _table_entries(items, inverse)


def listpack_timestamps(t_ns: np.ndarray) -> tuple[Padded, int]:
    return _table_entries(*timestamp_table(t_ns))


def _table_entries(items: list[bytes], inverse: np.ndarray) -> tuple[Padded, int]:
    used = np.unique(inverse)
    longest = max((len(items[i]) for i in used.tolist()), default=0)
    return Padded.from_list([_lp_entry(b) for b in items]).take(inverse), longest


def _rdb_length(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    return b"\x80" + struct.pack(">I", n)


def restore_commands(
    keys: Sequence[bytes], fields: list[tuple[bytes, Padded]], rdb_version: int
) -> tuple[np.ndarray, np.ndarray]:
    """RESP ``RESTORE key 0 <payload> REPLACE`` per row: a listpack-encoded hash of ``fields``
    (name, listpack entries from :func:`listpack_values`); returns bytes and row ends."""
    n = len(keys)
    entries: list[Padded] = []
    for name, values in fields:
        entries += [Padded.const(_lp_entry(name), n), values]
    body_len = np.sum([p.lengths for p in entries], axis=0) if entries else np.zeros(n, np.int64)
    lp_len = body_len + 7  # 6-byte header + entries + end byte
    head = np.empty((n, 6), dtype=np.uint8)
    head[:, :4] = lp_len.astype("<u4").view(np.uint8).reshape(n, 4)
    head[:, 4:] = np.frombuffer(struct.pack("<H", min(2 * len(fields), 65535)), np.uint8)
    rdb_len = _by_length(lp_len, _rdb_length)
    size = 1 + rdb_len.lengths + lp_len + 2  # type byte, length, listpack, RDB version
    width = -(-int(size.max()) // 8) * 8
    pad = Padded(np.zeros((n, width - int(size.min())), np.uint8), width - size)
    rows, _ = compact(
        [
            pad,
            Padded.const(bytes([RDB_TYPE_HASH_LISTPACK]), n),
            rdb_len,
            Padded(head, np.full(n, 6, np.int64)),
            *entries,
            Padded.const(b"\xff" + struct.pack("<H", rdb_version), n),
        ]
    )
    rows = rows.reshape(n, width)  # every payload right-aligned, zero-padded on the left
    crc = crc64_right_aligned(rows).astype("<u8").view(np.uint8).reshape(n, 8)
    key_parts = Padded.from_list(list(keys))
    return compact(
        [
            Padded.const(b"*5\r\n$7\r\nRESTORE\r\n", n),
            _by_length(key_parts.lengths, lambda k: f"${k}\r\n".encode()),
            key_parts,
            Padded.const(b"\r\n$1\r\n0\r\n", n),
            _by_length(size + 8, lambda k: f"${k}\r\n".encode()),
            Padded(rows, size, right=True),
            Padded(crc, np.full(n, 8, np.int64)),
            Padded.const(b"\r\n$7\r\nREPLACE\r\n", n),
        ]
    )
