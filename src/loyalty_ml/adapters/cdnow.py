"""CDNOW purchase log (``CDNOW_master.txt``) → members + orders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from loyalty_ml.contract.config import AdaptersConfig
from loyalty_ml.contract.io import Dataset, coerce_table
from loyalty_ml.contract.schema import MEMBERS, ORDERS
from loyalty_ml.errors import ContractError

SOURCE = "CDNOW_master.txt"
_COLUMNS = ["customer_id", "date", "number_of_cds", "dollar_value"]


def notes(config: AdaptersConfig) -> list[str]:
    del config  # no configurable assumption
    return [
        "member_id = customer_id verbatim (zero-padded text, e.g. '00001')",
        "joined_at = date of the member's first purchase (CDNOW has no sign-up date)",
        "one order per file row, dated 00:00 UTC; same-day rows stay separate orders "
        "(order_id = '<customer_id>-<n>', n counting the member's rows in file order)",
        "amount = dollar_value; number_of_cds is not carried (orders have no quantity column)",
    ]


def read_cdnow(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path, sep=r"\s+", dtype={"customer_id": "string", "date": "string"}, engine="c"
    )
    if list(frame.columns) != _COLUMNS:
        raise ContractError(
            f"{path.name}: expected header {' '.join(_COLUMNS)}, got {' '.join(frame.columns)}"
        )
    return frame


def convert_frame(raw: pd.DataFrame) -> Dataset:
    """Pure conversion of the parsed CDNOW log (columns customer_id, date, …)."""
    ordered_at = pd.to_datetime(raw["date"], format="%Y%m%d", errors="coerce", utc=True)
    if ordered_at.isna().any():
        bad = raw.loc[ordered_at.isna(), "date"].head(3).tolist()
        raise ContractError(f"CDNOW: unparseable date(s) {bad} (expected YYYYMMDD)")
    seq = raw.groupby("customer_id", sort=False).cumcount() + 1
    orders = pd.DataFrame(
        {
            "order_id": raw["customer_id"] + "-" + seq.astype("string"),
            "member_id": raw["customer_id"],
            "ordered_at": ordered_at,
            "amount": raw["dollar_value"].astype("float64"),
            "status": "completed",
        }
    )
    members = (
        orders.groupby("member_id", sort=False)["ordered_at"]
        .min()
        .rename("joined_at")
        .reset_index()
    )
    return Dataset(
        members=coerce_table(members, MEMBERS),
        orders=coerce_table(orders, ORDERS),
        name="cdnow",
    )


def convert_cdnow(src: Path, config: AdaptersConfig) -> Dataset:
    from loyalty_ml.adapters import resolve_source

    del config
    return convert_frame(read_cdnow(resolve_source(src, SOURCE)))
