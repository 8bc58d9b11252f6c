"""The data contract: the tables a shop brings, how they are read, and how they are validated."""

from loyalty_ml.contract.io import load_dataset, read_table, write_frame
from loyalty_ml.contract.schema import TABLES, ColumnSpec, TableSpec

__all__ = ["TABLES", "ColumnSpec", "TableSpec", "load_dataset", "read_table", "write_frame"]
