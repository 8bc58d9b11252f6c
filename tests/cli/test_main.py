"""The CLI shell: every group is reachable and user-facing errors become one line + exit code."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from loyalty_ml.cli.common import friendly_errors
from loyalty_ml.cli.main import app
from loyalty_ml.errors import MissingDataError

runner = CliRunner()


def test_help_lists_data_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "data" in result.output


def test_loyalty_errors_exit_nonzero_with_one_line() -> None:
    probe = typer.Typer()

    @probe.command()
    @friendly_errors
    def boom() -> None:
        raise MissingDataError("orders is mandatory")

    result = runner.invoke(probe, [])
    assert result.exit_code == 1
    assert "orders is mandatory" in result.output
    assert "Traceback" not in result.output
