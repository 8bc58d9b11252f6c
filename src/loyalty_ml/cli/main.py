"""Top-level Typer app: registers the command groups."""

from __future__ import annotations

import typer

from loyalty_ml.cli import data as data_cli

app = typer.Typer(
    name="loyalty",
    help="loyalty-ml: churn risk, benefit matching and recommendations with loyalty rules applied.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(data_cli.app, name="data")


def _register_optional_groups() -> None:
    """Command groups added by later modules register here when present."""
    import importlib

    for module_name, group in (
        ("loyalty_ml.cli.policy", "policy"),
        ("loyalty_ml.cli.features", "features"),
        ("loyalty_ml.cli.train", "train"),
        ("loyalty_ml.cli.benefits", "benefits"),
        ("loyalty_ml.cli.campaign", "campaign"),
        ("loyalty_ml.cli.member", "member"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        app.add_typer(module.app, name=group)
    for module_name in ("loyalty_ml.cli.demo", "loyalty_ml.cli.jobs"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(app)


_register_optional_groups()
