"""Contract tables → the ``user_items`` / ``recency`` matrices every model reads.

``user_items`` (members × products, float32) sums time-decayed weights: purchases
(``order_items.quantity`` × ``purchase_weight``) plus events (view/cart… × ``event_weights``).
``counts`` holds purchase counts only (repeat model); ``recency`` holds each distinct item's rank
from the member's most recent interaction (0 = latest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from loyalty_ml.errors import MissingDataError
from loyalty_ml.recs.config import InteractionConfig
from loyalty_ml.timeutil import to_utc


@dataclass
class Interactions:
    user_items: sp.csr_matrix
    recency: sp.csr_matrix
    counts: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    last_seen: np.ndarray | None = None  # per user, latest interaction (epoch seconds)
    user_index: dict[str, int] = field(default_factory=dict)
    item_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.user_index:
            self.user_index = {u: i for i, u in enumerate(self.user_ids.tolist())}
        if not self.item_index:
            self.item_index = {p: i for i, p in enumerate(self.item_ids.tolist())}

    @property
    def shape(self) -> tuple[int, int]:
        return self.user_items.shape


def recency_ranks(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """``users``/``items`` in chronological order per user → rank-from-latest of each distinct item."""
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    if len(users) == 0:
        return sp.csr_matrix((n_users, n_items), dtype=np.float32)
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    key = users * n_items + items
    rev = np.arange(len(key))[::-1]
    _, first = np.unique(key[rev], return_index=True)
    keep = np.sort(rev[first])  # last occurrence of each (user, item), chronological
    u, i = users[keep], items[keep]
    ends = np.cumsum(np.bincount(u, minlength=n_users))
    rank = ends[u] - 1 - np.arange(len(keep))
    return sp.csr_matrix((rank.astype(np.float32), (u, i)), shape=(n_users, n_items))


def from_sequences(
    sequences: list[np.ndarray], n_items: int, user_ids=None, item_ids=None
) -> Interactions:
    """Ordered item-index sequences (one per user, oldest first) → Interactions (weight 1 each)."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    users = np.repeat(np.arange(len(sequences)), lengths)
    items = np.concatenate(sequences).astype(np.int64) if len(sequences) else np.array([], np.int64)
    shape = (len(sequences), n_items)
    counts = sp.csr_matrix((np.ones(len(items), np.float32), (users, items)), shape=shape)
    counts.sum_duplicates()
    return Interactions(
        user_items=counts.copy(),
        recency=recency_ranks(users, items, *shape),
        counts=counts,
        user_ids=np.asarray(
            user_ids if user_ids is not None else np.arange(len(sequences)).astype(str)
        ),
        item_ids=np.asarray(item_ids if item_ids is not None else np.arange(n_items).astype(str)),
    )


def interaction_log(dataset, config: InteractionConfig) -> pd.DataFrame:
    """One row per purchase/event: member_id, product_id, at (UTC), weight, is_purchase."""
    frames = []
    if dataset.order_items is not None and len(dataset.order_items):
        orders = dataset.orders
        if not config.include_returned:
            orders = orders[orders["status"].fillna("completed") == "completed"]
        lines = dataset.order_items.merge(
            orders[["order_id", "member_id", "ordered_at"]], on="order_id", how="inner"
        )
        frames.append(
            pd.DataFrame(
                {
                    "member_id": lines["member_id"].astype(str),
                    "product_id": lines["product_id"].astype(str),
                    "at": lines["ordered_at"],
                    "weight": config.purchase_weight
                    * lines["quantity"].fillna(1).astype("float64").clip(lower=1),
                    "is_purchase": True,
                }
            )
        )
    if dataset.events is not None and len(dataset.events) and config.event_weights:
        ev = dataset.events
        ev = ev[ev["event_type"].isin(list(config.event_weights)) & ev["product_id"].notna()]
        frames.append(
            pd.DataFrame(
                {
                    "member_id": ev["member_id"].astype(str),
                    "product_id": ev["product_id"].astype(str),
                    "at": ev["occurred_at"],
                    "weight": ev["event_type"].map(config.event_weights).astype("float64"),
                    "is_purchase": False,
                }
            )
        )
    if not frames:
        raise MissingDataError(
            "recommendations need order_items (or events with product_id), absent in "
            f"{getattr(dataset, 'name', 'the data set')}"
        )
    log = pd.concat(frames, ignore_index=True)
    return log.sort_values(["at", "member_id"], kind="stable").reset_index(drop=True)


def from_log(
    log: pd.DataFrame,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    as_of: pd.Timestamp,
    config: InteractionConfig,
) -> Interactions:
    """Matrices over a fixed member/product universe from interaction-log rows (time-decayed
    to ``as_of``)."""
    u = pd.Index(user_ids).get_indexer(log["member_id"]).astype(np.int64)
    i = pd.Index(item_ids).get_indexer(log["product_id"]).astype(np.int64)
    ok = (u >= 0) & (i >= 0)
    log, u, i = log[ok], u[ok], i[ok]
    w = log["weight"].to_numpy(np.float64)
    if config.half_life_days and len(log):
        age_days = (as_of - log["at"]).dt.total_seconds().to_numpy() / 86400.0
        w = w * np.power(0.5, np.maximum(age_days, 0) / config.half_life_days)
    shape = (len(user_ids), len(item_ids))
    user_items = sp.csr_matrix((w.astype(np.float32), (u, i)), shape=shape)
    user_items.sum_duplicates()
    purchase = log["is_purchase"].to_numpy(bool)
    counts = sp.csr_matrix(
        (np.ones(int(purchase.sum()), np.float32), (u[purchase], i[purchase])), shape=shape
    )
    counts.sum_duplicates()
    seconds = log["at"].astype("int64").to_numpy() // 10**9
    last_seen = np.full(len(user_ids), -1, np.int64)
    np.maximum.at(last_seen, u, seconds)
    return Interactions(
        user_items=user_items,
        recency=recency_ranks(u, i, *shape),
        counts=counts,
        user_ids=np.asarray(user_ids).astype(str),
        item_ids=np.asarray(item_ids).astype(str),
        last_seen=last_seen,
    )


def universe(dataset, log: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Sorted member ids (members table ∪ log) and product ids (products table ∪ log)."""
    items = set(log["product_id"])
    if dataset.products is not None and len(dataset.products):
        items |= set(dataset.products["product_id"].astype(str))
    users = set(log["member_id"]) | set(dataset.members["member_id"].astype(str))
    return np.array(sorted(users), dtype=object).astype(str), np.array(
        sorted(items), dtype=object
    ).astype(str)


def from_dataset(dataset, as_of=None, config: InteractionConfig | None = None) -> Interactions:
    """Members × products matrices from a contract data set, read as of ``as_of``."""
    config = config or InteractionConfig()
    if as_of is not None:
        dataset = dataset.as_of(to_utc(as_of))
    log = interaction_log(dataset, config)
    as_of = to_utc(as_of) if as_of is not None else log["at"].max()
    user_ids, item_ids = universe(dataset, log)
    return from_log(log, user_ids, item_ids, as_of, config)
