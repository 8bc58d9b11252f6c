"""Online feature reads for the serving path, equal to Feast's ``get_online_features``.

Feast's own read costs ~0.5 ms for one member but 20-130 ms for 100 (Python overhead per value,
and full garbage collections over its many short-lived protobuf objects). Two leaner readers
return exactly the same dictionary (``tests/features/test_online.py`` proves it):

- ``redis``: one ``HGETALL`` per member (Feast keeps all of an entity's views in one Redis
  hash), pipelined on pre-packed commands; the service's fields are picked from each reply and
  the doubles of a batch decoded at once with NumPy.
- ``memory``: a warm columnar copy of the values last materialized (read from the same feature
  tables at the materialized instant), indexed by member id; no I/O per request.

``backend="feast"`` delegates to Feast itself. With ``layout=`` (``online_layout``) the reader is
built without Feast: no import of it, no registry read (the serving workers' start). Call
``freeze_gc()`` once after start-up: it moves everything loaded so far out of the garbage
collector's generations, which removes the long full-collection pauses.
"""

from __future__ import annotations

import gc
import operator
import struct
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.errors import LoyaltyError, MissingDataError
from loyalty_ml.features import online_format as fmt
from loyalty_ml.features.materialize import latest_rows, read_state
from loyalty_ml.features.online_layout import OnlineLayout, layout_from_applied
from loyalty_ml.features.store import AppliedStore, open_store

_unpack_double = struct.Struct("<d").unpack_from


def freeze_gc() -> None:
    """Collect once, then exclude all current objects from future collections."""
    gc.collect()
    gc.freeze()


def redis_client(
    host: str, port: int, timeouts_ms: tuple[int, int] | None = None, db: int = 0
) -> Any:
    """A Redis client; with ``timeouts_ms`` (connect, read) it gives up at once: bounded
    timeouts and no retries. redis-py's defaults (no timeouts, retries with backoff) made one
    read against a stopped Redis take 11.8 s here."""
    import redis

    if timeouts_ms is None:
        return redis.Redis(host=host, port=port, db=db)
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    connect_ms, read_ms = timeouts_ms
    return redis.Redis(
        host=host,
        port=port,
        db=db,
        socket_connect_timeout=connect_ms / 1000,
        socket_timeout=read_ms / 1000,
        retry=Retry(NoBackoff(), 0),
    )


class OnlineFeatureReader:
    """Read one feature service's online values for members (or products)."""

    def __init__(
        self,
        service: str = "churn_v1",
        backend: str = "auto",
        applied: AppliedStore | None = None,
        profile: str | None = None,
        project: str | None = None,
        home: Path | None = None,
        redis_timeouts_ms: tuple[int, int] | None = None,
        layout: OnlineLayout | None = None,
    ) -> None:
        """``redis_timeouts_ms``: (connect, read) limits and no retries for the Redis backend
        (a service must fail fast when the store is down); ``None`` keeps redis-py's defaults.
        ``layout``: read without Feast (``online_layout.layout_from_manifest``); the ``feast``
        backend then is not available."""
        self._redis_timeouts_ms = redis_timeouts_ms
        self.applied: AppliedStore | None = None
        self.store: Any = None
        self.service: Any = None
        if layout is None:
            self.applied = applied or open_store(profile, project, home)
            self.store = self.applied.store
            layout = layout_from_applied(self.applied, service)
            self.service = self.store.get_feature_service(service)
        self.spec = layout
        self.service_name = service
        self.unavailable = layout.unavailable
        # (view name, [(feature, type)]) in the service's order.
        self.layout = [(view, list(feats)) for view, feats in layout.views]
        self.join_key = layout.join_key
        self.feature_names = layout.feature_names
        kind = layout.store_type
        if backend == "auto":
            backend = "redis" if kind == "redis" else "memory"
        self.backend = backend
        if backend == "redis":
            if kind != "redis":
                raise LoyaltyError(f"backend redis needs the Redis online store, not {kind}")
            self._init_redis()
        elif backend == "memory":
            self._init_memory(home)
        elif backend != "feast":
            raise LoyaltyError(f"unknown online backend {backend!r} (auto, redis, memory, feast)")
        elif self.store is None:
            raise LoyaltyError("backend feast needs Feast's store: build the reader without layout")

    # ---------------------------------------------------------------- Feast itself
    def _get_feast(self, ids: Sequence[str]) -> dict[str, list[Any]]:
        rows = [{self.join_key: i} for i in ids]
        return self.store.get_online_features(features=self.service, entity_rows=rows).to_dict()

    # ---------------------------------------------------------------- Redis
    def _init_redis(self) -> None:
        host, port = self.spec.redis_target()
        self._redis = redis_client(host, port, self._redis_timeouts_ms)
        self._project = self.spec.project.encode()
        fields: list[bytes] = []
        for view, feats in self.layout:
            fields += [fmt.field_hash(f"{view}:{name}") for name, _ in feats]
            fields.append(f"_ts:{view}".encode())
        self._fields = fields
        self._getters: dict[tuple[bytes, ...], operator.itemgetter] = {}
        self._positions = _feature_positions(self.layout)
        self._float_positions = [pos for pos, _, kind in self._positions if kind == "Float64"]
        self._decoded: dict[bytes | None, Any] = {}

    def _get_redis(self, ids: Sequence[str]) -> dict[str, list[Any]]:
        keys = fmt.entity_keys(self.join_key, ids, suffix=self._project)
        columns = self._read_hashes(keys)
        out: dict[str, list[Any]] = {self.join_key: list(ids)}
        if len(keys) < 8:
            for pos, name, kind in self._positions:
                out[name] = [_decode(raw, kind) for raw in columns[pos]]
            return out
        # Many members: the doubles (most features) of all columns are decoded at once with
        # NumPy; the few distinct Int64/String values are decoded once each and looked up.
        doubles = iter(_bulk_doubles([columns[p] for p in self._float_positions]))
        cache = self._decoded
        if len(cache) > 100_000:
            cache.clear()
        for pos, name, kind in self._positions:
            column = columns[pos]
            if kind == "Float64":
                values = next(doubles)
                if values is not None:
                    out[name] = values
                    continue
            for raw in set(column).difference(cache):
                cache[raw] = _decode(raw, kind)
            out[name] = list(map(cache.__getitem__, column))
        return out

    def _read_hashes(self, keys: list[bytes]) -> list[Sequence[bytes]]:
        """The service's fields (``self._fields`` order) of the keys' hashes, one column per field
        with one value per key, ``b""`` (null, as Feast reads it) where absent.

        One pipelined ``HGETALL`` per key, packed here from pre-encoded bytes (redis-py would
        pack every command in Python). ``HGETALL`` walks the small (listpack) hash once where
        ``HMGET`` of ~95 fields searches it ~95 times; the reply's field order is the same for
        every hash written alike, so the positions are worked out once per field order. Replies
        are read from the connection's parser (hiredis): the connection's own ``read_response``
        adds ~5 us of bookkeeping per reply (100 replies per batch of 100 members).
        """
        payload = b"".join([b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys])
        pool = self._redis.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([payload])
            read = getattr(conn, "_parser", conn).read_response
            replies = [read() for _ in keys]
            for reply in replies:
                if isinstance(reply, Exception):  # an error reply (the parser returns it)
                    raise reply
        except BaseException:
            conn.disconnect()  # unread replies must not reach the next caller
            raise
        finally:
            pool.release(conn)
        return self._columns_of(replies)

    def _columns_of(self, replies: list[Any]) -> list[Sequence[bytes]]:
        """One sequence per ``self._fields`` entry, one value per reply. Common case: every
        hash has the same field order (written alike) -> all replies are chained into one list
        and each field's column is a strided slice of it (no per-member Python work)."""
        n = len(replies)
        if n == 0:
            return [() for _ in self._fields]
        if any(isinstance(reply, dict) for reply in replies):  # a RESP3 connection
            replies = [
                [x for kv in r.items() for x in kv] if isinstance(r, dict) else r for r in replies
            ]
        first = next((reply for reply in replies if reply), None)
        if first is not None:
            width = len(first)
            names = first[0::2]
            blank = [x for name in names for x in (name, b"")]  # an unknown member: all null
            flat = list(chain.from_iterable(reply or blank for reply in replies))
            if len(flat) == n * width and flat[0::2] == names * n:
                position = {name: i for i, name in enumerate(names)}
                absent = [b""] * n
                return [
                    flat[2 * position[f] + 1 :: width] if f in position else absent
                    for f in self._fields
                ]
        # Hashes written differently (or none found): per member.
        getters = self._getters
        if len(getters) > 64:
            getters.clear()
        rows = []
        for reply in replies:
            names_of = tuple(reply[0::2])
            getter = getters.get(names_of)
            if getter is None:
                index = {f: i for i, f in enumerate(names_of)}
                getter = getters[names_of] = operator.itemgetter(
                    *[index.get(f, len(names_of)) for f in self._fields]
                )
            values = reply[1::2]
            values.append(b"")  # what the getter picks for a field the hash lacks
            rows.append(getter(values))
        return list(zip(*rows, strict=True))

    # ---------------------------------------------------------------- warm copy
    def _init_memory(self, home: Path | None) -> None:
        state = read_state(self.spec.project, home)
        if state is None:
            raise MissingDataError(
                f"nothing materialized for project {self.spec.project}: "
                "run `loyalty features materialize` first"
            )
        self.as_of = pd.Timestamp(state["as_of"])
        frames = {
            view: latest_rows(self.spec.sources[view], self.as_of, self.join_key)
            for view, _ in self.layout
        }
        ids = pd.Index(
            sorted(set().union(*(set(f[self.join_key]) for f in frames.values()))), dtype=object
        )
        self._index = {k: i for i, k in enumerate(ids)}
        self._columns: list[tuple[str, str, np.ndarray, np.ndarray | None]] = []
        n = len(ids)
        for view, feats in self.layout:
            frame = frames[view]
            rows = ids.get_indexer(frame[self.join_key].to_numpy())
            present = np.zeros(n + 1, dtype=bool)  # last slot: unknown member
            present[rows] = True
            for name, kind in feats:
                values = frame[name].to_numpy()
                if kind == "String":
                    col = np.full(n + 1, None, dtype=object)
                    col[rows] = np.where(pd.isna(values), None, values)
                    self._columns.append((name, kind, col, None))
                elif kind == "Int64":
                    col = np.zeros(n + 1, dtype=np.int64)
                    col[rows] = values
                    self._columns.append((name, kind, col, present))
                else:
                    col = np.full(n + 1, np.nan)
                    col[rows] = values
                    self._columns.append((name, kind, col, None))
        self._missing_row = n

    def _get_memory(self, ids: Sequence[str]) -> dict[str, list[Any]]:
        get = self._index.get
        rows = np.fromiter((get(i, self._missing_row) for i in ids), dtype=np.int64, count=len(ids))
        out: dict[str, list[Any]] = {self.join_key: list(ids)}
        for name, kind, col, present in self._columns:
            values = col[rows].tolist()
            if kind == "Float64":
                values = [None if v != v else v for v in values]
            elif present is not None and not present[rows].all():
                values = [
                    v if ok else None for v, ok in zip(values, present[rows].tolist(), strict=True)
                ]
            out[name] = values
        return out

    # ---------------------------------------------------------------- public
    def get(self, ids: Sequence[str]) -> dict[str, list[Any]]:
        """``{join_key: ids, feature: [values]}``, exactly like Feast's ``to_dict()``."""
        ids = [str(i) for i in ids]
        if self.backend == "redis":
            return self._get_redis(ids)
        if self.backend == "memory":
            return self._get_memory(ids)
        return self._get_feast(ids)

    def get_one(self, entity_id: str) -> dict[str, Any]:
        return {k: v[0] for k, v in self.get([entity_id]).items()}

    def member_ids(self) -> list[str]:
        """Every entity id (member, or product for product services) the online store now holds.

        Sorted. ``memory``: the warm copy's ids; ``redis`` (and ``feast`` on Redis): a ``SCAN``
        over this project's hashes (about a second per million keys); ``feast`` on SQLite: the
        distinct entity keys of the service's view tables.
        """
        if self.backend == "memory":
            return list(self._index)
        kind = self.spec.store_type
        head = fmt.entity_key(self.join_key, "")[:-4]  # key bytes before the id's length
        if kind == "redis":
            if not hasattr(self, "_redis"):
                self._init_redis()
            project = self._project
            pattern = _glob_escape(head) + b"*" + _glob_escape(project)
            suffix = project
            raw_keys = self._redis.scan_iter(match=pattern, count=10_000)
        elif kind == "sqlite":
            import sqlite3

            conn = sqlite3.connect(self.spec.online_store["path"])
            try:
                found: set[bytes] = set()
                for view, _ in self.layout:
                    table = f'"{self.spec.project}_{view}"'
                    try:
                        found.update(
                            r[0] for r in conn.execute(f"SELECT DISTINCT entity_key FROM {table}")
                        )
                    except sqlite3.OperationalError:  # table not created: nothing materialized
                        continue
            finally:
                conn.close()
            suffix, raw_keys = b"", iter(found)
        else:
            raise LoyaltyError(f"member_ids() supports redis and sqlite online stores, not {kind}")
        ids = set()
        for key in raw_keys:
            if key.startswith(head) and key.endswith(suffix):
                found_id = _entity_id(key, len(head), len(suffix))
                if found_id is not None:
                    ids.add(found_id)
        return sorted(ids)


def _glob_escape(raw: bytes) -> bytes:
    """Literal bytes inside a Redis ``MATCH`` pattern."""
    out = bytearray()
    for b in raw:
        if b in b"*?[]\\":
            out += b"\\"
        out.append(b)
    return bytes(out)


def _entity_id(key: bytes, head: int, suffix: int) -> str | None:
    """The string id of a serialized (v3, one string join key) entity key, or None if the key
    is not exactly head + id + suffix (e.g. another project whose name ends like this one)."""
    if len(key) < head + 4 + suffix:
        return None
    (length,) = struct.unpack_from("<I", key, head)
    if head + 4 + length + suffix != len(key):
        return None
    return key[head + 4 : head + 4 + length].decode("utf-8")


def _feature_positions(
    layout: list[tuple[str, list[tuple[str, str]]]],
) -> list[tuple[int, str, str]]:
    """Position of each feature in the HMGET reply (each view is followed by its _ts field)."""
    out, pos = [], 0
    for _, feats in layout:
        for name, kind in feats:
            out.append((pos, name, kind))
            pos += 1
        pos += 1
    return out


def _bulk_doubles(columns: Sequence[Sequence[bytes]]) -> list[list[float | None] | None]:
    """Each column of serialized Float64 values decoded: a list of floats (``None`` for null,
    i.e. ``b""``), or ``None`` for a column holding anything but plain 9-byte ``double_val``s and
    nulls (callers decode such columns value by value). One ``join``, one NumPy gather and one
    ``tolist`` for all columns together."""
    k = len(columns)
    if k == 0:
        return []
    n = len(columns[0])
    flat = list(chain.from_iterable(columns))
    lens = np.fromiter(map(len, flat), dtype=np.int64, count=k * n)
    raw = np.frombuffer(b"".join(flat), dtype=np.uint8)
    nine = lens == 9
    starts = (np.cumsum(lens) - lens)[nine]
    plain = np.zeros(k * n, dtype=bool)
    plain[nine] = raw[starts] == fmt.DOUBLE_TAG
    null = lens == 0
    values = np.empty(k * n, dtype=object)
    values[nine] = raw[starts[:, None] + np.arange(1, 9)].copy().view("<f8")[:, 0]
    values[null] = None
    clean = (plain | null).reshape(k, n).all(axis=1).tolist()
    return [
        column if ok else None
        for column, ok in zip(values.reshape(k, n).tolist(), clean, strict=True)
    ]


def _decode(raw: bytes | None, kind: str) -> Any:
    if not raw:
        return None
    if kind == "Float64" and len(raw) == 9 and raw[0] == fmt.DOUBLE_TAG:
        return _unpack_double(raw, 1)[0]
    return fmt.decode_value(raw)
