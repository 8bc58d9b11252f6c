"""Member erasure for the feature store: online rows and the feature tables they come from.

``erase_member(member_id)`` removes the member from

- the online store of the active profile: the SQLite tables ``<project>_<member view>`` (rows
  keyed by ``serialize_entity_key`` v3) locally, the member's Redis hash in production;
- the member feature tables under ``LOYALTY_HOME/features/tables/member`` (the Feast sources, and
  what the warm ``memory`` online reader is built from), rewritten atomically without the rows.

It returns per-store counts. It does not touch the shop's own contract data (the shop erases its
source tables; the next pipeline run then cannot bring the member back). Called by
``loyalty_ml.campaigns.erasure.erase_member`` (``loyalty member erase``).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from loyalty_ml.features import online_format as fmt
from loyalty_ml.settings import get_settings

log = logging.getLogger(__name__)
JOIN_KEY = "member_id"


def _feast_dir(home: Path) -> Path:
    return home / "features" / "feast"


def erase_sqlite(db: Path, member_id: str) -> int:
    """Delete the member's rows from every member table of a Feast SQLite online store."""
    if not db.is_file():
        return 0
    key = fmt.entity_key(JOIN_KEY, member_id)
    conn = sqlite3.connect(db, timeout=30)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if "_member_" in r[0]
        ]
        deleted = 0
        with conn:
            for table in tables:
                cols = {c[1] for c in conn.execute(f'PRAGMA table_info("{table}")')}
                if "entity_key" not in cols:
                    continue
                cur = conn.execute(f'DELETE FROM "{table}" WHERE entity_key = ?', (key,))
                deleted += cur.rowcount
        return deleted
    finally:
        conn.close()


def erase_redis(member_id: str) -> int:  # pragma: no cover - needs a Redis server
    """Delete the member's hash (Feast keeps all of an entity's views in one hash)."""
    from loyalty_ml.features.store import open_store

    store = open_store().store
    conn = store.config.online_store.connection_string.split(",")[0]
    host, _, port = conn.partition(":")
    import redis

    client = redis.Redis(host=host or "127.0.0.1", port=int(port or 6379))
    keys = fmt.entity_keys(JOIN_KEY, [member_id], suffix=store.project.encode())
    return int(client.delete(*keys))


def erase_tables(tables_dir: Path, member_id: str) -> int:
    """Rewrite each member feature table without the member's rows (atomic replace)."""
    removed = 0
    if not tables_dir.is_dir():
        return 0
    for path in sorted(tables_dir.glob("*.parquet")):
        frame = pd.read_parquet(path)
        if JOIN_KEY not in frame:
            continue
        hit = frame[JOIN_KEY].astype(str) == member_id
        if not hit.any():
            continue
        tmp = path.with_suffix(".erasing")
        frame[~hit.to_numpy()].to_parquet(tmp, index=False)
        tmp.replace(path)
        removed += int(hit.sum())
    return removed


def erase_member(member_id: str) -> dict[str, Any]:
    """Remove ``member_id`` from the online store and the feature tables; per-store counts."""
    settings = get_settings()
    home = settings.home_dir
    member_id = str(member_id)
    report: dict[str, Any] = {}
    if getattr(settings, "profile", "local") == "production":
        try:
            report["online_redis_keys"] = erase_redis(member_id)
        except Exception as exc:  # the erasure log must still say what happened
            report["online_redis_keys"] = f"failed: {type(exc).__name__}: {exc}"[:200]
    else:
        report["online_sqlite_rows"] = erase_sqlite(_feast_dir(home) / "online.db", member_id)
    report["feature_table_rows"] = erase_tables(home / "features" / "tables" / "member", member_id)
    log.info("features erasure: %s", report)
    return report
