"""``loyalty experiment``: run and compare experiment files (``experiments/<name>.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loyalty_ml.cli.common import console, friendly_errors, out

if TYPE_CHECKING:  # pandas costs ~1.5 s to import: not at every `loyalty` command's start
    import pandas as pd

app = typer.Typer(
    help="Experiments as files: run variants over time folds into MLflow, compare with CIs.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Experiment name (experiments/NAME.yaml) or a path.")]


def print_comparison(table: pd.DataFrame, metric: str) -> None:
    """Variants side by side for one metric: mean and 95% CI over the time folds."""
    shown = Table(title=f"{metric} (mean ± 95% CI over time folds)")
    for col in ("variant", "folds", "mean", "95% CI"):
        shown.add_column(col)
    for r in table[table["metric"] == metric].itertuples(index=False):
        ci = "n/a (1 fold)" if r.ci_half != r.ci_half else f"[{r.ci_low:.4f}, {r.ci_high:.4f}]"
        shown.add_row(str(r.variant), str(r.folds), f"{r.mean:.4f}", ci)
    out.print(shown)


@app.command("list")
@friendly_errors
def list_cmd() -> None:
    """Experiment files and what each compares."""
    from loyalty_ml.experiments import experiments_dir, load_spec

    for path in sorted(experiments_dir().glob("*.yaml")):
        spec = load_spec(path)
        names = ", ".join(v.name for v in spec.variants)
        out.print(f"[bold]{spec.name}[/] ({spec.job}, {spec.metric}): {names}", highlight=False)


@app.command("run")
@friendly_errors
def run_cmd(
    name: NameArg,
    data: Annotated[
        Path | None, typer.Option("--data", help="Override the spec's data directory.")
    ] = None,
    folds: Annotated[int | None, typer.Option("--folds", help="Override the fold count.")] = None,
    variant: Annotated[
        list[str] | None, typer.Option("--variant", help="Only these variants (repeatable).")
    ] = None,
    no_track: Annotated[bool, typer.Option("--no-track", help="Skip MLflow logging.")] = False,
) -> None:
    """Train every variant on each time fold; log to MLflow experiment exp-NAME."""
    from loyalty_ml.experiments import load_spec, run_experiment

    spec = load_spec(name)
    if data is not None:
        spec = spec.model_copy(update={"data": str(data)})
    result = run_experiment(
        spec,
        folds=folds,
        variants=variant,
        track=not no_track,
        progress=lambda m: console.print(m, highlight=False),
    )
    if result.table is not None:
        print_comparison(result.table, spec.metric)
    out.print(f"plot: {result.plot_path}")
    if result.run_id:
        out.print(f"MLflow: experiment {spec.mlflow_experiment}, run {result.run_id}")


@app.command("compare")
@friendly_errors
def compare_cmd(
    name: NameArg,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="Metrics to show (repeatable).")
    ] = None,
) -> None:
    """Variants side by side (mean ± 95% CI over folds) from the last run; writes a PNG."""
    from loyalty_ml.experiments import compare_experiment, load_spec

    spec = load_spec(name)
    table, plot = compare_experiment(name, metric)
    for m in metric or [spec.metric]:
        print_comparison(table, m)
    out.print(f"plot: {plot}")
