"""Table specifications of the public input contract (see README, "Data contract").

Each table is ``<name>.parquet`` or ``<name>.csv`` in one directory. Ids are strings everywhere;
naive timestamps are UTC. Only ``members`` and ``orders`` are mandatory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "string", "timestamp", "date", "float", "int", "bool01"]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: Kind
    required: bool = False
    nullable: bool = True
    min_value: float | None = None
    max_value: float | None = None
    # True when min_value itself is not allowed (a propensity of 0 would divide IPS by zero).
    min_exclusive: bool = False
    allowed: tuple[str, ...] | None = None
    default: object | None = None


@dataclass(frozen=True)
class ForeignKey:
    column: str
    table: str
    target_column: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    mandatory: bool = False
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    keep_extra_columns: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")


ORDER_STATUSES = ("completed", "returned", "cancelled")
EVENT_TYPES = (
    "login",
    "view",
    "cart",
    "review",
    "share",
    "checkin",
    "referral",
    "service_ticket",
    "return_request",
    "message_sent",
    "message_open",
    "unsubscribe",
)
CONTROL_BENEFIT = "none"

MEMBERS = TableSpec(
    name="members",
    mandatory=True,
    primary_key=("member_id",),
    keep_extra_columns=True,
    columns=(
        ColumnSpec("member_id", "id", required=True, nullable=False),
        ColumnSpec("joined_at", "timestamp", required=True, nullable=False),
        ColumnSpec("birth_date", "date"),
        ColumnSpec("region", "string"),
        ColumnSpec("gender", "string"),
        ColumnSpec("acquisition_channel", "string"),
    ),
)

ORDERS = TableSpec(
    name="orders",
    mandatory=True,
    primary_key=("order_id",),
    foreign_keys=(ForeignKey("member_id", "members", "member_id"),),
    columns=(
        ColumnSpec("order_id", "id", required=True, nullable=False),
        ColumnSpec("member_id", "id", required=True, nullable=False),
        ColumnSpec("ordered_at", "timestamp", required=True, nullable=False),
        ColumnSpec("amount", "float", required=True, nullable=False, min_value=0.0),
        ColumnSpec("discount", "float", min_value=0.0, default=0.0),
        ColumnSpec("status", "string", allowed=ORDER_STATUSES, default="completed"),
        ColumnSpec("coupon_id", "id"),
        ColumnSpec("channel", "string"),
    ),
)

ORDER_ITEMS = TableSpec(
    name="order_items",
    primary_key=("order_id", "product_id"),
    foreign_keys=(
        ForeignKey("order_id", "orders", "order_id"),
        ForeignKey("product_id", "products", "product_id"),
    ),
    columns=(
        ColumnSpec("order_id", "id", required=True, nullable=False),
        ColumnSpec("product_id", "id", required=True, nullable=False),
        ColumnSpec("quantity", "int", required=True, nullable=False, min_value=1),
        ColumnSpec("unit_price", "float", required=True, nullable=False, min_value=0.0),
    ),
)

PRODUCTS = TableSpec(
    name="products",
    primary_key=("product_id",),
    columns=(
        ColumnSpec("product_id", "id", required=True, nullable=False),
        ColumnSpec("category", "string", required=True),
        ColumnSpec("price", "float", required=True, nullable=False, min_value=0.0),
        ColumnSpec("brand", "string"),
        ColumnSpec("cost", "float", min_value=0.0),
        ColumnSpec("min_tier", "string"),
        ColumnSpec("launched_at", "timestamp"),
    ),
)

EVENTS = TableSpec(
    name="events",
    foreign_keys=(
        ForeignKey("member_id", "members", "member_id"),
        ForeignKey("product_id", "products", "product_id"),
    ),
    columns=(
        ColumnSpec("member_id", "id", required=True, nullable=False),
        ColumnSpec("occurred_at", "timestamp", required=True, nullable=False),
        ColumnSpec("event_type", "string", required=True, nullable=False, allowed=EVENT_TYPES),
        ColumnSpec("product_id", "id"),
        ColumnSpec("value", "float"),
    ),
)

OFFERS = TableSpec(
    name="offers",
    primary_key=("offer_id",),
    foreign_keys=(ForeignKey("member_id", "members", "member_id"),),
    columns=(
        ColumnSpec("offer_id", "id", required=True, nullable=False),
        ColumnSpec("member_id", "id", required=True, nullable=False),
        ColumnSpec("offered_at", "timestamp", required=True, nullable=False),
        ColumnSpec("benefit_id", "id", required=True, nullable=False),
        ColumnSpec("channel", "string"),
        ColumnSpec("cost", "float", min_value=0.0),
        # Probability the logging policy chose this benefit: IPS needs it in (0, 1].
        ColumnSpec("propensity", "float", min_value=0.0, max_value=1.0, min_exclusive=True),
        ColumnSpec("converted", "bool01"),
        ColumnSpec("revenue", "float", min_value=0.0),
    ),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (MEMBERS, ORDERS, ORDER_ITEMS, PRODUCTS, EVENTS, OFFERS)
}
TABLE_ORDER: tuple[str, ...] = tuple(TABLES)
