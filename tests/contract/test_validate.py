"""Contract validation: each kind of bad input is reported with its file, column and rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from loyalty_ml.cli.main import app
from loyalty_ml.contract.config import load_data_config
from loyalty_ml.contract.validate import (
    PROBLEM_KINDS,
    Problem,
    ValidationReport,
    load_valid_dataset,
    validate_dir,
)
from loyalty_ml.errors import ContractError

NOW = "2025-01-01"
runner = CliRunner()


def base_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid shop: 3 members, 4 orders, items, products, events and offers."""
    return {
        "members": pd.DataFrame(
            {
                "member_id": ["m1", "m2", "m3"],
                "joined_at": ["2024-01-01", "2024-01-05", "2024-02-01"],
                "birth_date": ["1950-03-01", "1990-07-14", None],
                "vip_flag": [1, 0, 1],
            }
        ),
        "orders": pd.DataFrame(
            {
                "order_id": ["o1", "o2", "o3", "o4"],
                "member_id": ["m1", "m1", "m2", "m3"],
                "ordered_at": ["2024-01-02", "2024-03-01", "2024-01-06", "2024-02-02"],
                "amount": [10.0, 25.5, 0.0, 8.0],
                "status": ["completed", "returned", None, "cancelled"],
            }
        ),
        "order_items": pd.DataFrame(
            {
                "order_id": ["o1", "o2", "o2", "o4"],
                "product_id": ["p1", "p1", "p2", "p2"],
                "quantity": [1, 2, 1, 3],
                "unit_price": [10.0, 5.0, 15.5, 2.0],
            }
        ),
        "products": pd.DataFrame(
            {"product_id": ["p1", "p2"], "category": ["a", "b"], "price": [10.0, 15.5]}
        ),
        "events": pd.DataFrame(
            {
                "member_id": ["m1", "m2"],
                "occurred_at": ["2024-01-03", "2024-01-07"],
                "event_type": ["login", "view"],
                "product_id": [None, "p2"],
            }
        ),
        "offers": pd.DataFrame(
            {
                "offer_id": ["f1", "f2"],
                "member_id": ["m1", "m2"],
                "offered_at": ["2024-03-01", "2024-03-01"],
                "benefit_id": ["none", "coupon_50"],
                "propensity": [0.5, 0.5],
                "converted": [0, 1],
            }
        ),
    }


def write(tmp_path: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(data / f"{name}.csv", index=False)
        else:
            frame.to_parquet(data / f"{name}.parquet", index=False)
    return data


def check(tmp_path: Path, tables: dict[str, pd.DataFrame], **kwargs: object) -> ValidationReport:
    return validate_dir(write(tmp_path, tables), now=NOW, **kwargs)  # type: ignore[arg-type]


def only(report: ValidationReport, kind: str) -> Problem:
    found = report.find(kind)
    assert len(found) == 1, report.to_text()
    return found[0]


def test_valid_shop_has_no_problems(tmp_path: Path) -> None:
    report = check(tmp_path, base_tables())
    assert report.ok
    assert report.problems == [], report.to_text()
    assert report.row_counts == {
        "members": 3,
        "orders": 4,
        "order_items": 4,
        "products": 2,
        "events": 2,
        "offers": 2,
    }


def test_missing_mandatory_table(tmp_path: Path) -> None:
    tables = base_tables()
    del tables["orders"]
    report = check(tmp_path, tables)
    problem = only(report, "missing_table")
    assert problem.table == "orders" and not report.ok


def test_other_files_are_ignored(tmp_path: Path) -> None:
    data = write(tmp_path, base_tables())
    (data / "README.txt").write_text("notes")
    pd.DataFrame({"x": [1]}).to_csv(data / "stock.csv", index=False)
    assert validate_dir(data, now=NOW).problems == []


def test_missing_required_column(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"] = tables["orders"].drop(columns=["amount"])
    problem = only(check(tmp_path, tables), "missing_column")
    assert (problem.file, problem.column) == ("orders.csv", "amount")


def test_empty_mandatory_table_is_an_error_optional_a_warning(tmp_path: Path) -> None:
    tables = base_tables()
    tables["events"] = tables["events"].iloc[0:0]
    report = check(tmp_path, tables)
    assert report.ok and only(report, "empty_table").severity == "warning"

    tables["members"] = tables["members"].iloc[0:0]
    report = check(tmp_path, tables)
    assert not report.ok
    assert [p.severity for p in report.find("empty_table", table="members")] == ["error"]


def test_non_numeric_amount_and_bad_timestamp(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["amount"] = ["10", "abc", "3.5", "1,5"]
    tables["orders"]["ordered_at"] = ["2024-01-02", "2024-03-01", "yesterday", "2024-02-02"]
    report = check(tmp_path, tables)
    amount = report.find("bad_type", column="amount")[0]
    assert amount.rows == [2, 4] and amount.count == 2
    assert "'abc'" in amount.message and "'1,5'" in amount.message
    stamp = report.find("bad_type", column="ordered_at")[0]
    assert stamp.rows == [3]
    # Row 3 is the third record; in the CSV it sits on line 4 (line 1 is the header).
    assert "rows 3 (CSV lines 4)" in stamp.line()
    assert not report.find("null_value"), "an unreadable value is not also reported as missing"


def test_fractional_quantity_is_a_bad_type(tmp_path: Path) -> None:
    tables = base_tables()
    tables["order_items"]["quantity"] = [1, 1.5, 1, 2]
    problem = only(check(tmp_path, tables), "bad_type")
    assert (problem.column, problem.rows) == ("quantity", [2])


def test_nulls_in_non_nullable_columns(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["member_id"] = ["m1", None, "  ", "m3"]
    problem = only(check(tmp_path, tables), "null_value")
    assert (problem.column, problem.rows, problem.count) == ("member_id", [2, 3], 2)


def test_negative_amount_price_and_quantity(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["amount"] = [10.0, -1.0, 0.0, -0.01]
    tables["products"]["price"] = [-5.0, 1.0]
    tables["order_items"]["quantity"] = [1, -2, 0, 1]
    report = check(tmp_path, tables)
    negative = {(p.table, p.column): p.rows for p in report.find("negative_value")}
    assert negative == {
        ("orders", "amount"): [2, 4],
        ("products", "price"): [1],
        ("order_items", "quantity"): [2],
    }
    # Zero items is not negative but still below the minimum of one.
    zero = report.find("out_of_range", column="quantity")[0]
    assert zero.rows == [3]


def test_values_outside_allowed_sets(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["status"] = ["completed", "lost", None, "refunded"]
    tables["events"]["event_type"] = ["login", "teleport"]
    report = check(tmp_path, tables)
    status = report.find("not_allowed", column="status")[0]
    assert status.rows == [2, 4]  # a missing status defaults to completed
    assert report.find("not_allowed", column="event_type")[0].rows == [2]


def test_propensity_must_be_in_zero_one_and_converted_binary(tmp_path: Path) -> None:
    tables = base_tables()
    tables["offers"] = pd.concat([tables["offers"]] * 2, ignore_index=True)
    tables["offers"]["offer_id"] = ["f1", "f2", "f3", "f4"]
    tables["offers"]["propensity"] = [0.0, 1.0, 1.5, 0.2]
    tables["offers"]["converted"] = [0, 2, 1, 0.5]
    report = check(tmp_path, tables)
    propensity = report.find("out_of_range", column="propensity")
    assert sorted(r for p in propensity for r in p.rows) == [1, 3]
    converted = report.find("not_allowed", column="converted")[0]
    assert converted.rows == [2, 4]


def test_duplicate_primary_keys_simple_and_composite(tmp_path: Path) -> None:
    tables = base_tables()
    tables["members"]["member_id"] = ["m1", "m2", "m1"]
    tables["order_items"]["product_id"] = ["p1", "p1", "p1", "p2"]
    report = check(tmp_path, tables)
    members = report.find("duplicate_key", table="members")[0]
    assert (members.rows, members.column) == ([3], "member_id")
    items = report.find("duplicate_key", table="order_items")[0]
    assert (items.rows, items.column) == ([3], "order_id/product_id")
    assert "'o2/p1'" in items.message


def test_dangling_foreign_keys_everywhere(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"].loc[3, "member_id"] = "ghost"
    tables["order_items"].loc[0, "order_id"] = "o9"
    tables["order_items"].loc[1, "product_id"] = "p9"
    tables["events"].loc[1, "product_id"] = "p9"
    tables["events"].loc[0, "member_id"] = "ghost"
    tables["offers"].loc[1, "member_id"] = "ghost"
    report = check(tmp_path, tables)
    dangling = {(p.table, p.column): p.rows for p in report.find("dangling_reference")}
    assert dangling == {
        ("orders", "member_id"): [4],
        ("order_items", "order_id"): [1],
        ("order_items", "product_id"): [2],
        ("events", "member_id"): [1],
        ("events", "product_id"): [2],
        ("offers", "member_id"): [2],
    }


def test_missing_optional_target_table_skips_that_reference(tmp_path: Path) -> None:
    tables = base_tables()
    del tables["products"]
    assert check(tmp_path, tables).problems == []


def test_timestamps_far_future_and_before_1970(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["ordered_at"] = ["2024-01-02", "2099-01-01", "1969-12-31", "2025-01-02"]
    report = check(tmp_path, tables)
    assert only(report, "timestamp_in_future").rows == [2]  # 2025-01-02 is within the slack
    early = report.find("timestamp_too_early")
    assert [(p.column, p.rows) for p in early] == [("ordered_at", [3])]
    # A 1950 birth date is plausible: the activity floor does not apply to birth_date.
    assert not report.find("timestamp_too_early", column="birth_date")


def test_order_before_join_is_a_warning_by_default(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"].loc[2, "ordered_at"] = "2023-12-31"
    report = check(tmp_path, tables)
    problem = only(report, "order_before_join")
    assert (problem.severity, problem.rows) == ("warning", [3])
    assert report.ok

    strict = load_data_config().validation.model_copy(update={"order_before_join": "error"})
    report = validate_dir(tmp_path / "data", now=NOW, config=strict)
    assert not report.ok


def test_every_problem_counted_but_rows_capped(tmp_path: Path) -> None:
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(30)],
            "member_id": "m1",
            "ordered_at": "2024-02-01",
            "amount": [-1.0] * 25 + [1.0] * 5,
        }
    )
    tables = {**base_tables(), "orders": orders}
    tables.pop("order_items")
    problem = only(check(tmp_path, tables, max_per_kind=5), "negative_value")
    assert problem.rows == [1, 2, 3, 4, 5] and problem.count == 25
    assert "(25 in all)" in problem.line()


def test_several_kinds_reported_together(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["amount"] = [10.0, -1.0, 0.0, 8.0]
    tables["orders"].loc[0, "member_id"] = "ghost"
    tables["members"].loc[2, "joined_at"] = "garbage"
    report = check(tmp_path, tables)
    assert {"negative_value", "dangling_reference", "bad_type"} <= report.kinds()
    assert set(report.kinds()) <= set(PROBLEM_KINDS)


def test_unreadable_file(tmp_path: Path) -> None:
    data = write(tmp_path, base_tables())
    (data / "products.csv").unlink()
    (data / "products.parquet").write_bytes(b"this is not parquet")
    problem = only(validate_dir(data, now=NOW), "unreadable_file")
    assert problem.file == "products.parquet"


def test_csv_numeric_ids_stay_strings(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "members.csv").write_text("member_id,joined_at\n007,2024-01-01\n12,2024-01-01\n")
    (data / "orders.csv").write_text(
        "order_id,member_id,ordered_at,amount\n0001,007,2024-01-02,5\n2,12,2024-01-02,5\n"
    )
    dataset = load_valid_dataset(data)
    assert dataset.members["member_id"].tolist() == ["007", "12"]
    assert dataset.orders["order_id"].tolist() == ["0001", "2"]
    assert dataset.orders["member_id"].tolist() == ["007", "12"]


def test_parquet_numeric_ids_become_integer_text(tmp_path: Path) -> None:
    tables = base_tables()
    tables["members"]["member_id"] = [1, 2, 3]
    tables["orders"]["member_id"] = [1.0, 1.0, 2.0, 3.0]
    del tables["events"], tables["offers"]
    dataset = load_valid_dataset(write(tmp_path, tables, fmt="parquet"))
    assert dataset.members["member_id"].tolist() == ["1", "2", "3"]
    assert dataset.orders["member_id"].tolist() == ["1", "1", "2", "3"]


def test_naive_timestamps_are_utc_and_offsets_converted(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["ordered_at"] = [
        "2024-01-02",
        "2024-03-01 10:30:00",
        "2024-01-06T12:00:00+02:00",
        "2024-02-02T00:00:00Z",
    ]
    dataset = load_valid_dataset(write(tmp_path, tables))
    stamps = dataset.orders["ordered_at"]
    assert str(stamps.dt.tz) == "UTC"
    assert stamps.tolist() == [
        pd.Timestamp("2024-01-02 00:00", tz="UTC"),
        pd.Timestamp("2024-03-01 10:30", tz="UTC"),
        pd.Timestamp("2024-01-06 10:00", tz="UTC"),
        pd.Timestamp("2024-02-02 00:00", tz="UTC"),
    ]


def test_extra_member_columns_are_kept(tmp_path: Path) -> None:
    dataset = load_valid_dataset(write(tmp_path, base_tables()))
    assert dataset.members["vip_flag"].tolist() == [1, 0, 1]
    assert "status" in dataset.orders and dataset.orders["status"].tolist()[2] == "completed"


def test_load_valid_dataset_refuses_invalid_data(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["amount"] = [10.0, -1.0, 0.0, 8.0]
    data = write(tmp_path, tables)
    with pytest.raises(ContractError) as caught:
        load_valid_dataset(data)
    message = str(caught.value)
    assert "negative_value" in message and "orders.csv amount" in message
    assert "loyalty data validate" in message


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    good = write(tmp_path, base_tables())
    result = runner.invoke(app, ["data", "validate", str(good), "--text"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output

    tables = base_tables()
    tables["orders"]["amount"] = [10.0, "x", 0.0, -8.0]
    bad = write(tmp_path / "bad", tables)
    result = runner.invoke(app, ["data", "validate", str(bad), "--text"])
    assert result.exit_code == 1
    assert "bad_type: orders.csv amount" in result.output
    assert "negative_value: orders.csv amount" in result.output
    assert "rows 4 (CSV lines 5)" in result.output
    result = runner.invoke(app, ["data", "validate", str(bad)])  # rich table form
    assert result.exit_code == 1 and "INVALID" in result.output


def test_cli_validate_warnings_exit_zero(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"].loc[2, "ordered_at"] = "2023-12-31"
    data = write(tmp_path, tables)
    result = runner.invoke(app, ["data", "validate", str(data), "--text"])
    assert result.exit_code == 0
    assert "warning order_before_join" in result.output


def test_cli_validate_missing_directory(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "data directory not found" in result.output


def test_load_valid_dataset_matches_load_dataset(tmp_path: Path) -> None:
    from loyalty_ml.contract.io import load_dataset

    data = write(tmp_path, base_tables(), fmt="parquet")
    valid, plain = load_valid_dataset(data), load_dataset(data)
    assert valid.tables().keys() == plain.tables().keys()
    for name, frame in plain.tables().items():
        pd.testing.assert_frame_equal(valid.tables()[name], frame)


def test_cli_max_per_kind_caps_listed_rows(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["amount"] = [-1.0, -2.0, -3.0, 8.0]
    data = write(tmp_path, tables)
    result = runner.invoke(app, ["data", "validate", str(data), "--text", "--max-per-kind", "2"])
    assert result.exit_code == 1
    assert "rows 1, 2 … (3 in all)" in result.output


def test_missing_column_points_at_a_near_miss(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"] = tables["orders"].rename(columns={"ordered_at": "Ordered At"})
    problem = only(check(tmp_path, tables), "missing_column")
    assert problem.column == "ordered_at"
    assert "found 'Ordered At'" in problem.message


_cell = st.one_of(
    st.none(),
    # No line breaks: pandas writes a bare "\r" unquoted, which really makes a second CSV row.
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=6),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["2024-01-01", "1900-01-01", "2999-01-01", "completed", "login", ""]),
)


@settings(max_examples=25, deadline=None)
@given(
    members=st.lists(st.tuples(_cell, _cell, _cell), min_size=0, max_size=5),
    orders=st.lists(st.tuples(_cell, _cell, _cell, _cell, _cell), min_size=0, max_size=5),
)
def test_garbage_never_crashes_validation(
    tmp_path_factory: pytest.TempPathFactory,
    members: list[tuple[object, ...]],
    orders: list[tuple[object, ...]],
) -> None:
    data = tmp_path_factory.mktemp("garbage")
    pd.DataFrame(members, columns=["member_id", "joined_at", "x"]).to_csv(
        data / "members.csv", index=False
    )
    pd.DataFrame(
        orders, columns=["order_id", "member_id", "ordered_at", "amount", "status"]
    ).to_csv(data / "orders.csv", index=False)
    report = validate_dir(data, now=NOW)
    assert set(report.kinds()) <= set(PROBLEM_KINDS)
    for problem in report.problems:
        assert problem.count >= len(problem.rows)
        assert all(1 <= r <= max(len(members), len(orders)) for r in problem.rows)
    if report.ok:
        dataset = report.dataset()
        assert len(dataset.members) == len(members) and len(dataset.orders) == len(orders)


def test_true_false_column_is_not_a_number_or_time(tmp_path: Path) -> None:
    tables = base_tables()
    tables["orders"]["amount"] = [True, False, True, True]
    tables["orders"]["ordered_at"] = [True, False, True, True]
    report = check(tmp_path, tables)
    assert {p.column for p in report.find("bad_type")} == {"amount", "ordered_at"}
    assert all(p.count == 4 for p in report.find("bad_type"))
