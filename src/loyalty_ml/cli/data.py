"""``loyalty data``: generate, validate and import contract data sets."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Generate, validate and import data in the contract format.", no_args_is_help=True
)
