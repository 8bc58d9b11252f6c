"""Top-level Typer app: registers the command groups and top-level commands.

Each group lives in its own module (``cli/<group>.py`` defining ``app``); each top-level command
module (``cli/<command>.py``) defines ``register(app)``. Modules are listed here explicitly.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="loyalty",
    help="loyalty-ml: churn risk, benefit matching and recommendations with loyalty rules applied.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

COMMAND_GROUPS = (
    "data",
    "policy",
    "features",
    "train",
    "benefits",
    "campaign",
    "member",
    "experiment",
    "ab",
)
TOP_LEVEL_COMMANDS = ("pipeline", "score", "recommend", "serve", "demo")


def _optional_module(name: str) -> object | None:
    module_name = f"loyalty_ml.cli.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None


for _group in COMMAND_GROUPS:
    _module = _optional_module(_group)
    if _module is not None:
        app.add_typer(_module.app, name=_group)  # type: ignore[attr-defined]
for _command in TOP_LEVEL_COMMANDS:
    _module = _optional_module(_command)
    if _module is not None:
        _module.register(app)  # type: ignore[attr-defined]
