"""``loyalty train``: one command per model family, each defined beside its job.

``cli/train_<family>.py`` defines ``register(app)`` adding a command named after the family.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Train models (tuned with Optuna, tracked and gated in MLflow).", no_args_is_help=True
)

for _family in ("churn", "recs", "benefits"):
    _module_name = f"loyalty_ml.cli.train_{_family}"
    try:
        importlib.import_module(_module_name).register(app)
    except ModuleNotFoundError as exc:
        if exc.name != _module_name:
            raise
