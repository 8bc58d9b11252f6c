"""Member and product features at an as-of instant, computed only from data known at that instant.

Public entry points:

- ``build_member_features(dataset, as_of)``: one row per member with ``joined_at <= as_of``.
- ``build_member_snapshots(dataset, as_ofs)``: the same for several instants, stacked.
- ``build_member_features_at(dataset, entities)``: one row per (member_id, event_timestamp) pair.
- ``build_product_features(dataset, as_of)``: one row per product launched by ``as_of``.
- ``available_families(dataset)``: which families this data set supports, and why not.

Columns are ``member_id``, ``event_timestamp`` then ``<family>__<name>``. Windows are trailing and
inclusive of the as-of instant, ``(as_of - N days, as_of]``. Everything is a vectorised look-up in
a :class:`TimeIndex` (pandas + NumPy binary search): measured faster than the equivalent DuckDB
range join for snapshots (see docs/features.md), and exact per member.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from loyalty_ml.contract.io import Dataset
from loyalty_ml.errors import MissingDataError
from loyalty_ml.features.config import FeaturesConfig, load_features_config
from loyalty_ml.features.timeindex import NS_PER_DAY, TimeIndex, ratio, ts_ns
from loyalty_ml.timeutil import to_utc, utc_series

ENTITY_COLUMNS = ("member_id", "event_timestamp")
FAMILY_ORDER = ("rfm", "engagement", "service", "preferences", "static", "loyalty")
VISIT_EVENTS = ("login", "view", "cart")
ENGAGEMENT_COUNTS = ("login", "view", "cart", "review", "share", "checkin")
COLUMN_PLURAL = {
    "login": "logins",
    "view": "views",
    "cart": "carts",
    "review": "reviews",
    "share": "shares",
    "checkin": "checkins",
    "service_ticket": "tickets",
    "return_request": "return_requests",
}

Columns = dict[str, np.ndarray]


@dataclass
class Queries:
    """A batch of (member, instant) look-ups: codes index ``Context.member_ids``."""

    codes: np.ndarray
    t_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


@dataclass
class Context:
    """The data set prepared once (codes, sorted indexes), shared by every family and query."""

    dataset: Dataset
    config: FeaturesConfig
    _cache: dict[str, object] = field(default_factory=dict)

    @cached_property
    def member_ids(self) -> pd.Index:
        ids = self.dataset.members["member_id"]
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].iloc[0]
            raise MissingDataError(f"members: duplicate member_id {dup!r}")
        return pd.Index(ids.astype(str).to_numpy(), dtype=object)

    @cached_property
    def joined_ns(self) -> np.ndarray:
        return ts_ns(self.dataset.members["joined_at"])

    def member_codes(self, ids: pd.Series) -> np.ndarray:
        return self.member_ids.get_indexer(ids.astype(str).to_numpy()).astype(np.int64)

    @cached_property
    def orders(self) -> pd.DataFrame:
        o = self.dataset.orders
        return pd.DataFrame(
            {
                "code": self.member_codes(o["member_id"]),
                "t": ts_ns(o["ordered_at"]),
                "amount": o["amount"].to_numpy(np.float64),
                "discount": o["discount"].fillna(0.0).to_numpy(np.float64),
                "status": o["status"].astype(str).to_numpy(),
                "coupon": o["coupon_id"].notna().to_numpy(),
                "order_id": o["order_id"].astype(str).to_numpy(),
            }
        )

    @cached_property
    def completed(self) -> TimeIndex:
        o = self.orders[self.orders["status"] == "completed"]
        return TimeIndex(
            o["code"].to_numpy(),
            o["t"].to_numpy(),
            {
                "amount": o["amount"].to_numpy(),
                "discount": o["discount"].to_numpy(),
                "coupon": o["coupon"].to_numpy(np.float64),
            },
        )

    @cached_property
    def returned(self) -> TimeIndex:
        o = self.orders[self.orders["status"] == "returned"]
        return TimeIndex(o["code"].to_numpy(), o["t"].to_numpy())

    @cached_property
    def events(self) -> dict[str, TimeIndex]:
        ev = self.dataset.events
        assert ev is not None
        codes = self.member_codes(ev["member_id"])
        times = ts_ns(ev["occurred_at"])
        # factorize hashes; np.unique would sort a million strings (seconds).
        kind_codes, kinds = pd.factorize(ev["event_type"].astype(str))
        order = np.argsort(kind_codes, kind="stable")
        bounds = np.searchsorted(kind_codes[order], np.arange(len(kinds) + 1))
        out = {}
        for i, kind in enumerate(kinds):
            sel = order[bounds[i] : bounds[i + 1]]
            out[str(kind)] = TimeIndex(codes[sel], times[sel])
        return out

    def event_index(self, kind: str) -> TimeIndex:
        return self.events.get(kind) or TimeIndex(np.empty(0, np.int64), np.empty(0, np.int64))

    @cached_property
    def visit_days_without_order(self) -> TimeIndex:
        """UTC days with a visit (login/view/cart) and no order, stamped at the day's end.

        Stamping at the end of the day means a day counts only once it is over, so an order later
        that same day can never leak into a snapshot taken during the day.
        """
        ev = self.dataset.events
        assert ev is not None
        visits = ev[ev["event_type"].isin(VISIT_EVENTS)]
        v_days = pd.DataFrame(
            {
                "code": self.member_codes(visits["member_id"]),
                "day": ts_ns(visits["occurred_at"]) // NS_PER_DAY,
            }
        ).drop_duplicates()
        o_days = pd.DataFrame(
            {"code": self.orders["code"], "day": self.orders["t"] // NS_PER_DAY, "o": True}
        ).drop_duplicates()
        merged = v_days.merge(o_days, on=["code", "day"], how="left")
        quiet = merged[merged["o"].isna()]
        return TimeIndex(quiet["code"].to_numpy(), (quiet["day"].to_numpy() + 1) * NS_PER_DAY)

    @cached_property
    def items(self) -> pd.DataFrame:
        """Completed-order items with member code, time, spend and category."""
        ds = self.dataset
        assert ds.order_items is not None and ds.products is not None
        o = self.orders[self.orders["status"] == "completed"][["order_id", "code", "t"]]
        it = ds.order_items[["order_id", "product_id", "quantity", "unit_price"]].copy()
        it["order_id"] = it["order_id"].astype(str)
        it["product_id"] = it["product_id"].astype(str)
        it = it.merge(o, on="order_id", how="inner")
        cats = ds.products[["product_id", "category"]].copy()
        cats["product_id"] = cats["product_id"].astype(str)
        it = it.merge(cats, on="product_id", how="left")
        it["category"] = it["category"].astype(object).where(it["category"].notna(), "unknown")
        it["quantity"] = it["quantity"].astype("float64").fillna(0.0)
        it["spend"] = it["quantity"] * it["unit_price"].astype("float64")
        return it

    @cached_property
    def item_index(self) -> TimeIndex:
        it = self.items
        return TimeIndex(
            it["code"].to_numpy(),
            it["t"].to_numpy(),
            {"spend": it["spend"].to_numpy(), "qty": it["quantity"].to_numpy()},
        )


# --------------------------------------------------------------------------------------------
# Families: each maps a batch of queries to named feature columns (without the family prefix).


def _days_between(later_ns: np.ndarray, earlier_ns: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.full(len(later_ns), np.nan)
    out[valid] = (later_ns[valid] - earlier_ns[valid]) / NS_PER_DAY
    return out


def rfm_features(ctx: Context, q: Queries) -> Columns:
    """Completed-order recency, frequency and monetary value; returned-order share."""
    cols: Columns = {}
    idx, ret = ctx.completed, ctx.returned
    for w in ctx.config.windows.rfm:
        win = idx.window(q.codes, q.t_ns, w)
        n, spend, disc = win.count, win.sum("amount"), win.sum("discount")
        n_ret = ret.window(q.codes, q.t_ns, w).count
        cols[f"orders_{w}d"] = n
        cols[f"spend_{w}d"] = spend
        cols[f"aov_{w}d"] = ratio(spend, n)
        # amount is what the member paid; amount + discount is the list value of the basket.
        cols[f"discount_share_{w}d"] = ratio(disc, spend + disc)
        cols[f"returned_share_{w}d"] = ratio(n_ret, n + n_ret)
    start = idx.start(q.codes)
    pos = idx.upto(q.codes, q.t_ns)
    n = (pos - start).astype(np.int64)
    cols["orders_lifetime"] = n
    cols["spend_lifetime"] = np.where(n > 0, idx.sum_before("amount", pos, start), 0.0)
    has = n >= 1
    times = idx.times if len(idx) else np.zeros(1, np.int64)
    last = times[np.clip(pos - 1, 0, len(times) - 1)]
    first = times[np.clip(start, 0, len(times) - 1)]
    prev = times[np.clip(pos - 2, 0, len(times) - 1)]
    cols["days_since_last_order"] = _days_between(q.t_ns, last, has)
    cols["days_since_first_order"] = _days_between(q.t_ns, first, has)
    mean_ipi = np.full(len(q), np.nan)
    two = n >= 2
    mean_ipi[two] = (last[two] - first[two]) / (n[two] - 1) / NS_PER_DAY
    cols["ipi_mean_days"] = mean_ipi
    # Trend: the latest gap minus the mean of the earlier gaps; > 0 means buying slows down.
    trend = np.full(len(q), np.nan)
    three = n >= 3
    trend[three] = (
        (last[three] - prev[three]) - (prev[three] - first[three]) / (n[three] - 2)
    ) / NS_PER_DAY
    cols["ipi_trend_days"] = trend
    return cols


def engagement_features(ctx: Context, q: Queries) -> Columns:
    """Activity counts, cart abandonment, quiet visit days, messaging response."""
    cols: Columns = {}
    for w in ctx.config.windows.engagement:
        for kind in ENGAGEMENT_COUNTS:
            cols[f"{COLUMN_PLURAL[kind]}_{w}d"] = (
                ctx.event_index(kind).window(q.codes, q.t_ns, w).count
            )
    carts = ctx.event_index("cart").window(q.codes, q.t_ns, 30).count
    orders = ctx.completed.window(q.codes, q.t_ns, 30).count
    # Share of cart additions not followed by a completed order in the same 30 days (floor 0).
    cols["cart_abandonment_30d"] = np.where(
        carts > 0, 1.0 - np.minimum(1.0, ratio(orders, carts)), np.nan
    )
    cols["visit_days_without_order_30d"] = ctx.visit_days_without_order.window(
        q.codes, q.t_ns, 30
    ).count
    sent_i, open_i = ctx.event_index("message_sent"), ctx.event_index("message_open")
    for w in (30, 90):
        cols[f"message_open_rate_{w}d"] = ratio(
            open_i.window(q.codes, q.t_ns, w).count, sent_i.window(q.codes, q.t_ns, w).count
        )
    previous = ratio(
        open_i.window(q.codes, q.t_ns, 30, lag_days=30).count,
        sent_i.window(q.codes, q.t_ns, 30, lag_days=30).count,
    )
    cols["message_open_rate_trend"] = cols["message_open_rate_30d"] - previous
    unsub = ctx.event_index("unsubscribe")
    cols["unsubscribes_90d"] = unsub.window(q.codes, q.t_ns, 90).count
    cols["unsubscribed_ever"] = (unsub.upto(q.codes, q.t_ns) > unsub.start(q.codes)).astype(
        np.int64
    )
    logins = ctx.event_index("login")
    pos, start = logins.upto(q.codes, q.t_ns), logins.start(q.codes)
    times = logins.times if len(logins) else np.zeros(1, np.int64)
    last = times[np.clip(pos - 1, 0, len(times) - 1)]
    cols["days_since_last_login"] = _days_between(q.t_ns, last, pos > start)
    return cols


def service_features(ctx: Context, q: Queries) -> Columns:
    """Service tickets, return requests and returned orders (returned share lives in rfm)."""
    cols: Columns = {}
    for w in ctx.config.windows.service:
        for kind in ("service_ticket", "return_request"):
            cols[f"{COLUMN_PLURAL[kind]}_{w}d"] = (
                ctx.event_index(kind).window(q.codes, q.t_ns, w).count
            )
        cols[f"returned_orders_{w}d"] = ctx.returned.window(q.codes, q.t_ns, w).count
    tickets = ctx.event_index("service_ticket")
    pos, start = tickets.upto(q.codes, q.t_ns), tickets.start(q.codes)
    times = tickets.times if len(tickets) else np.zeros(1, np.int64)
    last = times[np.clip(pos - 1, 0, len(times) - 1)]
    cols["days_since_last_ticket"] = _days_between(q.t_ns, last, pos > start)
    return cols


def _price_band_edges(ctx: Context, t_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Catalogue price quantiles over the products launched by each query's instant."""
    products = ctx.dataset.products
    assert products is not None
    launched = ts_ns(products["launched_at"])
    unknown = launched == np.iinfo(np.int64).min
    launched = np.where(unknown, np.iinfo(np.int64).min + 1, launched)  # undated: always known
    order = np.argsort(launched, kind="stable")
    prices = products["price"].to_numpy(np.float64)[order]
    launched = launched[order]
    known = np.searchsorted(launched, t_ns, side="right")
    lo_q, hi_q = ctx.config.price_band_quantiles
    lo = np.full(len(t_ns), np.nan)
    hi = np.full(len(t_ns), np.nan)
    for k in np.unique(known):
        if k == 0:
            continue
        sel = known == k
        lo[sel], hi[sel] = np.quantile(prices[:k], [lo_q, hi_q])
    return lo, hi


def preferences_features(ctx: Context, q: Queries) -> Columns:
    """Top category and its share of spend, price band, coupon usage (completed orders)."""
    days = ctx.config.windows.preferences_days
    cols: Columns = {}
    items = ctx.items
    member_win = ctx.item_index.window(q.codes, q.t_ns, days)
    total_spend = member_win.sum("spend")
    # Per (member, category) sums for each query: only categories the member ever bought.
    cats = pd.Index(sorted(items["category"].unique()), dtype=object)
    n_cat = max(len(cats), 1)
    pair_code = items["code"].to_numpy() * n_cat + cats.get_indexer(items["category"])
    pair_index = TimeIndex(pair_code, items["t"].to_numpy(), {"spend": items["spend"].to_numpy()})
    pairs = pd.DataFrame(
        {"code": items["code"].to_numpy(), "cat": pair_code % n_cat}
    ).drop_duplicates()
    expanded = pd.DataFrame({"qi": np.arange(len(q)), "code": q.codes, "t": q.t_ns}).merge(
        pairs, on="code", how="inner"
    )
    top_cat = np.full(len(q), None, dtype=object)
    top_share = np.full(len(q), np.nan)
    if len(expanded):
        spend = pair_index.window(
            expanded["code"].to_numpy() * n_cat + expanded["cat"].to_numpy(),
            expanded["t"].to_numpy(),
            days,
        ).sum("spend")
        expanded["spend"] = spend
        expanded["name"] = cats.to_numpy()[expanded["cat"].to_numpy()]
        expanded = expanded[expanded["spend"] > 0]
        # Highest spend wins; ties go to the alphabetically first category (deterministic).
        best = expanded.sort_values(["qi", "spend", "name"], ascending=[True, False, True])
        best = best.drop_duplicates("qi")
        qi = best["qi"].to_numpy()
        top_cat[qi] = best["name"].to_numpy()
        top_share[qi] = best["spend"].to_numpy() / total_spend[qi]
    cols["top_category"] = top_cat
    cols["top_category_share"] = top_share
    avg_price = ratio(total_spend, member_win.sum("qty"))
    cols[f"avg_unit_price_{days}d"] = avg_price
    lo, hi = _price_band_edges(ctx, q.t_ns)
    band = np.full(len(q), None, dtype=object)
    ok = ~np.isnan(avg_price) & ~np.isnan(lo)
    band[ok & (avg_price < lo)] = "low"
    band[ok & (avg_price >= lo) & (avg_price <= hi)] = "mid"
    band[ok & (avg_price > hi)] = "high"
    cols["price_band"] = band
    orders = ctx.completed.window(q.codes, q.t_ns, days)
    cols[f"coupon_share_{days}d"] = ratio(orders.sum("coupon"), orders.count)
    return cols


STATIC_SKIP = ("member_id", "joined_at")


def static_columns(members: pd.DataFrame, config: FeaturesConfig) -> list[str]:
    """Member attributes usable as features: everything but ids, join time and sensitive ones."""
    banned = set(STATIC_SKIP) | set(config.sensitive_attributes)
    return [c for c in members.columns if c not in banned]


def static_features(ctx: Context, q: Queries) -> Columns:
    """Tenure plus the members table's attributes (sensitive attributes are never included)."""
    members = ctx.dataset.members
    cols: Columns = {"tenure_days": (q.t_ns - ctx.joined_ns[q.codes]) / NS_PER_DAY}
    for name in static_columns(members, ctx.config):
        values = members[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            # A raw timestamp is not a feature; its age at the as-of instant is.
            stamp = ts_ns(values)[q.codes]
            valid = stamp != np.iinfo(np.int64).min
            cols[f"{name}_age_days"] = _days_between(q.t_ns, stamp, valid)
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
            cols[name] = values.astype("float64").to_numpy()[q.codes]
        elif pd.api.types.is_float_dtype(values):
            cols[name] = values.to_numpy(np.float64)[q.codes]
        else:
            raw = values.astype(object).to_numpy()[q.codes]
            cols[name] = np.array(
                [
                    None
                    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                    else str(v)
                    for v in raw
                ],
                dtype=object,
            )
    return cols


# --------------------------------------------------------------------------------------------
# Registry: families are pluggable so the loyalty-state family can come from the policy engine.


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[Context, Queries], Columns]
    requires: tuple[str, ...]
    description: str
    available: Callable[[], str | None] = lambda: None


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> None:
    """Add (or replace) a feature family; ``available()`` returns a reason when it cannot run."""
    FAMILIES[family.name] = family


register_family(Family("rfm", rfm_features, ("orders",), "recency, frequency, monetary value"))
register_family(
    Family("engagement", engagement_features, ("events",), "activity and messaging response")
)
register_family(Family("service", service_features, ("events",), "tickets and returns"))
register_family(
    Family(
        "preferences",
        preferences_features,
        ("order_items", "products"),
        "top category, price band, coupon usage",
    )
)
register_family(Family("static", static_features, ("members",), "tenure and member attributes"))


def loyalty_features(ctx: Context, q: Queries) -> Columns:
    """Tier, growth, points and benefit usage from the policy engine's replay at each instant.

    ``birth_month`` is dropped: it derives from ``birth_date``, a sensitive attribute.
    """
    from loyalty_ml.policy.replay import replay

    ids = ctx.member_ids.to_numpy()[q.codes]
    # The replay works in whole seconds; flooring never reads past the query's instant.
    secs = q.t_ns // 1_000_000_000
    pairs = pd.DataFrame(
        {"member_id": ids, "as_of": pd.to_datetime(secs, unit="s", utc=True)}
    ).drop_duplicates()
    state = replay(_ceil_to_seconds(ctx.dataset), snapshots=pairs)
    state["_secs"] = ts_ns(state["as_of"]) // 1_000_000_000
    keyed = pd.DataFrame({"member_id": ids, "_secs": secs}).merge(
        state, on=["member_id", "_secs"], how="left", validate="many_to_one"
    )
    t_ns = q.t_ns

    def days_until(col: str) -> np.ndarray:
        stamp = ts_ns(keyed[col])
        valid = stamp != np.iinfo(np.int64).min
        return -_days_between(t_ns, stamp, valid)

    month_cols = [c for c in keyed.columns if c.startswith("used_month__")]
    year_cols = [c for c in keyed.columns if c.startswith("used_year__")]

    def text(col: str) -> np.ndarray:
        values = keyed[col].astype(object).to_numpy()
        return np.array([None if pd.isna(v) else str(v) for v in values], dtype=object)

    return {
        "tier": text("tier"),
        "tier_index": keyed["tier_index"].to_numpy(np.int64),
        "benefit_tier": text("benefit_tier"),
        "growth_value": keyed["growth_value"].to_numpy(np.float64),
        "behaviour_score": keyed["behaviour_score"].to_numpy(np.float64),
        "next_tier": text("next_tier"),
        "distance_to_next_tier": keyed["distance_to_next_tier"].to_numpy(np.float64),
        "spend_to_next_tier": keyed["spend_to_next_tier"].to_numpy(np.float64),
        "points_balance": keyed["points_balance"].to_numpy(np.int64),
        "points_expiring_30d": keyed["points_expiring_30d"].to_numpy(np.int64),
        "downgrade_warning": keyed["downgrade_warning"].astype(bool).to_numpy(np.int64),
        "in_grace": keyed["in_grace"].astype(bool).to_numpy(np.int64),
        "days_to_grace_end": days_until("grace_ends_at"),
        "months_below_threshold": keyed["months_below_threshold"].to_numpy(np.int64),
        "in_transition": keyed["transition_tier"].notna().to_numpy(np.int64),
        "benefits_used_month": keyed[month_cols].sum(axis=1).to_numpy(np.int64),
        "benefits_used_year": keyed[year_cols].sum(axis=1).to_numpy(np.int64),
    }


def _ceil_to_seconds(dataset: Dataset) -> Dataset:
    """Activity times rounded up to whole seconds for the (second-resolution) replay.

    The replay compares seconds, so an order 1 µs after a snapshot would otherwise count in it.
    Rounding activity up and snapshot instants down can only drop sub-second-early rows, never
    read a later one.
    """
    columns = {"orders": "ordered_at", "events": "occurred_at", "offers": "offered_at"}
    out = copy.copy(dataset)
    for table, col in columns.items():
        frame = getattr(dataset, table)
        if frame is None or not len(frame):
            continue
        ns = ts_ns(frame[col])
        if (ns % 1_000_000_000 != 0).any():
            frame = frame.copy()
            frame[col] = frame[col].dt.ceil("s")
            setattr(out, table, frame)
    return out


def _policy_available() -> str | None:
    try:
        from loyalty_ml.policy.config import load_policy
        from loyalty_ml.policy.replay import replay  # noqa: F401

        load_policy()
    except ImportError:
        return "policy replay not installed"
    except Exception as exc:
        return f"policy configuration unusable: {exc}"
    return None


register_family(
    Family(
        "loyalty",
        loyalty_features,
        ("orders",),
        "tier, growth value, points and benefit usage (policy replay)",
        available=_policy_available,
    )
)


@dataclass(frozen=True)
class FamilyStatus:
    available: tuple[str, ...]
    absent: dict[str, str]

    def describe(self) -> str:
        if not self.absent:
            return "all feature families available"
        return "; ".join(f"{name} absent ({why})" for name, why in self.absent.items())


def _ordered_families() -> list[str]:
    known = [f for f in FAMILY_ORDER if f in FAMILIES]
    return known + [f for f in FAMILIES if f not in known]


def available_families(dataset: Dataset) -> FamilyStatus:
    """Which families this data set supports; absent ones carry the reason (a missing table)."""
    ok, absent = [], {}
    for name in _ordered_families():
        family = FAMILIES[name]
        missing = [t for t in family.requires if getattr(dataset, t, None) is None]
        reason = f"no {', '.join(missing)} table" if missing else family.available()
        if reason:
            absent[name] = reason
        else:
            ok.append(name)
    for name in FAMILY_ORDER:
        if name not in FAMILIES:
            absent[name] = "not installed (its module is not available yet)"
    return FamilyStatus(tuple(ok), absent)


def _resolve(dataset: Dataset, families: Sequence[str] | None) -> list[str]:
    status = available_families(dataset)
    if families is None:
        return list(status.available)
    unknown = [f for f in families if f not in FAMILIES and f not in status.absent]
    if unknown:
        raise MissingDataError(
            f"unknown feature family {unknown[0]!r}; known: {', '.join(_ordered_families())}"
        )
    for name in families:
        if name in status.absent:
            raise MissingDataError(f"feature family {name} unavailable: {status.absent[name]}")
    return list(families)


def _run(ctx: Context, q: Queries, families: Iterable[str], base: pd.DataFrame) -> pd.DataFrame:
    parts = {}
    for name in families:
        for col, values in FAMILIES[name].build(ctx, q).items():
            parts[f"{name}__{col}"] = values
    features = pd.DataFrame(parts, index=base.index)
    return pd.concat([base, features], axis=1)


def _utc_column(t_ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(t_ns, utc=True)).astype("datetime64[ns, UTC]")


def build_member_features_at(
    dataset: Dataset,
    entities: pd.DataFrame,
    families: Sequence[str] | None = None,
    config: FeaturesConfig | None = None,
) -> pd.DataFrame:
    """Features for arbitrary (member_id, event_timestamp) rows, each at its own instant.

    Rows keep the input order. A member unknown at its timestamp (not in members, or joined
    later) raises: asking for features of someone who did not exist yet is a caller bug.
    """
    missing = [c for c in ENTITY_COLUMNS if c not in entities.columns]
    if missing:
        raise MissingDataError(f"entity rows need column(s) {', '.join(missing)}")
    config = config or load_features_config()
    names = _resolve(dataset, families)
    ctx = Context(dataset, config)
    ids = entities["member_id"].astype(str).reset_index(drop=True)
    stamps = utc_series(entities["event_timestamp"]).reset_index(drop=True)
    if stamps.isna().any():
        raise MissingDataError("entity rows: event_timestamp has missing or unparseable values")
    codes = ctx.member_codes(ids)
    if (codes < 0).any():
        raise MissingDataError(f"entity rows: unknown member_id {ids[codes < 0].iloc[0]!r}")
    t_ns = ts_ns(stamps)
    early = t_ns < ctx.joined_ns[codes]
    if early.any():
        raise MissingDataError(
            f"entity rows: member {ids[early].iloc[0]!r} had not joined at {stamps[early].iloc[0]}"
        )
    base = pd.DataFrame({"member_id": ids.to_numpy(), "event_timestamp": _utc_column(t_ns)})
    return _run(ctx, Queries(codes, t_ns), names, base)


# Built over all members at once even when the pipeline chunks: the policy replay's cumulative
# sums (growth value) round differently, at the 1e-14 level, when run per member chunk.
ONE_PASS_FAMILIES = ("loyalty",)


def member_chunk(dataset: Dataset, members: pd.DataFrame) -> Dataset:
    """The data set restricted to ``members`` (rows of its members table) and their activity.

    Products stay whole (catalogue-wide price bands and popularity do not depend on who buys).
    """
    ids = members["member_id"].astype(str)
    keep = pd.Index(ids.to_numpy(), dtype=object)

    def mine(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None:
            return None
        return frame[keep.get_indexer(frame["member_id"].astype(str).to_numpy()) >= 0]

    orders = mine(dataset.orders)
    items = dataset.order_items
    if items is not None:
        order_ids = pd.Index(orders["order_id"].astype(str).to_numpy(), dtype=object)
        items = items[order_ids.get_indexer(items["order_id"].astype(str).to_numpy()) >= 0]
    return dataclasses.replace(
        dataset,
        members=members,
        orders=orders,
        order_items=items,
        events=mine(dataset.events),
        offers=mine(dataset.offers),
    )


def build_member_snapshots(
    dataset: Dataset,
    as_ofs: Iterable[object],
    families: Sequence[str] | None = None,
    config: FeaturesConfig | None = None,
    chunk_members: int | None = None,
) -> pd.DataFrame:
    """Stacked snapshots: for each instant, one row per member known then (joined_at <= t).

    Members are processed ``chunk_members`` at a time (default: ``config.chunk_members``), each
    chunk with only its own members' activity: every feature is per member, so the result is the
    same as in one pass, at a fraction of the peak memory.
    """
    config = config or load_features_config()
    chunk = chunk_members or config.chunk_members
    instants = sorted({to_utc(t).value for t in as_ofs})
    if not instants:
        raise MissingDataError("no as-of instants given")
    members = dataset.members
    names = _resolve(dataset, families)
    per_chunk = [f for f in names if f not in ONE_PASS_FAMILIES]
    if len(members) > chunk and per_chunk:
        parts = []
        for lo in range(0, len(members), chunk):
            sub = member_chunk(dataset, members.iloc[lo : lo + chunk])
            part = build_member_snapshots(sub, instants, per_chunk, config, chunk_members=chunk)
            part["__pos"] = np.arange(len(part))  # row within chunk: instant-major
            part["__chunk"] = lo
            parts.append(part)
            del sub
        out = pd.concat(parts, ignore_index=True)
        del parts
        stamps = ts_ns(out["event_timestamp"])
        # The one-pass order: by instant, then members' order (chunk, then position in it).
        order = np.lexsort((out["__pos"].to_numpy(), out["__chunk"].to_numpy(), stamps))
        out = out.iloc[order].drop(columns=["__pos", "__chunk"]).reset_index(drop=True)
        rest = [f for f in names if f in ONE_PASS_FAMILIES]
        if rest:
            big = len(members) + 1
            whole = build_member_snapshots(dataset, instants, rest, config, chunk_members=big)
            if not np.array_equal(whole["member_id"].to_numpy(), out["member_id"].to_numpy()):
                raise AssertionError("chunked and one-pass member rows differ")  # a bug here
            extra = whole.drop(columns=list(ENTITY_COLUMNS))
            out = pd.concat([out, extra], axis=1)
            prefixes = [f"{f}__" for f in names]
            ordered = sorted(
                out.columns[2:],
                key=lambda c: next(i for i, p in enumerate(prefixes) if c.startswith(p)),
            )
            out = out[[*ENTITY_COLUMNS, *ordered]]
        return out
    ctx = Context(dataset, config)
    n = len(ctx.member_ids)
    codes = np.tile(np.arange(n, dtype=np.int64), len(instants))
    t_ns = np.repeat(np.asarray(instants, dtype=np.int64), n)
    known = ctx.joined_ns[codes] <= t_ns
    codes, t_ns = codes[known], t_ns[known]
    base = pd.DataFrame(
        {"member_id": ctx.member_ids.to_numpy()[codes], "event_timestamp": _utc_column(t_ns)}
    )
    return _run(ctx, Queries(codes, t_ns), names, base)


def build_member_features(
    dataset: Dataset,
    as_of: object,
    families: Sequence[str] | None = None,
    config: FeaturesConfig | None = None,
    chunk_members: int | None = None,
) -> pd.DataFrame:
    """One row per member known at ``as_of`` (inclusive, UTC), features from data up to it."""
    return build_member_snapshots(
        dataset, [as_of], families=families, config=config, chunk_members=chunk_members
    )


# --------------------------------------------------------------------------------------------
# Products


def build_product_features(
    dataset: Dataset, as_of: object, config: FeaturesConfig | None = None
) -> pd.DataFrame:
    """One row per product launched by ``as_of`` (or undated): popularity windows and attributes."""
    dataset.require("products", purpose="product features")
    config = config or load_features_config()
    t = to_utc(as_of)
    products = dataset.products
    assert products is not None
    launched = products["launched_at"]
    keep = launched.isna() | (launched <= t)
    prods = products[keep].reset_index(drop=True)
    ids = pd.Index(prods["product_id"].astype(str).to_numpy(), dtype=object)
    t_ns = np.full(len(prods), t.value, dtype=np.int64)
    codes = np.arange(len(prods), dtype=np.int64)
    out = pd.DataFrame({"product_id": ids.to_numpy(), "event_timestamp": _utc_column(t_ns)})
    if dataset.order_items is not None:
        ctx = Context(dataset, config)
        o = ctx.orders[ctx.orders["status"] == "completed"][["order_id", "code", "t"]]
        it = dataset.order_items[["order_id", "product_id", "quantity"]].copy()
        it["order_id"] = it["order_id"].astype(str)
        it = it.merge(o, on="order_id", how="inner")
        index = TimeIndex(
            ids.get_indexer(it["product_id"].astype(str).to_numpy()),
            it["t"].to_numpy(),
            {"qty": it["quantity"].astype("float64").fillna(0.0).to_numpy()},
        )
        for w in config.windows.products:
            win = index.window(codes, t_ns, w)
            out[f"product__orders_{w}d"] = win.count
            out[f"product__units_{w}d"] = win.sum("qty")
    out["product__price"] = prods["price"].to_numpy(np.float64)
    out["product__category"] = (
        prods["category"].astype(object).where(prods["category"].notna(), None).to_numpy()
    )
    out["product__min_tier"] = (
        prods["min_tier"].astype(object).where(prods["min_tier"].notna(), None).to_numpy()
    )
    stamp = ts_ns(launched[keep])
    out["product__days_since_launch"] = _days_between(t_ns, stamp, stamp != np.iinfo(np.int64).min)
    return out
