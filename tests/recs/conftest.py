"""Fixtures with known answers: block-structured interactions and a tiny shop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from loyalty_ml.contract.io import Dataset, coerce_table
from loyalty_ml.contract.schema import MEMBERS, ORDER_ITEMS, ORDERS, PRODUCTS

N_BLOCKS, ITEMS_PER_BLOCK, USERS_PER_BLOCK = 3, 10, 20


def block_of(item: int) -> int:
    return item // ITEMS_PER_BLOCK


@pytest.fixture(scope="session")
def blocks() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(user_items, recency): users of block b bought 6 of block b's 10 items, nothing else.

    The right answer for any user is "items of its own block it has not bought yet".
    """
    rng = np.random.default_rng(0)
    rows, cols, ranks = [], [], []
    for b in range(N_BLOCKS):
        for u in range(USERS_PER_BLOCK):
            user = b * USERS_PER_BLOCK + u
            items = rng.choice(ITEMS_PER_BLOCK, size=6, replace=False) + b * ITEMS_PER_BLOCK
            rows += [user] * len(items)
            cols += items.tolist()
            ranks += list(range(len(items) - 1, -1, -1))  # first chosen = oldest
    shape = (N_BLOCKS * USERS_PER_BLOCK, N_BLOCKS * ITEMS_PER_BLOCK)
    user_items = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    recency = sp.csr_matrix((np.array(ranks, np.float32), (rows, cols)), shape=shape)
    return user_items, recency


# --------------------------------------------------------------------------- a tiny shop
CATEGORIES = ("skin", "hair", "make")


def make_shop(seed: int = 7, n_members: int = 90, days: int = 150) -> Dataset:
    """Members buy a skin item, then (next order) the matching hair item — a planted complement
    chain — plus random make-up items; ``c0`` is a consumable re-bought every month; ``gold1`` is a
    popular gold-only product."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    products = []
    for c in CATEGORIES:
        for k in range(6):
            products.append(
                {
                    "product_id": f"{c}{k}",
                    "category": c,
                    "price": 10.0 + 5 * k,
                    "min_tier": "normal",
                }
            )
    products.append({"product_id": "c0", "category": "consumable", "price": 8.0, "min_tier": ""})
    products.append({"product_id": "gold1", "category": "make", "price": 100.0, "min_tier": "gold"})
    members, orders, lines = [], [], []
    tiers = ["normal", "silver", "gold"]
    for m in range(n_members):
        mid = f"m{m}"
        members.append(
            {
                "member_id": mid,
                "joined_at": start,
                "region": ["north", "south"][m % 2],
                "tier": tiers[m % 3],
                "birth_date": "1990-03-15",
            }
        )
        day = int(rng.integers(0, 20))
        basket_seq = []
        k = int(rng.integers(0, 6))
        basket_seq.append([f"skin{k}"])
        basket_seq.append([f"hair{k}"])
        basket_seq.append([f"make{int(rng.integers(0, 6))}", "gold1"])
        for _ in range(3):
            basket_seq.append(["c0"])
        rng.shuffle(basket_seq[3:])
        for j, basket in enumerate(basket_seq):
            oid = f"o{m}-{j}"
            at = start + pd.Timedelta(days=day)
            orders.append({"order_id": oid, "member_id": mid, "ordered_at": at, "amount": 10.0})
            for p in basket:
                lines.append({"order_id": oid, "product_id": p, "quantity": 1, "unit_price": 10.0})
            day = min(day + int(rng.integers(5, 25)), days - 1)
    return Dataset(
        members=coerce_table(pd.DataFrame(members), MEMBERS),
        orders=coerce_table(pd.DataFrame(orders), ORDERS),
        order_items=coerce_table(pd.DataFrame(lines), ORDER_ITEMS),
        products=coerce_table(pd.DataFrame(products), PRODUCTS),
        name="tinyshop",
    )


@pytest.fixture(scope="session")
def shop() -> Dataset:
    return make_shop()


@pytest.fixture(scope="session")
def shop_config():
    from loyalty_ml.recs.config import RecsConfig

    cfg = RecsConfig(threads=1)
    return cfg.model_copy(
        update={
            "als": cfg.als.model_copy(update={"factors": 8, "iterations": 5}),
            "tuning": cfg.tuning.model_copy(
                update={"protocol": "leave_one_out", "ks": [5, 10, 20]}
            ),
            "serving": cfg.serving.model_copy(update={"precomputed_per_member": 20}),
        }
    )


@pytest.fixture(scope="session")
def shop_recommender(shop, shop_config, tmp_path_factory):
    from loyalty_ml.recs.train import train_recs

    out = tmp_path_factory.mktemp("bundle")
    result = train_recs(shop, None, shop_config, trials=0, track=False, out_dir=out)
    return result
