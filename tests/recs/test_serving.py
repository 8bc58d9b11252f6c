"""Serving semantics on a tiny shop with planted structure: scenarios, cold start, policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.recs.serving import Recommender

NOW = pd.Timestamp("2026-06-01", tz="UTC")


@pytest.fixture(scope="module")
def rec(shop_recommender) -> Recommender:
    return Recommender.load(shop_recommender.bundle_dir)


def _bought(shop, member_id):
    orders = shop.orders[shop.orders["member_id"] == member_id]
    return set(
        shop.order_items[shop.order_items["order_id"].isin(orders["order_id"])]["product_id"]
    )


def _category(shop, pid):
    return shop.products.set_index("product_id").loc[pid, "category"]


def test_train_result_has_every_method(shop_recommender):
    assert {"popularity", "item_knn", "transitions", "als", "blend"} <= set(
        shop_recommender.metrics
    )
    assert (shop_recommender.bundle_dir / "recommender.npz").is_file()


def test_home_no_repeats_excludes_purchased_and_points(rec, shop):
    from loyalty_ml.policy import load_policy, points_to_earn

    res = rec.recommend("m4", 8, "home", now=NOW)
    ids = res.product_ids
    assert len(ids) == len(set(ids)) == 8
    assert not set(ids) & _bought(shop, "m4")
    policy = load_policy()
    prices = shop.products.set_index("product_id")["price"]
    tier = "silver"  # m4 -> tiers[4 % 3]
    for item in res.items:
        assert item["points_to_earn"] == points_to_earn(
            tier, float(prices[item["product_id"]]), NOW, policy
        )
        assert item["reason"]
    scores = [i["score"] for i in res.items]
    assert scores == sorted(scores, reverse=True)


def test_planted_complement_is_found(rec, shop):
    # everyone buys skin<k> and then hair<k>: hair<k> goes with skin<k>
    res = rec.recommend("new-member", 5, "cart", cart=["skin3"], now=NOW)
    assert res.product_ids[0] == "hair3"


def test_cart_complements_not_substitutes_and_unknown_ignored(rec, shop):
    res = rec.recommend("m1", 10, "cart", cart=["skin2", "nope"], now=NOW)
    assert "skin2" not in res.product_ids
    assert all(_category(shop, p) != "skin" for p in res.product_ids)
    assert any("nope" in n for n in res.notes)
    assert res.fallback is None


def test_cold_start_never_errors(rec):
    for member in ("unknown-1", ""):
        res = rec.recommend(member, 5, "home", now=NOW)
        assert res.fallback == "cold_start"
        assert len(res.items) == 5
    res = rec.recommend("unknown-2", 5, "similar", product_id="not-a-product", now=NOW)
    assert res.fallback == "popular" and len(res.items) == 5
    res = rec.recommend("unknown-3", 5, "bogus-context", now=NOW)
    assert res.notes and len(res.items) == 5


def test_tier_filter(rec):
    normal = rec.recommend("stranger", 30, "home", member_tier="normal", now=NOW)
    gold = rec.recommend("stranger", 30, "home", member_tier="gold", now=NOW)
    assert "gold1" not in normal.product_ids
    assert "gold1" in gold.product_ids  # popular, and allowed for gold


def test_stored_member_tier_used(rec, shop):
    gold_member = "m2"  # tiers[2 % 3] == gold
    normal_member = "m0"
    assert "gold1" not in rec.recommend(normal_member, 40, "home", now=NOW).product_ids
    assert rec._tier(rec.member_index[gold_member], None, []) == 2


def test_similar_excludes_anchor(rec):
    res = rec.recommend("m3", 5, "similar", product_id="make2", now=NOW)
    assert "make2" not in res.product_ids and len(res.items) == 5


def test_post_purchase_brings_back_consumable(rec, shop):
    # c0 is re-bought by every member: replenishable, allowed in post_purchase only
    member = "m5"
    assert "c0" in _bought(shop, member)
    assert "c0" in rec.recommend(member, 10, "post_purchase", now=NOW).product_ids
    assert "c0" not in rec.recommend(member, 10, "home", now=NOW).product_ids
    assert "c0" in rec.recommend(member, 40, "home", now=NOW, include_purchased=True).product_ids


def test_deterministic_and_batch_matches_single(rec):
    a = rec.recommend("m7", 10, "home", now=NOW)
    b = rec.recommend("m7", 10, "home", now=NOW)
    assert a.items == b.items
    batch = rec.recommend_batch(["m7", "zzz"], 10, "home", now=NOW)
    assert list(batch.columns) == ["member_id", "rank", "product_id", "score"]
    assert batch[batch.member_id == "m7"]["product_id"].tolist() == a.product_ids
    assert batch[batch.member_id == "zzz"]["rank"].tolist() == list(range(1, 11))


def test_result_unpacks_as_items_and_fallback(rec):
    items, fallback = rec.recommend("ghost", 3, "home", now=NOW)
    assert fallback == "cold_start" and len(items) == 3
    assert rec.popular(3)


def test_with_members_refreshes_history(rec, shop):
    earlier = shop.as_of(pd.Timestamp("2026-01-10", tz="UTC"))
    refreshed = rec.with_members(shop, pd.Timestamp("2026-01-10", tz="UTC"))
    members = set(earlier.members["member_id"])
    assert set(refreshed.member_ids) >= members
    m = next(iter(sorted(members)))
    ids = refreshed.recommend(m, 5, "home", now=NOW).product_ids
    assert not set(ids) & _bought(earlier, m)


def test_tier_exclusive_boost(shop_recommender):
    rec = Recommender.load(shop_recommender.bundle_dir)
    base = rec.recommend("m2", 20, "home", now=NOW)
    rec.config.serving.tier_exclusive_boost = 5.0
    boosted = rec.recommend("m2", 20, "home", now=NOW)
    if "gold1" in base.product_ids:
        assert boosted.product_ids.index("gold1") <= base.product_ids.index("gold1")
    assert np.isfinite([i["score"] for i in boosted.items]).all()


def test_vectorised_batch_equals_single_requests(rec, shop):
    members = sorted(shop.members["member_id"])[:40]
    batch = rec.recommend_batch(members, 6, "home", now=NOW, block_size=16)
    same = 0
    for m in members:
        single = rec.recommend(m, 6, "home", now=NOW, with_points=False)
        got = batch[batch.member_id == m]
        same += got["product_id"].tolist() == single.product_ids
        np.testing.assert_allclose(
            sorted(got["score"]), sorted(i["score"] for i in single.items), atol=1e-4
        )
    assert same >= len(members) - 2  # float ties may swap neighbours


def test_birthday_month_points(rec, shop):
    from loyalty_ml.policy import load_policy, points_to_earn

    march = pd.Timestamp("2026-03-10", tz="UTC")  # members were born in March
    res = rec.recommend("m4", 5, "home", now=march)
    prices = shop.products.set_index("product_id")["price"]
    for item in res.items:
        price = float(prices[item["product_id"]])
        assert item["points_to_earn"] == points_to_earn(
            "silver", price, march, load_policy(), birth_month=3
        )


def test_serving_matches_offline_blend(shop_recommender, shop, rec):
    """The precomputed serving path ranks like the offline blend (filters aside)."""
    from loyalty_ml.recs.base import RecModel, top_n
    from loyalty_ml.recs.interactions import from_dataset

    blend = RecModel.load(shop_recommender.bundle_dir / "blend.npz")
    inter = from_dataset(shop, shop_recommender.as_of, shop_recommender.config.interactions)
    assert list(inter.item_ids) == list(rec.item_ids)
    overlap = []
    for m in sorted(shop.members["member_id"])[:30]:
        u = inter.user_index[m]
        scores = blend.score(inter.user_items[[u]], recency=inter.recency[[u]], userids=[u])
        bought = inter.counts[[u]]
        # same policy filter as serving for the comparison: tier and purchases
        tier = rec._tier(rec.member_index[m], None, [])
        blocked = np.flatnonzero(rec.min_tier > tier)
        ids, _ = top_n(scores, 5, exclude=bought, filter_items=blocked)
        served = rec.recommend(m, 5, "home", with_points=False).product_ids
        overlap.append(len(set(inter.item_ids[ids[0]]) & set(served)) / 5)
    assert np.mean(overlap) >= 0.8


def test_similar_from_sparse_sources_only(shop, shop_config, tmp_path):
    from loyalty_ml.recs.train import train_recs

    cfg = shop_config.model_copy(
        update={"serving": shop_config.serving.model_copy(update={"similar_sources": ["item_knn"]})}
    )
    rec = train_recs(shop, None, cfg, trials=0, track=False, out_dir=tmp_path).recommender
    res = rec.recommend("m3", 5, "similar", product_id="skin1", now=NOW)
    assert "skin1" not in res.product_ids and len(set(res.product_ids)) == len(res.items) == 5
    assert res.fallback is None


@pytest.fixture(scope="module")
def rec_catpop(shop, shop_config, tmp_path_factory):
    """Every home source on, category popularity with a prior (exercises all batch paths)."""
    from loyalty_ml.recs.train import train_recs

    weights = {**shop_config.blend.weights, "category_popularity": 0.5, "popularity": 0.05}
    cfg = shop_config.model_copy(
        update={
            "blend": shop_config.blend.model_copy(update={"weights": weights}),
            "category_popularity": shop_config.category_popularity.model_copy(
                update={"prior": 1.0, "within": "share", "history_decay": 0.9}
            ),
            "serving": shop_config.serving.model_copy(update={"precomputed_home": 12}),
        }
    )
    out = tmp_path_factory.mktemp("catpop")
    train_recs(shop, None, cfg, trials=0, track=False, out_dir=out)
    return Recommender.load(out)


def test_precomputed_home_matches_live_scoring(rec_catpop, shop):
    rec = rec_catpop
    assert rec.home is not None and rec.home_k == 12
    members = sorted(shop.members["member_id"])[:40]
    precomputed = {m: rec.recommend(m, 8, "home", now=NOW) for m in members}
    home, rec.home = rec.home, None
    try:
        live = {m: rec.recommend(m, 8, "home", now=NOW) for m in members}
    finally:
        rec.home = home
    same = 0
    for m in members:
        a, b = precomputed[m], live[m]
        assert a.fallback is None and not set(a.product_ids) & _bought(shop, m)
        same += a.product_ids == b.product_ids
        np.testing.assert_allclose(
            sorted(i["score"] for i in a.items), sorted(i["score"] for i in b.items), atol=1e-4
        )
        points_live = {i["product_id"]: i["points_to_earn"] for i in b.items}
        for item in a.items:
            assert item["points_to_earn"] is not None
            if item["product_id"] in points_live:
                assert item["points_to_earn"] == points_live[item["product_id"]]
        assert {i["reason"] for i in a.items} <= {i["reason"] for i in b.items} | {
            "popular_in_your_categories",
            "popular",
        }
    assert same >= len(members) - 2  # float ties may swap neighbours


def test_precomputed_home_respects_tier_and_falls_back(rec_catpop):
    rec = rec_catpop
    m = "m0"  # normal tier
    assert "gold1" not in rec.recommend(m, 10, "home", now=NOW).product_ids
    # more items than stored: served live, still no repeats, still filtered
    many = rec.recommend(m, 30, "home", now=NOW)
    assert len(set(many.product_ids)) == len(many.items) and "gold1" not in many.product_ids
    # include_purchased differs from the stored lists' policy: served live
    again = rec.recommend("m5", 40, "home", now=NOW, include_purchased=True)
    assert "c0" in again.product_ids


def test_batch_uses_category_popularity_vectorised(rec_catpop, shop):
    members = sorted(shop.members["member_id"])[:30]
    home, rec_catpop.home = rec_catpop.home, None
    try:
        batch = rec_catpop.recommend_batch(members, 6, "home", now=NOW, block_size=7)
        single = {m: rec_catpop.recommend(m, 6, "home", with_points=False) for m in members}
    finally:
        rec_catpop.home = home
    same = sum(
        batch[batch.member_id == m]["product_id"].tolist() == single[m].product_ids for m in members
    )
    assert same >= len(members) - 2
