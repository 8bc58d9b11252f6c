"""``loyalty pipeline``: features + every model the data supports, with a summary table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from loyalty_ml.cli.common import AsOfOpt, DataOpt, console, friendly_errors, out


def print_summary(result: object) -> None:
    from loyalty_ml.pipeline import PipelineResult

    assert isinstance(result, PipelineResult)
    table = Table(title=f"pipeline · {result.dataset} · as of {result.as_of}")
    for column in ("stage", "status", "s", "model", "alias", "key metrics"):
        table.add_column(column, overflow="fold")
    colour = {"done": "green", "skipped": "yellow", "failed": "red"}
    for s in result.stages:
        metrics = ", ".join(
            f"{k}={v:,.0f}" if float(v).is_integer() else f"{k}={v:.3f}"
            for k, v in list(s.metrics.items())[:3]
        )
        model = f"{s.model_name} v{s.model_version}" if s.model_name else ""
        table.add_row(
            s.stage,
            f"[{colour[s.status]}]{s.status}[/]",
            f"{s.seconds:.0f}",
            model,
            s.alias or "",
            metrics,
        )
    out.print(table)
    for s in result.stages:
        if s.detail and s.status != "failed":
            out.print(f"  {s.stage}: {s.detail.splitlines()[0]}", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("pipeline")
    @friendly_errors
    def pipeline(
        data: DataOpt,
        as_of: AsOfOpt = None,
        trials: Annotated[
            int | None, typer.Option("--trials", help="Optuna trials per model (default: config).")
        ] = None,
        name: Annotated[
            str | None,
            typer.Option("--name", help="Registered model name stem (default: the data set's)."),
        ] = None,
        stages: Annotated[
            str, typer.Option("--stages", help="Comma-separated subset of the stages.")
        ] = "features,churn,recs,benefits",
    ) -> None:
        """Build features and train every model the data supports (churn, recs, benefits)."""
        from loyalty_ml.contract.validate import load_valid_dataset
        from loyalty_ml.pipeline import manifest_path, run_pipeline

        dataset = load_valid_dataset(data)
        with console.status("pipeline") as status:
            result = run_pipeline(
                dataset,
                data,
                as_of=as_of,
                trials=trials,
                name=name,
                stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
                on_stage=lambda stage: status.update(f"pipeline: {stage}"),
            )
        print_summary(result)
        for s in result.stages:
            if s.status == "failed":
                console.print(f"[red]{s.stage} failed:[/] {s.detail}")
        out.print(f"manifest: {manifest_path()}")
        if not result.ok:
            raise typer.Exit(1)
