"""``loyalty data``: generate, validate and import contract data sets."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import console, fail, friendly_errors, out

app = typer.Typer(
    help="Generate, validate and import data in the contract format.", no_args_is_help=True
)


# --- generate (simulator engineer; docs/simulator.md) ---


@app.command("generate")
@friendly_errors
def generate_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the tables and truth/.")],
    members: Annotated[
        int | None, typer.Option("--members", min=1, help="Members (default: config).")
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", min=30, help="Simulated days (default: config).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (default: config).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Simulator YAML (default: config/simulator.yaml)."),
    ] = None,
) -> None:
    """Simulate a loyalty shop: all six contract tables plus truth/ (latent traits, true churn
    probabilities, true uplift per benefit, preferences). Deterministic for a seed."""
    from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from loyalty_ml.simulate import generate, load_config

    cfg = load_config(config, members=members, days=days, seed=seed)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.completed:,}/{task.total:,} members",
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("simulating", total=cfg.members)
        summary = generate(
            cfg, out_dir, progress=lambda done, _total: bar.update(task, completed=done)
        )
    out.print(
        f"[bold]simulated shop[/] → {out_dir}  ({summary['members']:,} members, "
        f"{summary['start']} … {summary['end']}, seed {summary['seed']})",
        highlight=False,
    )
    for name, rows in summary["rows"].items():
        out.print(f"  {name}: {rows:,} rows", highlight=False)
    out.print(
        f"  no completed order in the last 90 days: {summary['no_order_last_90d']:.1%}; "
        f"mean true P(churn, next 90 days): {summary['mean_p_churn_next_90d']:.1%}",
        highlight=False,
    )
    out.print(f"  took {summary['seconds']:.1f} s", highlight=False)


# --- validate / import (contract engineer); other commands of this group go below or above. ---


class ImportSource(StrEnum):
    cdnow = "cdnow"
    hillstrom = "hillstrom"
    amazon_seq = "amazon-seq"


class TableFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def _show_report(report: object, text: bool) -> None:
    from loyalty_ml.contract.validate import ValidationReport

    assert isinstance(report, ValidationReport)
    if text:
        out.print(report.to_text(), highlight=False, soft_wrap=True)
    elif report.problems:
        out.print(report.to_rich())
    else:
        out.print(report.headline(), highlight=False)


@app.command("validate")
@friendly_errors
def validate_cmd(
    data_dir: Annotated[Path, typer.Argument(help="Contract directory to check.")],
    max_per_kind: Annotated[
        int | None,
        typer.Option("--max-per-kind", min=1, help="Row numbers listed per problem (default 20)."),
    ] = None,
    text: Annotated[
        bool, typer.Option("--text", help="Plain lines instead of a table (for logs and grep).")
    ] = False,
) -> None:
    """Check types, keys, references, timestamps, amounts and duplicates; list every problem.

    Exit code 1 when any error is found; warnings are shown but exit 0.
    """
    from loyalty_ml.contract.validate import validate_dir

    with console.status(f"validating {data_dir} …"):
        report = validate_dir(data_dir, max_per_kind)
    _show_report(report, text)
    if not report.ok:
        fail(f"{len(report.errors)} error(s): {data_dir} violates the data contract")


@app.command("import")
@friendly_errors
def import_cmd(
    source: Annotated[ImportSource, typer.Argument(help="Which public data set SRC holds.")],
    src: Annotated[Path, typer.Argument(help="The data set's folder (or its main file).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Contract directory to write.")],
    fmt: Annotated[
        TableFormat, typer.Option("--format", help="File format of the written tables.")
    ] = TableFormat.parquet,
) -> None:
    """Convert a public data set (../shared/data) into the contract, then validate the result."""
    from loyalty_ml.adapters import convert, get_adapter
    from loyalty_ml.contract.config import load_data_config
    from loyalty_ml.contract.io import write_dataset
    from loyalty_ml.contract.validate import validate_dir

    adapter = get_adapter(source.value)
    cfg = load_data_config().adapters
    with console.status(f"converting {source.value} from {src} …"):
        dataset = convert(source.value, src, cfg)
    with console.status(f"writing {out_dir} …"):
        written = write_dataset(dataset, out_dir, fmt.value)
    out.print(f"[bold]{source.value}[/] → {out_dir}", highlight=False)
    for name, path in written.items():
        out.print(f"  {path.name}: {len(dataset.tables()[name]):,} rows", highlight=False)
    out.print("assumptions:", highlight=False)
    for note in adapter.notes(cfg):
        out.print(f"  - {note}", highlight=False)
    with console.status(f"validating {out_dir} …"):
        report = validate_dir(out_dir)
    _show_report(report, text=False)
    if not report.ok:
        fail(f"converted {source.value} data failed validation ({len(report.errors)} error(s))")
