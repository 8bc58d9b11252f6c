"""``loyalty_ml.features.erasure``: a member's online rows and feature-table rows go away."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from loyalty_ml.features import online_format as fmt
from loyalty_ml.features.erasure import erase_member


def _online_db(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    with conn:
        for table in ("loyalty_member_rfm", "loyalty_member_static", "loyalty_product_stats"):
            conn.execute(
                f"CREATE TABLE {table} (entity_key BLOB, feature_name TEXT, value BLOB, "
                "event_ts timestamp, created_ts timestamp, PRIMARY KEY(entity_key, feature_name))"
            )
        for member in ("a", "b"):
            key = fmt.entity_key("member_id", member)
            for table in ("loyalty_member_rfm", "loyalty_member_static"):
                for feature in ("f1", "f2"):
                    conn.execute(
                        f"INSERT INTO {table} VALUES (?, ?, ?, NULL, NULL)", (key, feature, b"x")
                    )
        conn.execute(
            "INSERT INTO loyalty_product_stats VALUES (?, 'f', ?, NULL, NULL)",
            (fmt.entity_key("product_id", "a"), b"x"),
        )
    conn.close()


def test_erase_member_removes_online_and_table_rows(loyalty_home: Path) -> None:
    db = loyalty_home / "features" / "feast" / "online.db"
    _online_db(db)
    tables = loyalty_home / "features" / "tables" / "member"
    tables.mkdir(parents=True)
    pd.DataFrame({"member_id": ["a", "b", "a"], "x": [1, 2, 3]}).to_parquet(
        tables / "member_rfm.parquet"
    )
    pd.DataFrame({"member_id": ["b"], "y": [1]}).to_parquet(tables / "member_static.parquet")

    report = erase_member("a")
    assert report == {"online_sqlite_rows": 4, "feature_table_rows": 2}
    conn = sqlite3.connect(db)
    keys = {r[0] for r in conn.execute("SELECT entity_key FROM loyalty_member_rfm")}
    assert keys == {fmt.entity_key("member_id", "b")}
    # a product with the same id is another entity: untouched
    assert conn.execute("SELECT count(*) FROM loyalty_product_stats").fetchone()[0] == 1
    conn.close()
    assert list(pd.read_parquet(tables / "member_rfm.parquet")["member_id"]) == ["b"]
    assert len(pd.read_parquet(tables / "member_static.parquet")) == 1

    assert erase_member("a") == {"online_sqlite_rows": 0, "feature_table_rows": 0}


def test_erase_member_without_a_store_is_a_no_op(loyalty_home: Path) -> None:
    assert erase_member("zz") == {"online_sqlite_rows": 0, "feature_table_rows": 0}
