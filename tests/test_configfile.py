"""Reading domain YAML: every failure is a ConfigError that names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from loyalty_ml.configfile import load_yaml_model
from loyalty_ml.errors import ConfigError


class Inner(BaseModel):
    rate: float


class Outer(BaseModel):
    inner: Inner


def test_reads_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("inner:\n  rate: 0.5\n")
    assert load_yaml_model(Outer, path, "x.yaml", "x").inner.rate == 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "x configuration not found"),
        ("inner: [unclosed", "not valid YAML"),
        ("inner:\n  rate: fast\n", "inner.rate"),
    ],
)
def test_failures_name_file_and_key(tmp_path: Path, text: str | None, expected: str) -> None:
    path = tmp_path / "x.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_yaml_model(Outer, path, "x.yaml", "x")
