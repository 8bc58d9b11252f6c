"""Options and helpers every command shares (the conventions in the README, "CLI")."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from loyalty_ml.errors import LoyaltyError

console = Console(stderr=True)
out = Console()

DataOpt = Annotated[
    Path, typer.Option("--data", help="Contract directory (tables as .parquet or .csv).")
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Read nothing after this instant (inclusive, UTC; a date means 00:00). "
        "Default: the latest timestamp in the data.",
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output file; .csv or .parquet by extension.")]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    """Exit non-zero with a one-line reason."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Turn user-facing errors into one line and a non-zero exit code, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LoyaltyError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
