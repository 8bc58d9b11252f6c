"""``loyalty features``: build feature tables, register them in Feast, materialize, training sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import AsOfOpt, DataOpt, OutOpt, console, friendly_errors, out

app = typer.Typer(
    help="Feature tables, the Feast feature store, materialization and training sets.",
    no_args_is_help=True,
)

ServiceOpt = Annotated[str, typer.Option("--service", help="Feature service, e.g. churn_v1.")]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine", help="fast (bulk writes in Feast's format) or feast (Feast's materialize)."
    ),
]


def _load(data: Path):
    from loyalty_ml.contract.validate import load_valid_dataset

    return load_valid_dataset(data)


@app.command("build")
@friendly_errors
def build(
    data: DataOpt,
    as_of: AsOfOpt = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop snapshots built earlier at other instants.")
    ] = False,
) -> None:
    """Compute member and product features at --as-of and write them as feature tables."""
    from loyalty_ml.features.tables import manifest_path, write_feature_tables
    from loyalty_ml.timeutil import to_utc

    dataset = _load(data)
    t = to_utc(as_of) if as_of else dataset.latest_timestamp()
    manifest = write_feature_tables(dataset, [t], replace=replace)
    for family, table in manifest.tables.items():
        out.print(f"{family}: {len(table.columns)} features, {table.rows} rows -> {table.path}")
    for family, why in manifest.absent.items():
        console.print(f"[yellow]{family} absent:[/] {why}")
    out.print(f"as of {t.isoformat()}; manifest {manifest_path()}")


@app.command("apply")
@friendly_errors
def apply() -> None:
    """Register entities, feature views and services of the built tables (feast apply)."""
    from loyalty_ml.features.store import apply_repo

    applied = apply_repo()
    out.print(
        f"project {applied.store.project}: {len(applied.objects.views)} views, "
        f"services {', '.join(applied.objects.services)}"
    )
    for service, missing in applied.objects.unavailable.items():
        for family, why in missing.items():
            console.print(f"[yellow]{service}: {family} unavailable[/] ({why})")


@app.command("materialize")
@friendly_errors
def materialize_cmd(
    as_of: Annotated[
        str, typer.Option("--as-of", help="Serve the newest snapshot at or before this instant.")
    ],
    engine: EngineOpt = "fast",
) -> None:
    """Load the newest features at --as-of into the online store (Redis or SQLite)."""
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.store import open_store

    report = materialize(open_store(), as_of, engine=engine)
    rows = ", ".join(f"{k}={v}" for k, v in report.rows.items())
    out.print(
        f"{report.engine} -> {report.online_store} as of {report.as_of}: {rows} "
        f"in {report.seconds:.1f} s"
    )


@app.command("training-set")
@friendly_errors
def training_set_cmd(
    service: ServiceOpt,
    data: DataOpt,
    output: OutOpt,
    as_of: AsOfOpt = None,
    entities: Annotated[
        Path | None,
        typer.Option(
            "--entities", help="CSV/Parquet with member_id and event_timestamp (one row each)."
        ),
    ] = None,
) -> None:
    """Point-in-time training frame through Feast's get_historical_features (no labels)."""
    from loyalty_ml.contract.io import write_frame
    from loyalty_ml.features.training import training_set

    if (as_of is None) == (entities is None):
        raise typer.BadParameter("give exactly one of --as-of or --entities")
    frame, unavailable = training_set(_load(data), service, as_of=as_of, entities_file=entities)
    write_frame(frame, output)
    for family, why in unavailable.items():
        console.print(f"[yellow]{service}: {family} unavailable[/] ({why})")
    out.print(f"{len(frame)} rows x {frame.shape[1] - 2} features -> {output}")
