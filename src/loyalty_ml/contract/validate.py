"""Contract validation: every problem in a data directory, with file, column and row numbers.

Row numbers are what a user sees in a spreadsheet of the data: **1-based data rows, the header
not counted** (row 1 is the first record). In a CSV file the header is line 1, so row ``r`` is on
line ``r + 1``; the text report prints both for CSV files.

All checks are vectorised over whole columns. The typed frames built while checking are kept on
the report, so :func:`load_valid_dataset` reads each file once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from loyalty_ml.contract.config import ValidationConfig, load_data_config
from loyalty_ml.contract.io import Dataset, coerce_table, read_raw, table_path
from loyalty_ml.contract.schema import TABLE_ORDER, TABLES, ColumnSpec, TableSpec
from loyalty_ml.errors import ContractError, MissingDataError

Severity = Literal["error", "warning"]

# Problem kinds, in the order a report lists them; the docs promise these exact names.
PROBLEM_KINDS: dict[str, str] = {
    "missing_table": "a mandatory table has no .parquet/.csv file",
    "unreadable_file": "the file cannot be parsed at all",
    "missing_column": "a required column is absent",
    "empty_table": "the table has a header but no rows",
    "bad_type": "a value cannot be read as the column's type",
    "null_value": "a value is missing in a column that must have one",
    "negative_value": "an amount, price, cost or quantity is below zero",
    "out_of_range": "a number is outside its allowed range",
    "not_allowed": "a value is not in the column's allowed set",
    "duplicate_key": "a primary key occurs more than once",
    "dangling_reference": "a foreign key points to a row that does not exist",
    "timestamp_too_early": "a timestamp lies before the plausible floor",
    "timestamp_in_future": "a timestamp lies in the far future",
    "order_before_join": "an order is dated before its member joined",
}
_KIND_RANK = {kind: i for i, kind in enumerate(PROBLEM_KINDS)}
_EXAMPLES = 3


@dataclass(frozen=True)
class Problem:
    """One kind of problem in one column of one table; ``rows`` holds the first N of ``count``."""

    table: str
    file: str
    column: str | None
    rows: list[int]
    kind: str
    message: str
    count: int
    severity: Severity = "error"

    @property
    def is_csv(self) -> bool:
        return self.file.endswith(".csv")

    def where(self) -> str:
        """``orders.csv amount`` — the file and column the problem is in."""
        return f"{self.file} {self.column}" if self.column else self.file

    def rows_text(self) -> str:
        if not self.rows:
            return ""
        shown = ", ".join(str(r) for r in self.rows)
        more = f" … ({self.count} in all)" if self.count > len(self.rows) else ""
        text = f"rows {shown}{more}"
        if self.is_csv:
            text += f" (CSV lines {', '.join(str(r + 1) for r in self.rows)})"
        return text

    def line(self) -> str:
        rows = self.rows_text()
        return f"{self.severity} {self.kind}: {self.where()}: {self.message}" + (
            f"; {rows}" if rows else ""
        )


@dataclass
class ValidationReport:
    """Everything validation found in one directory, plus the typed tables it read."""

    data_dir: Path
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    typed: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings do not stop downstream steps)."""
        return not self.errors

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def find(self, kind: str, table: str | None = None, column: str | None = None) -> list[Problem]:
        return [
            p
            for p in self.problems
            if p.kind == kind
            and (table is None or p.table == table)
            and (column is None or p.column == column)
        ]

    def headline(self) -> str:
        tables = ", ".join(f"{t} {n:,}" for t, n in self.row_counts.items())
        verdict = "valid" if self.ok else "INVALID"
        return (
            f"{self.data_dir}: {verdict} — {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s); rows read: {tables or 'none'}"
        )

    def to_text(self) -> str:
        lines = [self.headline()]
        if self.problems:
            lines.append("(rows are 1-based data rows, header not counted)")
            lines.extend(f"  {p.line()}" for p in self.problems)
        return "\n".join(lines)

    def summary(self, limit: int = 10) -> str:
        """A compact multi-line error summary for exceptions raised by downstream commands."""
        errors = self.errors
        lines = [f"data in {self.data_dir} violates the contract ({len(errors)} error(s)):"]
        lines.extend(f"  {p.line()}" for p in errors[:limit])
        if len(errors) > limit:
            lines.append(f"  … and {len(errors) - limit} more")
        lines.append(f"run `loyalty data validate {self.data_dir}` for the full report")
        return "\n".join(lines)

    def to_rich(self) -> object:
        """A rich Table of the problems (imported lazily: rich is only needed by the CLI)."""
        from rich.table import Table

        table = Table(
            title=self.headline(),
            caption="red: error, yellow: warning; rows: 1-based data rows, header not counted "
            "(CSV line = row + 1)",
            show_lines=False,
        )
        table.add_column("kind", no_wrap=True)
        table.add_column("where", overflow="fold")
        table.add_column("count", justify="right")
        table.add_column("first rows", overflow="fold")
        table.add_column("message", overflow="fold", ratio=2)
        for p in self.problems:
            colour = "red" if p.severity == "error" else "yellow"
            table.add_row(
                f"[{colour}]{p.kind}[/]",
                p.where(),
                f"{p.count:,}",
                ", ".join(str(r) for r in p.rows),
                p.message,
            )
        return table

    def dataset(self, name: str | None = None) -> Dataset:
        """The typed tables as a Dataset; only meaningful when :attr:`ok`."""
        if not self.ok:
            raise ContractError(self.summary())
        return Dataset(name=name or self.data_dir.resolve().name, **self.typed)  # type: ignore[arg-type]


class _Collector:
    """Accumulates problems for one table, keeping the first ``limit`` row numbers of each."""

    def __init__(self, spec: TableSpec, file: str, limit: int):
        self.spec = spec
        self.file = file
        self.limit = limit
        self.problems: list[Problem] = []

    def add(
        self,
        kind: str,
        column: str | None,
        mask: np.ndarray | pd.Series | None,
        message: str,
        severity: Severity = "error",
    ) -> None:
        if mask is None:
            # A whole-table or whole-column problem: no row numbers to give.
            self.problems.append(
                Problem(self.spec.name, self.file, column, [], kind, message, 1, severity)
            )
            return
        flags = np.asarray(mask, dtype=bool)
        count = int(flags.sum())
        if count == 0:
            return
        rows = (np.flatnonzero(flags)[: self.limit] + 1).tolist()
        self.problems.append(
            Problem(self.spec.name, self.file, column, rows, kind, message, count, severity)
        )


def _examples(values: pd.Series, mask: np.ndarray) -> str:
    """A few distinct offending values; subset first so clean columns cost nothing."""
    if not mask.any():
        return ""
    picked = pd.Series(values[mask]).drop_duplicates().head(_EXAMPLES)
    return ", ".join(repr(str(v)) for v in picked.tolist())


def _blank(raw: pd.Series, typed: pd.Series, col: ColumnSpec) -> np.ndarray:
    """Missing in the file: null or empty text (typed ids are already stripped, blanks → NA)."""
    if col.kind == "id":
        return typed.isna().to_numpy(dtype=bool)
    missing = raw.isna().to_numpy(dtype=bool)
    if raw.dtype == object or isinstance(raw.dtype, pd.StringDtype):
        missing = missing | (raw == "").fillna(False).to_numpy(dtype=bool)
    return missing


def _check_column(
    out: _Collector,
    col: ColumnSpec,
    raw: pd.Series,
    typed: pd.Series,
    cfg: ValidationConfig,
    now: pd.Timestamp,
) -> None:
    blank = _blank(raw, typed, col)
    bad = np.zeros(len(raw), dtype=bool)
    if col.kind not in ("id", "string"):
        bad = ~blank & typed.isna().to_numpy()
        if col.kind == "bool01":
            # bool01 typing keeps only 0/1; numbers outside that are "not allowed", not unreadable.
            number = pd.to_numeric(raw, errors="coerce")
            outside = ~blank & number.notna().to_numpy() & bad
            bad = bad & ~outside
            out.add(
                "not_allowed", col.name, outside, f"must be 0 or 1, got {_examples(raw, outside)}"
            )
        if bad.any():
            expected = {"timestamp": "a timestamp", "date": "a date"}.get(col.kind, "a number")
            out.add("bad_type", col.name, bad, f"not {expected}: {_examples(raw, bad)}")
        if col.kind == "int":
            number = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            fractional = np.isfinite(number) & (number % 1 != 0)
            out.add(
                "bad_type",
                col.name,
                fractional,
                f"not a whole number: {_examples(raw, fractional)}",
            )
    if not col.nullable:
        out.add("null_value", col.name, blank, "missing value in a column that must have one")

    if col.kind in ("float", "int") and (col.min_value is not None or col.max_value is not None):
        number = typed.to_numpy(dtype=float, na_value=np.nan)
        known = ~np.isnan(number)
        if col.min_value is not None:
            low = known & (
                (number <= col.min_value) if col.min_exclusive else (number < col.min_value)
            )
            # Below zero is its own kind (a sign or refund bug); other floors are range checks.
            negative = low & (number < 0) if col.min_value >= 0 else np.zeros_like(low)
            out.add("negative_value", col.name, negative, f"negative: {_examples(raw, negative)}")
            rest = low & ~negative
            sign = ">" if col.min_exclusive else "≥"
            out.add(
                "out_of_range",
                col.name,
                rest,
                f"must be {sign} {col.min_value:g}: {_examples(raw, rest)}",
            )
        if col.max_value is not None:
            high = known & (number > col.max_value)
            out.add(
                "out_of_range",
                col.name,
                high,
                f"must be ≤ {col.max_value:g}: {_examples(raw, high)}",
            )

    if col.allowed is not None:
        text = typed.astype("string")
        outside = (text.notna() & ~text.isin(col.allowed)).to_numpy(dtype=bool)
        out.add(
            "not_allowed",
            col.name,
            outside,
            f"{_examples(text, outside)} not in {{{', '.join(col.allowed)}}}",
        )

    if col.kind in ("timestamp", "date"):
        floor_date = cfg.min_birth_date if col.kind == "date" else cfg.min_timestamp
        floor = pd.Timestamp(floor_date, tz="UTC")
        ceiling = now + pd.Timedelta(days=cfg.future_tolerance_days)
        early = (typed < floor).fillna(False).to_numpy(dtype=bool)
        late = (typed > ceiling).fillna(False).to_numpy(dtype=bool)
        out.add(
            "timestamp_too_early",
            col.name,
            early,
            f"before {floor.date()}: {_examples(typed, early)}",
        )
        out.add(
            "timestamp_in_future",
            col.name,
            late,
            f"after {ceiling:%Y-%m-%d %H:%M} UTC: {_examples(typed, late)}",
        )


def _check_primary_key(out: _Collector, typed: pd.DataFrame) -> None:
    key = list(out.spec.primary_key)
    if not key:
        return
    complete = typed[key].notna().all(axis=1)
    dup = (typed[key].duplicated(keep="first") & complete).to_numpy(dtype=bool)
    if dup.any():
        head = typed.loc[dup, key].head(_EXAMPLES).astype("string")
        shown = head.agg("/".join, axis=1)
        label = "/".join(key)
        out.add(
            "duplicate_key",
            label,
            dup,
            f"{label} repeated: {_examples(shown, np.ones(len(shown), bool))}",
        )


def _loose(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def check_table(
    spec: TableSpec,
    raw: pd.DataFrame,
    file: str,
    cfg: ValidationConfig,
    now: pd.Timestamp,
    limit: int,
) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Check one table's own rows; returns its typed frame (None when unusable) and problems."""
    out = _Collector(spec, file, limit)
    missing = [c for c in spec.required_columns if c not in raw.columns]
    # Column names are exact; point at a near miss ("Member_ID ", "memberid") when there is one.
    loose = {_loose(str(c)): str(c) for c in raw.columns}
    for name in missing:
        near = loose.get(_loose(name))
        hint = f" (found {near!r}: names are exact, lower case)" if near else ""
        out.add("missing_column", name, None, f"required column {name!r} is absent{hint}")
    if missing:
        return None, out.problems
    if raw.empty:
        severity: Severity = "error" if spec.mandatory else "warning"
        out.add("empty_table", None, None, "no rows", severity=severity)
    raw = raw.reset_index(drop=True)
    typed = coerce_table(raw, spec)
    for col in spec.columns:
        if col.name in raw.columns:
            _check_column(out, col, raw[col.name], typed[col.name], cfg, now)
    _check_primary_key(out, typed)
    return typed, out.problems


def _positions(values: pd.Series, target: pd.Series) -> np.ndarray:
    """Row of each value in ``target`` (first occurrence), -1 where absent: one hash pass."""
    index = pd.Index(target.dropna().drop_duplicates())
    return index.get_indexer(values)


def check_references(
    typed: dict[str, pd.DataFrame], files: dict[str, Path], limit: int
) -> tuple[list[Problem], dict[tuple[str, str], np.ndarray]]:
    """Foreign keys between tables that are both present (an absent optional target is skipped).

    Also returns, per (table, column), the position of each row's key among the target's unique
    keys, so later cross-table checks need not hash the same strings again.
    """
    problems: list[Problem] = []
    positions: dict[tuple[str, str], np.ndarray] = {}
    for name, spec in TABLES.items():
        if name not in typed:
            continue
        out = _Collector(spec, files[name].name, limit)
        for fk in spec.foreign_keys:
            if fk.table not in typed:
                continue
            values = typed[name][fk.column]
            found = _positions(values, typed[fk.table][fk.target_column])
            positions[(name, fk.column)] = found
            dangling = (found < 0) & values.notna().to_numpy(dtype=bool)
            out.add(
                "dangling_reference",
                fk.column,
                dangling,
                f"not in {fk.table}.{fk.target_column}: {_examples(values, dangling)}",
            )
        problems.extend(out.problems)
    return problems, positions


def check_order_dates(
    typed: dict[str, pd.DataFrame],
    files: dict[str, Path],
    cfg: ValidationConfig,
    limit: int,
    positions: dict[tuple[str, str], np.ndarray] | None = None,
) -> list[Problem]:
    if "orders" not in typed or "members" not in typed:
        return []
    members = typed["members"].dropna(subset=["member_id"]).drop_duplicates("member_id")
    if members.empty:
        return []
    orders = typed["orders"]
    found = (positions or {}).get(("orders", "member_id"))
    if found is None:
        found = _positions(orders["member_id"], typed["members"]["member_id"])
    joined = members["joined_at"].to_numpy(dtype="datetime64[ns]")
    # Unknown members (found < 0) are dangling references, reported elsewhere, never "early".
    known = found >= 0
    member_joined = np.where(known, joined[np.where(known, found, 0)], np.datetime64("NaT", "ns"))
    ordered = orders["ordered_at"].to_numpy(dtype="datetime64[ns]")
    early = known & (ordered < member_joined)
    out = _Collector(TABLES["orders"], files["orders"].name, limit)
    out.add(
        "order_before_join",
        "ordered_at",
        early,
        f"before the member's joined_at (member_id {_examples(orders['member_id'], early)})",
        severity=cfg.order_before_join,
    )
    return out.problems


def validate_dir(
    path: Path | str,
    max_per_kind: int | None = None,
    *,
    config: ValidationConfig | None = None,
    now: object | None = None,
) -> ValidationReport:
    """Validate every contract table in ``path``; other files are ignored.

    ``now`` anchors the far-future check (default: the current time); ``max_per_kind`` caps the
    row numbers listed per problem (default from ``config/data.yaml``), never the counts.
    """
    data_dir = Path(path)
    if not data_dir.is_dir():
        raise MissingDataError(f"data directory not found: {data_dir}")
    cfg = config or load_data_config().validation
    limit = max_per_kind or cfg.max_per_kind
    stamp = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    report = ValidationReport(data_dir=data_dir)

    for name in TABLE_ORDER:
        spec = TABLES[name]
        file = table_path(data_dir, name)
        if file is None:
            if spec.mandatory:
                report.problems.append(
                    Problem(
                        name,
                        f"{name}.parquet|.csv",
                        None,
                        [],
                        "missing_table",
                        f"{name} is mandatory: no {name}.parquet or {name}.csv in {data_dir}",
                        1,
                    )
                )
            continue
        report.files[name] = file
        try:
            raw = read_raw(file, spec)
        except Exception as exc:  # any parser failure means the file itself is unusable
            report.problems.append(
                Problem(
                    name, file.name, None, [], "unreadable_file", f"{type(exc).__name__}: {exc}", 1
                )
            )
            continue
        report.row_counts[name] = len(raw)
        typed, problems = check_table(spec, raw, file.name, cfg, stamp, limit)
        report.problems.extend(problems)
        if typed is not None:
            report.typed[name] = typed

    references, positions = check_references(report.typed, report.files, limit)
    report.problems.extend(references)
    report.problems.extend(check_order_dates(report.typed, report.files, cfg, limit, positions))
    report.problems.sort(
        key=lambda p: (
            p.severity != "error",
            TABLE_ORDER.index(p.table),
            _KIND_RANK.get(p.kind, 99),
            p.column or "",
        )
    )
    return report


def load_valid_dataset(data_dir: Path | str, name: str | None = None) -> Dataset:
    """Validate, then return the typed tables; invalid data raise ContractError with a summary.

    Downstream commands call this instead of ``load_dataset``: nothing runs on invalid data.
    Files are read once (the typed frames come from validation itself).
    """
    report = validate_dir(data_dir)
    if not report.ok:
        raise ContractError(report.summary())
    return report.dataset(name)
