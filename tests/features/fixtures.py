"""A tiny shop whose feature values are computed by hand in the tests.

As-of T = 2024-03-31 12:00 UTC. Timestamps are written as strings in several time zones and go
through the contract's own coercion, as real input would.
"""

from __future__ import annotations

import pandas as pd

from loyalty_ml.contract.io import Dataset, coerce_table
from loyalty_ml.contract.schema import EVENTS, MEMBERS, ORDER_ITEMS, ORDERS, PRODUCTS

T = "2024-03-31T12:00:00Z"

MEMBERS_RAW = [
    # member_id, joined_at, region, gender, birth_date, acquisition_channel, segment (extra)
    ("m1", "2023-12-31T12:00:00Z", "north", "f", "1990-01-01", "ads", "vip"),
    ("m2", "2024-02-15T00:00:00-05:00", "south", "m", "1985-05-05", "organic", None),
    ("m3", "2024-04-01T00:00:00Z", "north", "f", "2000-01-01", "ads", "new"),  # joins after T
]

ORDERS_RAW = [
    # order_id, member_id, ordered_at, amount, discount, status, coupon_id
    ("o1", "m1", "2024-01-01T10:00:00Z", 100.0, 0.0, "completed", None),
    ("o2", "m1", "2024-03-01T12:00:00Z", 50.0, 10.0, "completed", None),  # = T - 30 days
    ("o3", "m1", "2024-03-31T12:00:00Z", 30.0, 0.0, "completed", None),  # = T (inclusive)
    ("o4", "m1", "2024-03-31T12:00:01Z", 999.0, 0.0, "completed", None),  # 1 s after T
    ("o5", "m1", "2024-03-20T00:00:00Z", 40.0, 0.0, "returned", None),
    ("o6", "m1", "2024-03-31T13:30:00+02:00", 20.0, 0.0, "completed", "c1"),  # 11:30 UTC
    ("o7", "m2", "2024-04-05T00:00:00Z", 10.0, 0.0, "completed", None),  # future
    ("o8", "m2", "2024-03-30T00:00:00Z", 15.0, 0.0, "cancelled", None),
]

ITEMS_RAW = [
    ("o1", "p1", 1, 100.0),
    ("o2", "p2", 2, 25.0),
    ("o6", "p2", 1, 20.0),
    ("o3", "p2", 1, 30.0),
    ("o5", "p1", 1, 40.0),  # returned order: not a preference
    ("o4", "p1", 5, 100.0),  # future
]

PRODUCTS_RAW = [
    # product_id, category, price, min_tier, launched_at
    ("p1", "shoes", 100.0, None, "2023-01-01T00:00:00Z"),
    ("p2", "bags", 20.0, "gold", None),
    ("p3", "hats", 50.0, None, "2024-04-10T00:00:00Z"),  # launched after T
]

EVENTS_RAW = [
    # member_id, occurred_at, event_type
    ("m1", "2024-03-31T12:00:00Z", "login"),
    ("m1", "2024-03-31T12:00:01Z", "login"),  # future
    ("m1", "2024-03-01T12:00:00Z", "login"),  # = T - 30 days: outside 30d, inside 90d
    ("m1", "2024-03-25T08:00:00Z", "view"),
    ("m1", "2024-03-25T08:05:00Z", "cart"),
    ("m1", "2024-03-10T09:00:00Z", "cart"),
    ("m1", "2024-03-31T06:00:00Z", "checkin"),
    ("m1", "2024-02-15T09:00:00Z", "message_sent"),
    ("m1", "2024-02-16T09:00:00Z", "message_open"),
    ("m1", "2024-03-05T09:00:00Z", "message_sent"),
    ("m1", "2024-03-20T09:00:00Z", "message_sent"),
    ("m1", "2024-03-20T10:00:00Z", "message_open"),
    ("m1", "2024-04-02T00:00:00Z", "unsubscribe"),  # future
    ("m1", "2023-04-01T12:00:00Z", "service_ticket"),  # = T - 365 days: outside
    ("m1", "2024-03-15T00:00:00Z", "service_ticket"),
    ("m1", "2024-03-19T00:00:00Z", "return_request"),
    ("m2", "2024-03-31T08:00:00Z", "login"),  # its day is not over at T
    ("m2", "2024-03-30T10:00:00Z", "cart"),
    ("m2", "2024-03-29T10:00:00+09:00", "review"),  # 01:00 UTC
    ("m2", "2024-03-01T00:00:00Z", "unsubscribe"),
]


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def tiny_dataset(with_events: bool = True, with_items: bool = True) -> Dataset:
    members = coerce_table(
        _frame(
            MEMBERS_RAW,
            [
                "member_id",
                "joined_at",
                "region",
                "gender",
                "birth_date",
                "acquisition_channel",
                "segment",
            ],
        ),
        MEMBERS,
    )
    orders = coerce_table(
        _frame(
            ORDERS_RAW,
            ["order_id", "member_id", "ordered_at", "amount", "discount", "status", "coupon_id"],
        ),
        ORDERS,
    )
    ds = Dataset(members=members, orders=orders, name="tiny")
    if with_items:
        ds.order_items = coerce_table(
            _frame(ITEMS_RAW, ["order_id", "product_id", "quantity", "unit_price"]), ORDER_ITEMS
        )
        ds.products = coerce_table(
            _frame(PRODUCTS_RAW, ["product_id", "category", "price", "min_tier", "launched_at"]),
            PRODUCTS,
        )
    if with_events:
        ds.events = coerce_table(
            _frame(EVENTS_RAW, ["member_id", "occurred_at", "event_type"]), EVENTS
        )
    return ds
