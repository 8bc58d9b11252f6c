"""Hillstrom MineThatData e-mail experiment → members + one synthetic order each + offers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from loyalty_ml.contract.config import AdaptersConfig, HillstromConfig
from loyalty_ml.contract.io import Dataset, coerce_table
from loyalty_ml.contract.schema import CONTROL_BENEFIT, MEMBERS, OFFERS, ORDERS
from loyalty_ml.errors import ContractError

SOURCE = "hillstrom.csv"
ATTRIBUTES = (
    "recency",
    "history_segment",
    "history",
    "mens",
    "womens",
    "zip_code",
    "newbie",
    "channel",
)
_OUTCOMES = ("segment", "visit", "conversion", "spend")


def notes(config: AdaptersConfig) -> list[str]:
    cfg = config.hillstrom
    arms = ", ".join(f"{arm!r} → {benefit}" for arm, benefit in cfg.arms.items())
    return [
        "member_id = 1-based row number of hillstrom.csv",
        f"pre-treatment columns kept as member attributes: {', '.join(ATTRIBUTES)}",
        f"SYNTHETIC: every offer is dated {cfg.offer_date} (configurable; the file has no dates)",
        "SYNTHETIC: one order per member, amount = history (past-year spend), dated `recency` "
        "months before the offer; joined_at = that order's date",
        f"offers: arms {arms}; propensity = 1/{len(cfg.arms)} (randomised equally); "
        "converted = visit, revenue = spend (two-week window); conversion is not carried",
    ]


def convert_frame(raw: pd.DataFrame, cfg: HillstromConfig) -> Dataset:
    """Pure conversion of the parsed Hillstrom table."""
    missing = [c for c in (*ATTRIBUTES, *_OUTCOMES) if c not in raw.columns]
    if missing:
        raise ContractError(f"Hillstrom: missing column(s) {', '.join(missing)}")
    unknown = sorted(set(raw["segment"].dropna()) - set(cfg.arms))
    if unknown:
        raise ContractError(f"Hillstrom: segment(s) {unknown} have no benefit in data.yaml arms")
    raw = raw.reset_index(drop=True)
    member_id = pd.Series(range(1, len(raw) + 1)).astype("string")
    offer_at = pd.Timestamp(cfg.offer_date, tz="UTC")
    # Only twelve distinct recencies: calendar-month arithmetic per value, then a lookup.
    months = {int(m): offer_at - pd.DateOffset(months=int(m)) for m in raw["recency"].unique()}
    ordered_at = raw["recency"].astype(int).map(months)

    members = pd.DataFrame({"member_id": member_id, "joined_at": ordered_at})
    for column in ATTRIBUTES:
        members[column] = raw[column].to_numpy()
    orders = pd.DataFrame(
        {
            "order_id": member_id + "-history",
            "member_id": member_id,
            "ordered_at": ordered_at,
            "amount": raw["history"].astype("float64"),
            "status": "completed",
        }
    )
    benefit = raw["segment"].map(cfg.arms)
    control = benefit == CONTROL_BENEFIT
    offers = pd.DataFrame(
        {
            "offer_id": member_id + "-offer",
            "member_id": member_id,
            "offered_at": offer_at,
            "benefit_id": benefit,
            "channel": pd.Series(cfg.offer_channel, index=raw.index, dtype="string").mask(control),
            "propensity": 1.0 / len(cfg.arms),
            "converted": raw["visit"].astype(int),
            "revenue": raw["spend"].astype("float64"),
        }
    )
    return Dataset(
        members=coerce_table(members, MEMBERS),
        orders=coerce_table(orders, ORDERS),
        offers=coerce_table(offers, OFFERS),
        name="hillstrom",
    )


def convert_hillstrom(src: Path, config: AdaptersConfig) -> Dataset:
    from loyalty_ml.adapters import resolve_source

    raw = pd.read_csv(resolve_source(src, SOURCE))
    return convert_frame(raw, config.hillstrom)
