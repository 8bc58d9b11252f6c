"""Reading and writing contract tables: ``<table>.parquet`` or ``<table>.csv`` in one directory.

Reading coerces types (ids to strings, timestamps to UTC, optional columns filled with their
defaults) but never drops rows; ``loyalty data validate`` reports what is wrong row by row.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from loyalty_ml.contract.schema import TABLES, ColumnSpec, TableSpec
from loyalty_ml.errors import ContractError, MissingDataError
from loyalty_ml.timeutil import to_utc, utc_series


def table_path(data_dir: Path, table: str) -> Path | None:
    """The file holding ``table``; parquet wins when both exist."""
    for suffix in (".parquet", ".csv"):
        candidate = Path(data_dir) / f"{table}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_raw(path: Path, spec: TableSpec) -> pd.DataFrame:
    """The file as stored, id columns read as strings (CSV numeric ids must not become floats)."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Arrow strings straight into pandas' string dtype: about twice as fast as going through
        # object columns and re-validating them, and ids need that dtype anyway.
        as_string = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}
        return pq.read_table(path).to_pandas(types_mapper=as_string.get)
    id_cols = {c.name: "string" for c in spec.columns if c.kind in ("id", "string")}
    return pd.read_csv(path, dtype=id_cols, keep_default_na=True, low_memory=False)


def _as_id(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        # A parquet float id column (e.g. 12.0) means the integer id "12"; a non-integral float
        # keeps its text so validation can still point at it.
        whole = values.isna() | (values % 1 == 0)
        if bool(whole.all()):
            return values.astype("Int64").astype("string")
        return values.astype("string")
    return _strip_blank(values.astype("string"))


def _strip_blank(text: pd.Series) -> pd.Series:
    """Ids without surrounding spaces; a blank id is no id (validation reports it as missing).

    Checked in Arrow first: on clean columns (the usual case) this costs a fraction of a
    Python-level ``str.strip`` over every value and returns the column untouched.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = pa.array(text.array, type=pa.string())
    trimmed = pc.utf8_trim_whitespace(arrow)
    needs_strip = pc.any(pc.not_equal(arrow, trimmed)).as_py()
    has_blank = pc.any(pc.equal(trimmed, "")).as_py()
    if needs_strip:
        text = text.str.strip()
    if has_blank:
        text = text.mask(text == "")
    return text


def coerce_column(values: pd.Series, col: ColumnSpec) -> pd.Series:
    """Convert one column to its contract dtype; unparseable values become missing."""
    if col.kind in ("id", "string"):
        out = _as_id(values) if col.kind == "id" else values.astype("string")
        return out
    if pd.api.types.is_bool_dtype(values) and col.kind != "bool01":
        # A CSV column of True/False is text here: as a number or a time it is unreadable,
        # not 1/0 or epoch (pandas would silently accept, or crash on, the bools).
        values = values.astype("string")
    if col.kind in ("timestamp", "date"):
        return utc_series(values)
    if col.kind == "float":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if col.kind == "int":
        return pd.to_numeric(values, errors="coerce").round().astype("Int64")
    if col.kind == "bool01":
        number = pd.to_numeric(values, errors="coerce")
        # Only 0/1 survive typing; validation reports the rest against the raw values.
        return number.where(number.isin([0, 1])).astype("Int8")
    raise AssertionError(f"unknown column kind {col.kind}")


def coerce_table(raw: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Typed frame with every contract column present (optional ones filled with defaults)."""
    missing = [c for c in spec.required_columns if c not in raw.columns]
    if missing:
        raise ContractError(f"{spec.name}: missing required column(s) {', '.join(missing)}")
    out = pd.DataFrame(index=raw.index)
    for col in spec.columns:
        if col.name in raw.columns:
            out[col.name] = coerce_column(raw[col.name], col)
        else:
            filler = pd.Series(col.default, index=raw.index)
            out[col.name] = coerce_column(filler, col)
        if col.default is not None:
            out[col.name] = out[col.name].fillna(col.default)
    if spec.keep_extra_columns:
        for name in raw.columns:
            if name not in out.columns:
                out[name] = raw[name]
    return out.reset_index(drop=True)


def read_table(data_dir: Path, table: str) -> pd.DataFrame | None:
    """A typed contract table, or None when the (optional) table is absent."""
    spec = TABLES[table]
    path = table_path(Path(data_dir), table)
    if path is None:
        if spec.mandatory:
            raise MissingDataError(
                f"{table} is mandatory: no {table}.parquet or {table}.csv in {data_dir}"
            )
        return None
    return coerce_table(read_raw(path, spec), spec)


@dataclass
class Dataset:
    """All contract tables of one shop; optional tables are None when absent."""

    members: pd.DataFrame
    orders: pd.DataFrame
    order_items: pd.DataFrame | None = None
    products: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    offers: pd.DataFrame | None = None
    name: str = "dataset"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name in TABLES and getattr(self, f.name) is not None
        }

    def require(self, *tables: str, purpose: str) -> None:
        """Raise a clear error when a capability needs tables this data set lacks."""
        absent = [t for t in tables if getattr(self, t, None) is None]
        if absent:
            raise MissingDataError(
                f"{purpose} needs table(s) {', '.join(absent)}, absent in {self.name}"
            )

    def latest_timestamp(self) -> pd.Timestamp:
        """Default ``--as-of``: the latest timestamp anywhere in the data."""
        stamps = [self.orders["ordered_at"].max(), self.members["joined_at"].max()]
        if self.events is not None and len(self.events):
            stamps.append(self.events["occurred_at"].max())
        if self.offers is not None and len(self.offers):
            stamps.append(self.offers["offered_at"].max())
        return max(s for s in stamps if pd.notna(s))

    def as_of(self, cutoff: object) -> Dataset:
        """The data as it was known at ``cutoff`` (inclusive): nothing later is kept."""
        t = to_utc(cutoff)
        cut = Dataset(
            members=self.members[self.members["joined_at"] <= t].reset_index(drop=True),
            orders=self.orders[self.orders["ordered_at"] <= t].reset_index(drop=True),
            products=self.products,
            name=self.name,
        )
        if self.order_items is not None:
            cut.order_items = self.order_items[
                self.order_items["order_id"].isin(cut.orders["order_id"])
            ].reset_index(drop=True)
        if self.events is not None:
            cut.events = self.events[self.events["occurred_at"] <= t].reset_index(drop=True)
        if self.offers is not None:
            cut.offers = self.offers[self.offers["offered_at"] <= t].reset_index(drop=True)
        return cut


def load_dataset(data_dir: Path | str, name: str | None = None) -> Dataset:
    """Read every contract table present in ``data_dir`` (other files are ignored)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise MissingDataError(f"data directory not found: {data_dir}")
    tables = {table: read_table(data_dir, table) for table in TABLES}
    return Dataset(name=name or data_dir.resolve().name, **tables)  # type: ignore[arg-type]


def write_frame(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write CSV or Parquet, chosen by the file extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise ContractError(f"--out must end in .csv or .parquet, got {path.name}")
    return path


def write_dataset(dataset: Dataset, out_dir: Path | str, fmt: str = "parquet") -> dict[str, Path]:
    """Write every present table as ``<table>.<fmt>``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        name: write_frame(frame, out_dir / f"{name}.{fmt}")
        for name, frame in dataset.tables().items()
    }
