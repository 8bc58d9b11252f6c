"""Contract tables → user_items: purchases and weighted events, time decay, recency, as-of."""

from __future__ import annotations

import pandas as pd
import pytest

from loyalty_ml.contract.io import coerce_table
from loyalty_ml.contract.schema import EVENTS
from loyalty_ml.recs.config import InteractionConfig
from loyalty_ml.recs.interactions import from_dataset
from tests.recs.conftest import make_shop


def test_purchases_events_decay_and_as_of():
    shop = make_shop(n_members=3)
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    shop.events = coerce_table(
        pd.DataFrame(
            {
                "member_id": ["m0", "m0", "m1"],
                "occurred_at": [t0, t0, t0 + pd.Timedelta(days=400)],
                "event_type": ["view", "cart", "view"],
                "product_id": ["make5", "make5", "make4"],
            }
        ),
        EVENTS,
    )
    cfg = InteractionConfig(half_life_days=None)
    inter = from_dataset(shop, "2026-12-31", cfg)
    u, i = inter.user_index["m0"], inter.item_index["make5"]
    assert inter.user_items[u, i] == pytest.approx(0.6)  # view 0.1 + cart 0.5
    assert inter.counts[u, i] == 0  # events are not purchases
    assert inter.counts[u, inter.item_index["c0"]] == 3
    # as-of: the later view is not read
    early = from_dataset(shop, "2026-06-01", cfg)
    assert early.user_items[early.user_index["m1"], early.item_index["make4"]] == 0
    # decay: an older purchase weighs less
    decayed = from_dataset(shop, "2026-12-31", InteractionConfig(half_life_days=30))
    assert 0 < decayed.user_items[u, i] < 0.6
    # recency: rank 0 is the member's latest item
    row = inter.recency[u]
    assert row.data.min() == 0
    assert "gold1" in inter.item_index and len(inter.item_ids) == 20
