"""Real-data adapters: public data sets converted into the data contract.

Each adapter is a pure function ``convert(src, config) -> Dataset`` plus the list of synthetic
assumptions it makes (``notes``), which the CLI prints next to what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loyalty_ml.contract.config import AdaptersConfig, load_data_config
from loyalty_ml.contract.io import Dataset
from loyalty_ml.errors import ContractError


@dataclass(frozen=True)
class Adapter:
    name: str
    source: str
    convert: Callable[[Path, AdaptersConfig], Dataset]
    notes: Callable[[AdaptersConfig], list[str]]


def _registry() -> dict[str, Adapter]:
    from loyalty_ml.adapters import amazon_beauty, cdnow, hillstrom

    return {
        "cdnow": Adapter("cdnow", cdnow.SOURCE, cdnow.convert_cdnow, cdnow.notes),
        "hillstrom": Adapter(
            "hillstrom", hillstrom.SOURCE, hillstrom.convert_hillstrom, hillstrom.notes
        ),
        "amazon-seq": Adapter(
            "amazon-seq",
            amazon_beauty.SOURCE,
            amazon_beauty.convert_amazon_beauty,
            amazon_beauty.notes,
        ),
    }


ADAPTER_NAMES = ("cdnow", "hillstrom", "amazon-seq")


def get_adapter(name: str) -> Adapter:
    adapters = _registry()
    if name not in adapters:
        raise ContractError(f"unknown data set {name!r}; choose one of {', '.join(adapters)}")
    return adapters[name]


def convert(name: str, src: Path | str, config: AdaptersConfig | None = None) -> Dataset:
    """Convert the public data set ``name`` found at ``src`` (its folder or its main file)."""
    cfg = config or load_data_config().adapters
    return get_adapter(name).convert(Path(src), cfg)


def resolve_source(src: Path, default_file: str) -> Path:
    """Accept the data set's folder or the file itself; say clearly what is missing."""
    path = Path(src)
    if path.is_dir():
        path = path / default_file
    if not path.is_file():
        raise ContractError(
            f"source file not found: {path} (expected {default_file}; see ../shared/data/README.md)"
        )
    return path
