"""One way to read a domain YAML file into its pydantic model, with errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from loyalty_ml.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml_mapping(path: Path | str, what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty file: ``{}``).

    Missing file, invalid YAML and a non-mapping top level raise ``ConfigError`` naming the file.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} configuration not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw or {}


def validate_model(model: type[M], raw: dict[str, Any], source: Path | str) -> M:
    """``model.model_validate(raw)``; the first error becomes ``ConfigError("source: key: msg")``."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{source}: {key}: {msg}" if key else f"{source}: {msg}") from exc


def load_yaml_model(model: type[M], path: Path | str | None, default_file: str, what: str) -> M:
    """Read ``path`` (default: ``<config_dir>/<default_file>``) into ``model``.

    Missing file, invalid YAML and invalid values all raise ``ConfigError`` naming the file and,
    for invalid values, the dotted key.
    """
    if path is None:
        from loyalty_ml.settings import get_settings

        path = get_settings().config_dir / default_file
    return validate_model(model, read_yaml_mapping(path, what), path)
