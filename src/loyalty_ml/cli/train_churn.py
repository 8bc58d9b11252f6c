"""``loyalty train churn``: the churn job (snapshots, LightGBM, calibration, baselines, Optuna,
MLflow, registry gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import AsOfOpt, DataOpt, console, friendly_errors, out


def register(app: typer.Typer) -> None:
    @app.command("churn")
    @friendly_errors
    def churn(
        data: DataOpt,
        as_of: AsOfOpt = None,
        horizon: Annotated[
            int | None,
            typer.Option("--horizon", help="Label horizon in days (default: churn.yaml)."),
        ] = None,
        label: Annotated[
            str | None,
            typer.Option("--label", help="no_purchase | no_activity (default: churn.yaml)."),
        ] = None,
        trials: Annotated[int, typer.Option("--trials", help="Optuna trials (0: no tuning).")] = 0,
        name: Annotated[
            str | None, typer.Option("--name", help="Registered model name (default churn-<data>).")
        ] = None,
        provider: Annotated[
            str,
            typer.Option(
                "--features", help="auto | builtin | pipeline | feast (churn_v1) feature provider."
            ),
        ] = "auto",
        config: Annotated[
            Path | None, typer.Option("--config", help="churn.yaml to use instead of the default.")
        ] = None,
        spacing: Annotated[
            int | None, typer.Option("--spacing", help="Days between training snapshots.")
        ] = None,
        save: Annotated[
            Path | None,
            typer.Option("--save", help="Also write the model artifact to this folder."),
        ] = None,
        no_register: Annotated[
            bool, typer.Option("--no-register", help="Log the run but do not register/gate.")
        ] = False,
    ) -> None:
        """Train the churn model on DATA as of --as-of; print baselines side by side."""
        from rich.table import Table

        from loyalty_ml.churn.config import load_churn_config
        from loyalty_ml.churn.job import train_churn
        from loyalty_ml.contract.validate import load_valid_dataset

        cfg = load_churn_config(config).with_overrides(
            **{
                "label.horizon_days": horizon,
                "label.definition": label,
                "snapshots.spacing_days": spacing,
            }
        )
        dataset = load_valid_dataset(data)
        result = train_churn(
            dataset,
            as_of,
            cfg,
            trials,
            name,
            provider=provider,
            register=not no_register,
            out_dir=save,
        )
        table = Table(
            title=f"churn {result.model_name} as of {result.as_of:%Y-%m-%d}, "
            f"{cfg.label.horizon_days}-day {cfg.label.definition} label "
            "(backtest slice; same members for every scorer)"
        )
        table.add_column("scorer", no_wrap=True, min_width=19)
        for col in ("auc", "pr_auc", "log_loss", "brier", "ece", "lift_10", "capture_10"):
            table.add_column(col, overflow="fold")
        for row in result.summary_rows():
            table.add_row(
                *[
                    f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))
                    for v in row.values()
                ]
            )
        out.print(table)
        ex = result.excluded
        out.print(
            f"rows: train {result.n_rows['train']}, calibration {result.n_rows['calibration']}, "
            f"features {result.n_rows['features']} ({result.provider}); excluded: "
            f"{ex['member_origins_joined_after_origin']} member-snapshots joined after the "
            f"snapshot, {ex['members_without_complete_horizon']} members without a complete "
            f"{cfg.label.horizon_days}-day horizon"
        )
        if result.gate_alias:
            out.print(
                f"registered {result.model_name} v{result.model_version} as "
                f"[bold]{result.gate_alias}[/]: {result.gate_reason}"
            )
        if result.study_name:
            out.print(f"optuna study {result.study_name} (best {result.best_params})")
        console.print(f"run {result.run_id}; {result.timings.get('total_s', 0):.1f} s")
