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


def test_demo_rejects_an_unknown_experiment_before_any_work(loyalty_home) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["demo", "--experiment", "no-such-experiment"])
    assert result.exit_code == 1
    assert "no-such-experiment" in result.output and "churn-horizon" in result.output
    assert not (loyalty_home / "data" / "demo").exists()  # nothing simulated
