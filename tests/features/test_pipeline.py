"""Hand-computed feature values on the tiny shop (see fixtures.py), leakage and snapshots."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.contract.io import Dataset, coerce_table
from loyalty_ml.contract.schema import EVENTS, MEMBERS, ORDER_ITEMS, ORDERS
from loyalty_ml.errors import MissingDataError
from loyalty_ml.features.pipeline import (
    available_families,
    build_member_features,
    build_member_features_at,
    build_member_snapshots,
    build_product_features,
)

from .fixtures import T, tiny_dataset

CORE = ["rfm", "engagement", "service", "preferences", "static"]


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    frame = build_member_features(tiny_dataset(), T, families=CORE)
    return frame.set_index("member_id")


def check(frame: pd.DataFrame, member: str, expected: dict[str, object]) -> None:
    for name, want in expected.items():
        got = frame.loc[member, name]
        if want is None:
            assert got is None, f"{member} {name}: {got!r} != None"
        elif isinstance(want, float) and math.isnan(want):
            assert isinstance(got, float) and math.isnan(got), f"{member} {name}: {got!r} != nan"
        elif isinstance(want, str):
            assert got == want, f"{member} {name}: {got!r} != {want!r}"
        else:
            assert got == pytest.approx(want, abs=1e-9), f"{member} {name}: {got!r} != {want!r}"


def test_rows_are_members_known_at_as_of(features: pd.DataFrame) -> None:
    # m3 joins the day after T; the as-of instant is the event timestamp of every row.
    assert list(features.index) == ["m1", "m2"]
    assert (features["event_timestamp"] == pd.Timestamp(T)).all()
    assert str(features["event_timestamp"].dtype) == "datetime64[ns, UTC]"
    cols = list(build_member_features(tiny_dataset(), T, families=CORE).columns)
    assert cols[:2] == ["member_id", "event_timestamp"]
    assert all("__" in c for c in cols[2:])


def test_rfm_window_edges_and_time_zones(features: pd.DataFrame) -> None:
    # Completed m1 orders <= T: o1 01-01 10:00 (100), o2 03-01 12:00 (50, disc 10) = T-30d,
    # o6 03-31 11:30 UTC (written +02:00; 20, coupon), o3 = T (30). o4 is 1 s after T.
    check(
        features,
        "m1",
        {
            "rfm__orders_7d": 2,  # o6, o3
            "rfm__spend_7d": 50.0,
            "rfm__aov_7d": 25.0,
            "rfm__discount_share_7d": 0.0,
            "rfm__orders_30d": 2,  # o2 sits exactly on T-30d: excluded
            "rfm__returned_share_30d": 1 / 3,  # o5 returned 03-20
            "rfm__orders_90d": 3,  # T-90d = 01-01 12:00: o1 (10:00) excluded
            "rfm__spend_90d": 100.0,
            "rfm__aov_90d": 100 / 3,
            "rfm__discount_share_90d": 10 / 110,
            "rfm__returned_share_90d": 1 / 4,
            "rfm__orders_365d": 4,
            "rfm__spend_365d": 200.0,
            "rfm__discount_share_365d": 10 / 210,
            "rfm__orders_lifetime": 4,
            "rfm__spend_lifetime": 200.0,
            "rfm__days_since_last_order": 0.0,
            "rfm__days_since_first_order": 90 + 2 / 24,
            "rfm__ipi_mean_days": (90 + 2 / 24) / 3,
            # last gap 30 min minus the mean earlier gap ((90 d + 1.5 h) / 2)
            "rfm__ipi_trend_days": 0.5 / 24 - (90 + 1.5 / 24) / 2,
        },
    )
    check(
        features,
        "m2",
        {
            "rfm__orders_30d": 0,
            "rfm__spend_30d": 0.0,
            "rfm__aov_30d": float("nan"),
            "rfm__returned_share_30d": float("nan"),
            "rfm__days_since_last_order": float("nan"),
            "rfm__ipi_mean_days": float("nan"),
        },
    )


def test_engagement(features: pd.DataFrame) -> None:
    check(
        features,
        "m1",
        {
            "engagement__logins_7d": 1,  # at T; the one 1 s later is ignored
            "engagement__logins_30d": 1,  # 03-01 12:00 = T-30d excluded
            "engagement__logins_90d": 2,
            "engagement__views_7d": 1,
            "engagement__carts_7d": 1,
            "engagement__carts_30d": 2,
            "engagement__checkins_7d": 1,
            "engagement__cart_abandonment_30d": 0.0,  # 2 carts, 2 completed orders
            # Quiet visit days: 03-25 and 03-10; 03-31 and 03-01 had orders.
            "engagement__visit_days_without_order_30d": 2,
            "engagement__message_open_rate_30d": 0.5,
            "engagement__message_open_rate_90d": 2 / 3,
            "engagement__message_open_rate_trend": 0.5 - 1.0,
            "engagement__unsubscribes_90d": 0,  # the unsubscribe is after T
            "engagement__unsubscribed_ever": 0,
            "engagement__days_since_last_login": 0.0,
        },
    )
    check(
        features,
        "m2",
        {
            "engagement__logins_7d": 1,
            "engagement__reviews_7d": 1,  # 03-29 10:00 +09:00 = 01:00 UTC
            "engagement__cart_abandonment_30d": 1.0,
            # The 03-30 cart day had a (cancelled) order; 03-31 is not over at T.
            "engagement__visit_days_without_order_30d": 0,
            "engagement__message_open_rate_30d": float("nan"),
            "engagement__unsubscribes_90d": 1,
            "engagement__unsubscribed_ever": 1,
            "engagement__days_since_last_login": 4 / 24,
        },
    )


def test_service(features: pd.DataFrame) -> None:
    check(
        features,
        "m1",
        {
            "service__tickets_30d": 1,
            "service__tickets_365d": 1,  # 2023-04-01 12:00 = T-365d (leap year): excluded
            "service__return_requests_30d": 1,
            "service__returned_orders_30d": 1,
            "service__days_since_last_ticket": 16.5,
        },
    )
    check(
        features,
        "m2",
        {"service__tickets_365d": 0, "service__days_since_last_ticket": float("nan")},
    )


def test_preferences(features: pd.DataFrame) -> None:
    # Spend 365d: shoes 100 (o1), bags 50 + 20 + 30: a tie goes to the first name, bags.
    # Catalogue at T: p1 100, p2 20 (p3 launches later) -> bands 46.4 / 73.6.
    check(
        features,
        "m1",
        {
            "preferences__top_category": "bags",
            "preferences__top_category_share": 0.5,
            "preferences__avg_unit_price_365d": 200 / 5,
            "preferences__price_band": "low",
            "preferences__coupon_share_365d": 0.25,
        },
    )
    check(
        features,
        "m2",
        {
            "preferences__top_category": None,
            "preferences__price_band": None,
            "preferences__coupon_share_365d": float("nan"),
        },
    )


def test_static_excludes_sensitive_attributes(features: pd.DataFrame) -> None:
    check(
        features,
        "m1",
        {
            "static__tenure_days": 91.0,
            "static__region": "north",
            "static__acquisition_channel": "ads",
            "static__segment": "vip",
        },
    )
    check(features, "m2", {"static__tenure_days": 45 + 7 / 24, "static__segment": None})
    assert not [c for c in features.columns if "gender" in c or "birth" in c]


def test_product_features() -> None:
    frame = build_product_features(tiny_dataset(), T).set_index("product_id")
    assert list(frame.index) == ["p1", "p2"]  # p3 launches after T
    check(
        frame,
        "p2",
        {
            "product__orders_7d": 2,
            "product__units_30d": 2.0,  # o2 on the 30-day edge excluded
            "product__orders_90d": 3,
            "product__units_90d": 4.0,
            "product__price": 20.0,
            "product__category": "bags",
            "product__min_tier": "gold",
            "product__days_since_launch": float("nan"),
        },
    )
    check(frame, "p1", {"product__orders_90d": 0, "product__days_since_launch": 455.5})


def _append_future(ds: Dataset) -> Dataset:
    later = "2024-03-31T12:00:00.000001Z"
    extra_orders = coerce_table(
        pd.DataFrame(
            {
                "order_id": ["f1", "f2", "f3"],
                "member_id": ["m1", "m2", "m3"],
                "ordered_at": [later, "2024-06-01", "2024-04-02"],
                "amount": [1e6, 5.0, 7.0],
                "status": ["completed", "returned", "completed"],
                "coupon_id": ["c9", None, None],
            }
        ),
        ORDERS,
    )
    extra_items = coerce_table(
        pd.DataFrame(
            {"order_id": ["f1"], "product_id": ["p1"], "quantity": [9], "unit_price": [1e5]}
        ),
        ORDER_ITEMS,
    )
    extra_events = coerce_table(
        pd.DataFrame(
            {
                "member_id": ["m1", "m1", "m2", "m2"],
                "occurred_at": [later, "2024-04-01", "2024-05-01", later],
                "event_type": ["message_open", "service_ticket", "login", "unsubscribe"],
            }
        ),
        EVENTS,
    )
    extra_members = coerce_table(
        pd.DataFrame({"member_id": ["m9"], "joined_at": ["2024-04-03"]}), MEMBERS
    )
    return Dataset(
        members=pd.concat([ds.members, extra_members], ignore_index=True),
        orders=pd.concat([extra_orders, ds.orders], ignore_index=True),
        order_items=pd.concat([ds.order_items, extra_items], ignore_index=True),
        products=ds.products,
        events=pd.concat([ds.events, extra_events], ignore_index=True),
    )


def test_no_leakage_from_future_rows() -> None:
    ds = tiny_dataset()
    before = build_member_features(ds, T, families=CORE)
    after = build_member_features(_append_future(ds), T, families=CORE)
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    p_before = build_product_features(ds, T)
    p_after = build_product_features(_append_future(ds), T)
    pd.testing.assert_frame_equal(p_before, p_after, check_exact=True)


def test_snapshots_equal_single_builds() -> None:
    ds = tiny_dataset()
    instants = ["2024-02-01", T, "2024-04-06T00:00:00+02:00"]
    stacked = build_member_snapshots(ds, instants, families=CORE)
    singles = pd.concat(
        [build_member_features(ds, t, families=CORE) for t in instants], ignore_index=True
    )
    pd.testing.assert_frame_equal(stacked, singles, check_exact=True)
    # 2024-02-01: only m1 had joined; T: m1, m2; 04-05 22:00 UTC: all three.
    assert stacked.groupby("event_timestamp").size().tolist() == [1, 2, 3]


def test_features_at_arbitrary_entity_rows() -> None:
    ds = tiny_dataset()
    entities = pd.DataFrame(
        {"member_id": ["m2", "m1"], "event_timestamp": [T, "2024-03-31T11:59:59Z"]}
    )
    rows = build_member_features_at(ds, entities, families=["rfm"])
    assert rows["member_id"].tolist() == ["m2", "m1"]
    # One second before T: o3 is not there yet.
    assert rows.loc[1, "rfm__orders_7d"] == 1
    with pytest.raises(MissingDataError, match="had not joined"):
        build_member_features_at(
            ds, pd.DataFrame({"member_id": ["m3"], "event_timestamp": [T]}), families=["rfm"]
        )
    with pytest.raises(MissingDataError, match="unknown member_id"):
        build_member_features_at(
            ds, pd.DataFrame({"member_id": ["zz"], "event_timestamp": [T]}), families=["rfm"]
        )


def test_missing_optional_tables_degrade() -> None:
    ds = tiny_dataset(with_events=False, with_items=False)
    status = available_families(ds)
    assert {"rfm", "static"} <= set(status.available)
    assert status.absent["engagement"] == "no events table"
    assert status.absent["preferences"] == "no order_items, products table"
    frame = build_member_features(ds, T)
    assert not [c for c in frame.columns if c.startswith(("engagement__", "service__"))]
    assert "rfm__orders_30d" in frame.columns
    with pytest.raises(MissingDataError, match="engagement unavailable: no events table"):
        build_member_features(ds, T, families=["engagement"])
    with pytest.raises(MissingDataError, match="unknown feature family"):
        build_member_features(ds, T, families=["nope"])
    with pytest.raises(MissingDataError, match="product features"):
        build_product_features(ds, T)


def test_counts_are_integers_and_no_nan_in_counts(features: pd.DataFrame) -> None:
    for col in ("rfm__orders_30d", "engagement__logins_30d", "service__tickets_30d"):
        assert features[col].dtype == np.int64


def test_loyalty_state_comes_from_policy_replay() -> None:
    from loyalty_ml.policy.replay import member_state

    ds = tiny_dataset()
    frame = build_member_features(ds, T, families=["loyalty"]).set_index("member_id")
    for member in ("m1", "m2"):
        state = member_state(ds, member, T)
        row = frame.loc[member]
        assert row["loyalty__tier"] == state["tier"]
        assert row["loyalty__points_balance"] == state["points_balance"]
        assert row["loyalty__growth_value"] == pytest.approx(state["growth_value"])
        assert row["loyalty__distance_to_next_tier"] == pytest.approx(
            state["distance_to_next_tier"]
        )
        assert row["loyalty__downgrade_warning"] == int(state["downgrade_warning"])
    # birth_month derives from the sensitive birth_date: never a feature.
    assert not [c for c in frame.columns if "birth" in c]
    before = build_member_features(ds, T, families=["loyalty"])
    after = build_member_features(_append_future(ds), T, families=["loyalty"])
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_chunked_build_equals_one_pass() -> None:
    """Members in chunks (each with only its own activity) give exactly the one-pass frame."""
    ds = tiny_dataset()
    instants = ["2024-02-01", T, "2024-04-06T00:00:00+02:00"]
    whole = build_member_snapshots(ds, instants, chunk_members=10)
    for chunk in (1, 2):
        chunked = build_member_snapshots(ds, instants, chunk_members=chunk)
        pd.testing.assert_frame_equal(chunked, whole, check_exact=True)


def test_chunked_build_equals_one_pass_on_a_simulated_shop() -> None:
    from loyalty_ml.simulate.api import simulate
    from loyalty_ml.simulate.config import load_config

    ds = simulate(load_config().model_copy(update={"members": 300}))[0]
    t = ds.latest_timestamp()
    whole = build_member_features(ds, t, chunk_members=1000)
    assert len(whole) > 200 and whole["loyalty__points_balance"].gt(0).any()
    chunked = build_member_features(ds, t, chunk_members=70)
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
