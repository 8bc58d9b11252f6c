"""``loyalty train recs``: tune, evaluate, register and gate the recommendation blend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import AsOfOpt, DataOpt, console, friendly_errors, out


def register(app: typer.Typer) -> None:
    @app.command("recs")
    @friendly_errors
    def train_recs_cmd(
        data: DataOpt,
        as_of: AsOfOpt = None,
        trials: Annotated[
            int | None, typer.Option("--trials", help="Optuna trials per source (blend: 2x).")
        ] = None,
        name: Annotated[
            str | None, typer.Option("--name", help="Registered model name (default recs-<data>).")
        ] = None,
        protocol: Annotated[
            str | None,
            typer.Option(
                "--protocol", help="temporal | leave_one_out (default: config/recs.yaml)."
            ),
        ] = None,
        config_file: Annotated[
            Path | None, typer.Option("--config", help="A recs.yaml to use instead of config/.")
        ] = None,
        register_model: Annotated[
            bool, typer.Option("--register/--no-register", help="Register and gate in MLflow.")
        ] = True,
    ) -> None:
        """Train popularity, ALS, BPR, item-kNN and transitions; tune on validation; report each
        source and the blend on test; build the serving bundle; register with the gate."""
        from loyalty_ml.contract import load_valid_dataset
        from loyalty_ml.recs.config import load_recs_config
        from loyalty_ml.recs.train import train_recs

        config = load_recs_config(config_file)
        if protocol:
            config = config.model_copy(
                update={"tuning": config.tuning.model_copy(update={"protocol": protocol})}
            )
            config = type(config).model_validate(config.model_dump())
        dataset = load_valid_dataset(data)
        with console.status("training recommendations…"):
            result = train_recs(dataset, as_of, config, trials, name, register=register_model)
        summary = result.summary()
        rows = {
            m: {
                k: round(v, 4)
                for k, v in vals.items()
                if k in ("hr@10", "ndcg@10", "recall@20", "coverage@10")
            }
            for m, vals in result.metrics.items()
        }
        out.print_json(json.dumps({**summary, "test": rows}, default=str))
