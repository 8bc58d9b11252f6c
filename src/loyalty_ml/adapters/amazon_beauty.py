"""Amazon Beauty sequences (S3-Rec ``Beauty.txt``) → members + orders + order_items + products.

What the source does and does not hold:

* ``Beauty.txt`` gives each user's items in chronological order but **no timestamps**: step ``k``
  (0-based) of every user is dated ``start_date + k`` days, so order is kept and gaps are fake.
* ``Beauty_item2attributes.json`` maps item → anonymous attribute ids (category and brand names
  were replaced by integers). S3-Rec lists an item's brand first, then its categories below the
  root "Beauty". An attribute that never appears after position 0 in any item is therefore taken
  as a brand; the first remaining attribute is the item's top-level category. Both are written as
  ``attr_<id>`` because the names are not in the source. This is a heuristic: a rare category seen
  only on brand-less items would be mistaken for a brand.
* Prices are not in the source: ``price``, ``unit_price`` and ``amount`` are the configured
  placeholder (0.0), never an estimate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from loyalty_ml.contract.config import AdaptersConfig, AmazonSeqConfig
from loyalty_ml.contract.io import Dataset, coerce_table
from loyalty_ml.contract.schema import MEMBERS, ORDER_ITEMS, ORDERS, PRODUCTS
from loyalty_ml.errors import ContractError

SOURCE = "Beauty.txt"
ATTRIBUTES = "Beauty_item2attributes.json"


def notes(config: AdaptersConfig) -> list[str]:
    cfg = config.amazon_seq
    return [
        "member_id = user id, product_id = item id (as in Beauty.txt)",
        f"SYNTHETIC: no timestamps in the source; step k of each sequence is dated {cfg.start_date}"
        " + k days (order preserved, gaps invented); joined_at = the first step's date",
        "one order per step with one order_item (quantity 1); order_id = '<user>-<step>' (1-based)",
        f"PLACEHOLDER: prices are unknown; price, unit_price and amount are {cfg.placeholder_price}",
        "category/brand = 'attr_<id>' (names are anonymised in the source); brand = an attribute "
        "that only ever appears first in an item's list, category = first other attribute "
        "(heuristic; brand is empty where none is found)",
    ]


def parse_sequences(lines: list[str]) -> pd.DataFrame:
    """``user item item …`` lines → rows (member_id, step, product_id), step 0-based."""
    users: list[str] = []
    steps: list[int] = []
    items: list[str] = []
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise ContractError(f"{SOURCE} line {number}: user {parts[0]!r} has no items")
        seq = parts[1:]
        users.extend([parts[0]] * len(seq))
        steps.extend(range(len(seq)))
        items.extend(seq)
    return pd.DataFrame(
        {
            "member_id": pd.array(users, dtype="string"),
            "step": np.asarray(steps, dtype=np.int64),
            "product_id": pd.array(items, dtype="string"),
        }
    )


def brand_and_category(attributes: dict[str, list[int]]) -> pd.DataFrame:
    """Item → (brand, category) from anonymous attribute lists (see the module docstring)."""
    later = {a for attrs in attributes.values() for a in attrs[1:]}
    rows = []
    for item, attrs in attributes.items():
        brand = attrs[0] if attrs and attrs[0] not in later else None
        rest = attrs[1:] if brand is not None else attrs
        rows.append(
            (
                str(item),
                f"attr_{rest[0]}" if rest else None,
                f"attr_{brand}" if brand is not None else None,
            )
        )
    return pd.DataFrame(rows, columns=["product_id", "category", "brand"]).astype("string")


def convert_frames(
    steps: pd.DataFrame, attributes: dict[str, list[int]], cfg: AmazonSeqConfig
) -> Dataset:
    """Pure conversion of parsed sequences and the attribute map."""
    start = pd.Timestamp(cfg.start_date, tz="UTC")
    ordered_at = start + pd.to_timedelta(steps["step"], unit="D")
    order_id = steps["member_id"] + "-" + (steps["step"] + 1).astype("string")
    orders = pd.DataFrame(
        {
            "order_id": order_id,
            "member_id": steps["member_id"],
            "ordered_at": ordered_at,
            "amount": cfg.placeholder_price,
            "status": "completed",
        }
    )
    items = pd.DataFrame(
        {
            "order_id": order_id,
            "product_id": steps["product_id"],
            "quantity": 1,
            "unit_price": cfg.placeholder_price,
        }
    )
    members = (
        orders.groupby("member_id", sort=False)["ordered_at"]
        .min()
        .rename("joined_at")
        .reset_index()
    )
    described = brand_and_category(attributes)
    seen = pd.DataFrame({"product_id": steps["product_id"].drop_duplicates()})
    # Every sequenced item becomes a product, described or not; undescribed ones get no category.
    products = pd.concat(
        [described, seen[~seen["product_id"].isin(described["product_id"])]], ignore_index=True
    )
    products["price"] = cfg.placeholder_price
    return Dataset(
        members=coerce_table(members, MEMBERS),
        orders=coerce_table(orders, ORDERS),
        order_items=coerce_table(items, ORDER_ITEMS),
        products=coerce_table(products, PRODUCTS),
        name="amazon_beauty",
    )


def convert_amazon_beauty(src: Path, config: AdaptersConfig) -> Dataset:
    from loyalty_ml.adapters import resolve_source

    seq_path = resolve_source(src, SOURCE)
    attr_path = seq_path.parent / ATTRIBUTES
    attributes: dict[str, list[int]] = {}
    if attr_path.is_file():
        attributes = json.loads(attr_path.read_text(encoding="utf-8"))
    steps = parse_sequences(seq_path.read_text(encoding="utf-8").splitlines())
    return convert_frames(steps, attributes, config.amazon_seq)
