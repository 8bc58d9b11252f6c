"""The champions, resolved once by ``loyalty serve`` before any worker starts (no pandas here).

``resolve_champions`` runs in the parent process and writes what it found to a JSON file that
the workers get through ``RESOLVED_ENV``; ``read_resolved`` is the workers' side. Kept apart from
``adapters`` (which needs pandas) so the parent starts the server without importing pandas.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from loyalty_ml.tracking import registered_model_name

CHAMPION_KINDS = ("churn", "recs", "benefits")
RESOLVED_ENV = "LOYALTY_CHAMPIONS_FILE"  # set by `loyalty serve` for its workers


def resolve_champions(dataset: str, dest: Path) -> dict[str, Any]:
    """Resolve every ``<kind>-<dataset>@champion`` once and copy its artifacts under ``dest``.

    ``loyalty serve`` calls this in the parent, before any worker starts, and hands the workers
    the result (``RESOLVED_ENV`` → a JSON file): workers then load local files and never contact
    MLflow at start (first contact + alias lookups cost ~10 s per worker here). A missing champion
    is recorded with its message, so readiness still says why."""
    names = [registered_model_name(kind, dataset) for kind in CHAMPION_KINDS]
    fast = _sqlite_champions(names)
    if fast is not None:
        return {"dataset": dataset, "champions": fast, "via": "sqlite"}
    import mlflow
    from mlflow.exceptions import MlflowException

    from loyalty_ml.tracking import configure_mlflow

    configure_mlflow()
    client = mlflow.MlflowClient()
    out: dict[str, Any] = {"dataset": dataset, "champions": {}, "via": "mlflow"}
    for kind in CHAMPION_KINDS:
        name = registered_model_name(kind, dataset)
        try:
            version = client.get_model_version_by_alias(name, "champion").version
        except MlflowException:
            out["champions"][name] = {"error": no_champion(name)}
            continue
        local = dest / name / str(version)
        done = local / ".complete"
        if not done.is_file():  # an earlier start copied this version already: reuse it
            local.mkdir(parents=True, exist_ok=True)
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=str(local)
            )
            done.touch()
        out["champions"][name] = {"version": f"{name}/{version}", "path": str(local)}
    return out


def _sqlite_champions(names: list[str]) -> dict[str, Any] | None:
    """The local profile's shortcut: aliases and artifact folders read straight from MLflow's
    SQLite tracking store (read-only; ~10 ms instead of ~10 s for importing MLflow and opening
    the store). Only when every found version's artifacts are a local folder; None on anything
    unexpected (another store, another schema): the caller then asks MLflow itself."""
    import sqlite3
    from urllib.parse import unquote, urlparse

    from loyalty_ml.settings import get_settings

    uri = str(get_settings().tracking_uri)
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    if not db.is_file():  # no tracking store at all: nothing was ever registered here
        return {name: {"error": no_champion(name)} for name in names}
    out: dict[str, Any] = {}
    try:
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
            for name in names:
                row = conn.execute(
                    "SELECT v.version, v.storage_location FROM registered_model_aliases a "
                    "JOIN model_versions v ON v.name = a.name AND v.version = a.version "
                    "WHERE a.name = ? AND a.alias = 'champion'",
                    (name,),
                ).fetchone()
                if row is None:
                    out[name] = {"error": no_champion(name)}
                    continue
                location = urlparse(str(row[1] or ""))
                local = Path(unquote(location.path))
                if location.scheme != "file" or not local.is_dir():
                    return None
                out[name] = {"version": f"{name}/{row[0]}", "path": str(local)}
    except sqlite3.Error:
        return None
    return out


def read_resolved() -> dict[str, Any] | None:
    """What the parent resolved (``RESOLVED_ENV``), or None (then workers ask MLflow)."""
    path = os.environ.get(RESOLVED_ENV)
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def no_champion(name: str) -> str:
    return f"no champion for {name!r}: train one (`loyalty train ...`) so it gets the alias"
