"""One way to read a domain YAML file into its pydantic model, with errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from loyalty_ml.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(model: type[M], path: Path | str | None, default_file: str, what: str) -> M:
    """Read ``path`` (default: ``<config_dir>/<default_file>``) into ``model``.

    Missing file, invalid YAML and invalid values all raise ``ConfigError`` naming the file and,
    for invalid values, the dotted key.
    """
    if path is None:
        from loyalty_ml.settings import get_settings

        path = get_settings().config_dir / default_file
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} configuration not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {key}: {first['msg']}") from exc
