"""The data contract: the tables a shop brings, how they are read, and how they are validated."""

from loyalty_ml.contract.io import Dataset, load_dataset, read_table, write_dataset, write_frame
from loyalty_ml.contract.schema import TABLES, ColumnSpec, TableSpec
from loyalty_ml.contract.validate import (
    Problem,
    ValidationReport,
    load_valid_dataset,
    validate_dir,
)

__all__ = [
    "TABLES",
    "ColumnSpec",
    "Dataset",
    "Problem",
    "TableSpec",
    "ValidationReport",
    "load_dataset",
    "load_valid_dataset",
    "read_table",
    "validate_dir",
    "write_dataset",
    "write_frame",
]
