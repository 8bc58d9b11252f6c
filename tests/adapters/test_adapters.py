"""Real-data adapters: hand-checked conversions on tiny inputs, exact counts on the real files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loyalty_ml.adapters import amazon_beauty, convert, get_adapter, hillstrom
from loyalty_ml.cli.main import app
from loyalty_ml.contract.config import load_data_config
from loyalty_ml.contract.io import write_dataset
from loyalty_ml.contract.validate import validate_dir
from loyalty_ml.errors import ContractError
from tests.conftest import shared_dataset

CFG = load_data_config().adapters
runner = CliRunner()
UTC = "UTC"

CDNOW_TEXT = """ customer_id  date number_of_cds  dollar_value
 00001 19970101  1   11.77
 00002 19970112  1   12.00
 00002 19970112  5   77.00
 00002 19970301  1    0.00
"""

HILLSTROM_TEXT = """recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,visit,conversion,spend
10,2) $100 - $200,142.44,1,0,Surburban,0,Phone,Womens E-Mail,0,0,0
1,3) $200 - $350,329.08,1,1,Rural,1,Web,No E-Mail,1,0,0
12,1) $0 - $100,45.34,0,1,Urban,0,Multichannel,Mens E-Mail,1,1,29.99
"""


def test_cdnow_same_day_rows_stay_separate_orders(tmp_path: Path) -> None:
    (tmp_path / "CDNOW_master.txt").write_text(CDNOW_TEXT)
    data = convert("cdnow", tmp_path, CFG)
    assert data.orders["order_id"].tolist() == ["00001-1", "00002-1", "00002-2", "00002-3"]
    assert data.orders["member_id"].tolist() == ["00001", "00002", "00002", "00002"]
    assert data.orders["amount"].tolist() == [11.77, 12.0, 77.0, 0.0]
    assert data.orders["ordered_at"].iloc[1] == pd.Timestamp("1997-01-12", tz=UTC)
    assert data.members["member_id"].tolist() == ["00001", "00002"]
    # joined_at is the first purchase date, not the file's first row of the member by accident.
    assert data.members["joined_at"].tolist() == [
        pd.Timestamp("1997-01-01", tz=UTC),
        pd.Timestamp("1997-01-12", tz=UTC),
    ]
    assert data.order_items is None and data.offers is None


def test_cdnow_wrong_header_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "CDNOW_master.txt").write_text("a b c d\n1 2 3 4\n")
    with pytest.raises(ContractError, match="expected header customer_id date"):
        convert("cdnow", tmp_path, CFG)


def test_hillstrom_members_orders_offers(tmp_path: Path) -> None:
    (tmp_path / "hillstrom.csv").write_text(HILLSTROM_TEXT)
    data = convert("hillstrom", tmp_path / "hillstrom.csv", CFG)
    members, orders, offers = data.members, data.orders, data.offers
    assert offers is not None
    assert members["member_id"].tolist() == ["1", "2", "3"]
    for column in hillstrom.ATTRIBUTES:
        assert column in members.columns
    assert members["zip_code"].tolist() == ["Surburban", "Rural", "Urban"]
    # Offer on 2008-03-01 (data.yaml); orders `recency` calendar months earlier.
    assert orders["ordered_at"].tolist() == [
        pd.Timestamp("2007-05-01", tz=UTC),
        pd.Timestamp("2008-02-01", tz=UTC),
        pd.Timestamp("2007-03-01", tz=UTC),
    ]
    assert orders["amount"].tolist() == [142.44, 329.08, 45.34]
    assert (members["joined_at"] == orders["ordered_at"]).all()
    assert offers["benefit_id"].tolist() == ["womens_email", "none", "mens_email"]
    assert offers["channel"].tolist()[0] == "email" and pd.isna(offers["channel"].iloc[1])
    assert offers["propensity"].tolist() == pytest.approx([1 / 3] * 3)
    assert offers["converted"].tolist() == [0, 1, 1]
    assert offers["revenue"].tolist() == [0.0, 0.0, 29.99]
    assert (offers["offered_at"] == pd.Timestamp("2008-03-01", tz=UTC)).all()


def test_hillstrom_unknown_arm_is_refused() -> None:
    raw = pd.read_csv(io.StringIO(HILLSTROM_TEXT))
    raw.loc[0, "segment"] = "SMS"
    with pytest.raises(ContractError, match="SMS"):
        hillstrom.convert_frame(raw, CFG.hillstrom)


def test_amazon_brand_and_category_heuristic() -> None:
    # 9 only ever comes first → brand; 1 is first on item c but second elsewhere → category.
    attributes = {"a": [9, 1, 2], "b": [1, 3], "c": [7, 1, 2], "d": [9]}
    described = amazon_beauty.brand_and_category(attributes)
    assert described["product_id"].tolist() == ["a", "b", "c", "d"]
    assert described["category"].fillna("-").tolist() == ["attr_1", "attr_1", "attr_1", "-"]
    assert described["brand"].fillna("-").tolist() == ["attr_9", "-", "attr_7", "attr_9"]


def test_amazon_sequences_one_order_per_step() -> None:
    steps = amazon_beauty.parse_sequences(["1 10 11 10", "", "2 12"])
    assert steps["step"].tolist() == [0, 1, 2, 0]
    data = amazon_beauty.convert_frames(steps, {"10": [5, 6]}, CFG.amazon_seq)
    assert data.orders["order_id"].tolist() == ["1-1", "1-2", "1-3", "2-1"]
    start = pd.Timestamp("2014-01-01", tz=UTC)
    assert data.orders["ordered_at"].tolist() == [
        start,
        start + pd.Timedelta(days=1),
        start + pd.Timedelta(days=2),
        start,
    ]
    assert data.order_items is not None and data.products is not None
    assert data.order_items["product_id"].tolist() == ["10", "11", "10", "12"]
    assert (data.order_items["quantity"] == 1).all()
    assert (data.orders["amount"] == 0.0).all() and (data.products["price"] == 0.0).all()
    # Items without attributes are still products (category unknown).
    products = data.products.set_index("product_id")
    assert sorted(products.index) == ["10", "11", "12"]
    assert (products.loc["10", "brand"], products.loc["10", "category"]) == ("attr_5", "attr_6")
    assert pd.isna(products.loc["11", "category"])


def test_amazon_user_without_items_is_refused() -> None:
    with pytest.raises(ContractError, match="line 2"):
        amazon_beauty.parse_sequences(["1 10", "2"])


def test_unknown_adapter_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="unknown data set"):
        get_adapter("movielens")
    with pytest.raises(ContractError, match="source file not found"):
        convert("hillstrom", tmp_path, CFG)


def test_cli_import_writes_validates_and_states_assumptions(tmp_path: Path) -> None:
    (tmp_path / "hillstrom.csv").write_text(HILLSTROM_TEXT)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["data", "import", "hillstrom", str(tmp_path), "--out", str(out), "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["members.csv", "offers.csv", "orders.csv"]
    assert "SYNTHETIC" in result.output and "valid" in result.output
    assert validate_dir(out).ok


def test_cli_import_missing_source_exits_nonzero(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", "import", "cdnow", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "source file not found" in result.output


def _convert_and_validate(name: str, folder: str, tmp_path: Path) -> dict[str, int]:
    dataset = convert(name, shared_dataset(folder), CFG)
    write_dataset(dataset, tmp_path / name)
    report = validate_dir(tmp_path / name)
    assert report.ok and report.problems == [], report.to_text()
    return report.row_counts


@pytest.mark.slow
@pytest.mark.data
def test_real_cdnow_row_counts(tmp_path: Path) -> None:
    counts = _convert_and_validate("cdnow", "cdnow", tmp_path)
    assert counts == {"members": 23_570, "orders": 69_659}


@pytest.mark.slow
@pytest.mark.data
def test_real_hillstrom_row_counts_and_arm_means(tmp_path: Path) -> None:
    counts = _convert_and_validate("hillstrom", "hillstrom", tmp_path)
    assert counts == {"members": 64_000, "orders": 64_000, "offers": 64_000}
    offers = convert("hillstrom", shared_dataset("hillstrom"), CFG).offers
    assert offers is not None
    means = offers.groupby("benefit_id")[["converted", "revenue"]].mean().round(4)
    # Published arm means (visit / spend) from ../shared/data/README.md.
    assert means.loc["mens_email"].tolist() == [0.1828, 1.4226]
    assert means.loc["womens_email"].tolist() == [0.1514, 1.0772]
    assert means.loc["none"].tolist() == [0.1062, 0.6528]


@pytest.mark.slow
@pytest.mark.data
def test_real_amazon_beauty_row_counts(tmp_path: Path) -> None:
    counts = _convert_and_validate("amazon-seq", "amazon_beauty", tmp_path)
    assert counts == {
        "members": 22_363,
        "orders": 198_502,
        "order_items": 198_502,
        "products": 12_101,
    }
    attributes = json.loads(
        (shared_dataset("amazon_beauty") / "Beauty_item2attributes.json").read_text()
    )
    described = amazon_beauty.brand_and_category(attributes)
    # Every item carries at least one attribute; most have a brand by the heuristic.
    assert described["category"].notna().mean() > 0.95
    assert described["brand"].notna().mean() > 0.5
