from __future__ import annotations

import pandas as pd

from loyalty_ml.churn.features import bgnbd_features, rfm_features
from loyalty_ml.churn.labels import build_label_snapshots, build_labels, snapshot_origins
from loyalty_ml.contract.io import Dataset

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def _ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def _shop(events: pd.DataFrame | None = None) -> Dataset:
    members = pd.DataFrame(
        {
            "member_id": ["buyer", "quiet", "late", "returner", "edge_in", "at_origin", "browser"],
            "joined_at": [_ts("2024-01-01")] * 2 + [_ts("2024-03-15")] + [_ts("2024-01-01")] * 4,
        }
    ).astype({"member_id": "string"})
    orders = pd.DataFrame(
        [
            ("1", "buyer", _ts("2024-03-20"), "completed"),
            ("2", "quiet", _ts("2024-02-01"), "completed"),
            ("3", "late", _ts("2024-03-20"), "completed"),
            ("4", "returner", _ts("2024-03-10"), "returned"),
            ("5", "returner", _ts("2024-03-11"), "cancelled"),
            ("6", "edge_in", T0 + pd.Timedelta(days=30), "completed"),  # last instant of window
            ("7", "at_origin", T0, "completed"),  # at the origin: the past, not the label
            ("8", "buyer", _ts("2024-06-01"), "completed"),  # defines the data end
        ],
        columns=["order_id", "member_id", "ordered_at", "status"],
    ).astype({"order_id": "string", "member_id": "string", "status": "string"})
    orders["amount"] = 10.0
    orders["discount"] = 0.0
    return Dataset(members=members, orders=orders, events=events, name="hand")


def test_labels_on_hand_made_histories() -> None:
    result = build_labels(_shop(), T0, 30)
    labels = dict(zip(result.frame["member_id"], result.frame["churned"], strict=True))
    assert labels == {
        "buyer": 0,
        "quiet": 1,
        "returner": 1,  # returned / cancelled orders are not purchases
        "edge_in": 0,  # window is (origin, origin + H]
        "at_origin": 1,
        "browser": 1,
    }
    assert "late" not in labels  # joined after the origin
    assert result.excluded == {"joined_after_origin": 1, "horizon_incomplete": 0}


def test_incomplete_horizon_is_excluded_and_counted() -> None:
    shop = _shop()
    result = build_labels(shop, _ts("2024-05-15"), 30)  # ends 06-14 > data end 06-01
    assert result.frame.empty
    assert result.excluded["horizon_incomplete"] == 7
    # An explicit data_end makes it complete.
    assert len(build_labels(shop, _ts("2024-05-15"), 30, data_end=_ts("2024-07-01")).frame) == 7


def test_no_activity_definition_counts_member_events_only() -> None:
    events = pd.DataFrame(
        {
            "member_id": ["browser", "quiet"],
            "occurred_at": [_ts("2024-03-05"), _ts("2024-03-06")],
            "event_type": ["view", "message_sent"],
        }
    ).astype({"member_id": "string", "event_type": "string"})
    result = build_labels(_shop(events), T0, 30, definition="no_activity")
    labels = dict(zip(result.frame["member_id"], result.frame["churned"], strict=True))
    assert labels["browser"] == 0
    assert labels["quiet"] == 1  # a message the shop sent is not the member's activity


def test_snapshots_stack_and_sum_exclusions() -> None:
    origins = snapshot_origins(_ts("2024-04-01"), 15, 3)
    assert origins == [_ts("2024-03-02"), _ts("2024-03-17"), _ts("2024-04-01")]
    result = build_label_snapshots(_shop(), origins, 30)
    assert set(result.frame["origin"]) == set(origins)
    assert result.excluded["joined_after_origin"] == 1  # "late" at 03-02 only


def test_features_never_read_after_as_of(tiny_shop: Dataset) -> None:
    as_of = _ts("2024-09-01")
    before = rfm_features(tiny_shop, as_of)
    future = tiny_shop.orders.copy()
    future["ordered_at"] = future["ordered_at"] + pd.Timedelta(days=400)
    shop = Dataset(
        members=tiny_shop.members,
        orders=pd.concat([tiny_shop.orders, future.assign(order_id="f" + future["order_id"])]),
        name="x",
    )
    after = rfm_features(shop, as_of)
    pd.testing.assert_frame_equal(before, after)


def test_observed_days_stop_at_the_data_start() -> None:
    # Members joined 2024-01-01, but the data's first record is the order of 2024-02-01: at T0
    # they have 60 days of tenure and 29 observable days; without members joined before the
    # data start the column would equal tenure and is left out.
    shop = _shop()
    feats = bgnbd_features(shop, T0).set_index("member_id")
    tenure = rfm_features(shop, T0, with_bgnbd=False).set_index("member_id")["rfm__tenure_days"]
    assert tenure["buyer"] == 60
    assert feats.loc["buyer", "window__observed_days"] == 29
    assert feats.loc["quiet", "window__observed_days"] == 29
    first = shop.orders.groupby("member_id")["ordered_at"].min()
    joined_at_first_order = Dataset(
        members=shop.members.assign(
            joined_at=shop.members["member_id"].map(first).fillna(_ts("2024-02-01"))
        ),
        orders=shop.orders,
        name="no-truncation",
    )
    assert "window__observed_days" not in bgnbd_features(joined_at_first_order, T0).columns
