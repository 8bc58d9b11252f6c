"""What ``loyalty serve`` does before handing over to the server: keys, environment, command.

Kept apart from the CLI so tests call the same functions: ``prepare_keys`` (generate once, in the
parent, before any worker starts), ``server_env`` (tuning from the field notes) and
``bentoml_command`` / ``run_uvicorn``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from loyalty_ml.errors import ConfigError
from loyalty_ml.serving.config import ServingConfig
from loyalty_ml.serving.keys import ensure_local_keys, read_keys
from loyalty_ml.serving.resolve import RESOLVED_ENV
from loyalty_ml.settings import PACKAGE_ROOT, get_settings

SERVICE_TARGET = "serving.service:LoyaltyService"


def repo_root() -> Path | None:
    """The checkout holding ``serving/service.py`` (absent in a plain wheel install)."""
    root = PACKAGE_ROOT.parent.parent
    return root if (root / "serving" / "service.py").is_file() else None


def prepare_keys(config: ServingConfig) -> str:
    """Make sure keys exist; returns a line saying where they are (never the keys)."""
    auth = config.auth
    if os.environ.get(auth.keys_env):
        read_keys(auth)  # validates
        return f"API keys: from ${auth.keys_env}"
    path = auth.keys_path
    if path.exists():
        read_keys(auth)
        return f"API keys: {path}"
    if get_settings().profile != "local":
        raise ConfigError(
            f"no API keys in the production profile: set ${auth.keys_env} or write {path}"
        )
    ensure_local_keys(path)
    return f"API keys generated: {path} (mode 0600; storefront, campaigns, admin)"


def prepare_champions(dataset: str | None = None) -> tuple[str | None, str]:
    """Resolve the champions once, here, before workers start; ``(file, line to print)``.

    Workers read the file (``resolve.RESOLVED_ENV``) and load local artifacts without contacting
    MLflow. If resolving fails altogether (no MLflow store at all), workers fall back to asking
    MLflow themselves and readiness reports what they find."""
    import json

    from loyalty_ml.pipeline import read_manifest
    from loyalty_ml.serving.resolve import resolve_champions

    dataset = (
        dataset
        or os.environ.get("LOYALTY_DATASET")
        or (read_manifest() or {}).get("dataset")
        or "demo"
    )
    dest = get_settings().path("serving", "champions")
    try:
        resolved = resolve_champions(dataset, dest)
    except Exception as exc:  # workers will try MLflow themselves and report
        return None, f"champions: not resolved up front ({type(exc).__name__}); workers will ask"
    path = dest.parent / "champions.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(resolved, indent=1))
    tmp.replace(path)
    found = [
        entry.get("version") or f"{name}: none" for name, entry in resolved["champions"].items()
    ]
    return str(path), "champions: " + ", ".join(found)


def server_env(workers: int, champions_file: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    env.setdefault("OTEL_SDK_DISABLED", "true")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["LOYALTY_SERVE_WORKERS"] = str(workers)
    env["LOYALTY_HOME"] = str(get_settings().home_dir)  # workers share the parent's state dir
    env.pop(RESOLVED_ENV, None)
    if champions_file:
        env[RESOLVED_ENV] = champions_file
    return env


def bentoml_command(host: str, port: int) -> list[str]:
    root = repo_root()
    if root is None:
        raise ConfigError("serving/service.py not found: use --engine uvicorn outside a checkout")
    bentoml = Path(sys.executable).with_name("bentoml")
    head = [str(bentoml)] if bentoml.exists() else [sys.executable, "-m", "bentoml"]
    return [
        *head,
        "serve",
        SERVICE_TARGET,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(root),
    ]


def uvicorn_command(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "loyalty_ml.serving.asgi:app",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
