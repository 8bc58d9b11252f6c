"""``loyalty train benefits``: uplift models per benefit from the offers log, decision layer,
held-out policy evaluation, MLflow run, registration and the champion gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import AsOfOpt, DataOpt, console, friendly_errors, out

ObjectiveOpt = Annotated[
    str,
    typer.Option(
        "--objective",
        help="conversion | revenue | margin | auto (margin when costs and margins are known).",
    ),
]


def register(app: typer.Typer) -> None:
    @app.command("benefits")
    @friendly_errors
    def benefits(
        data: DataOpt,
        as_of: AsOfOpt = None,
        objective: ObjectiveOpt = "auto",
        trials: Annotated[
            int | None, typer.Option("--trials", help="Optuna trials (default: benefits.yaml).")
        ] = None,
        name: Annotated[
            str | None,
            typer.Option("--name", help="Registered model name (default benefits-<data>)."),
        ] = None,
        config: Annotated[
            Path | None, typer.Option("--config", help="benefits.yaml to use instead.")
        ] = None,
        save: Annotated[
            Path | None, typer.Option("--save", help="Also write the model artifact here.")
        ] = None,
        no_register: Annotated[
            bool, typer.Option("--no-register", help="Log the run but do not register/gate.")
        ] = False,
    ) -> None:
        """Train the benefit matcher on DATA's offers log as of --as-of."""
        from loyalty_ml.benefits.config import load_benefits_config
        from loyalty_ml.benefits.train import train_benefits
        from loyalty_ml.contract.validate import load_valid_dataset
        from loyalty_ml.errors import LoyaltyError

        if objective not in ("auto", "conversion", "revenue", "margin"):
            raise LoyaltyError(
                f"--objective must be conversion, revenue, margin or auto: {objective}"
            )
        cfg = load_benefits_config(config)
        dataset = load_valid_dataset(data)
        result = train_benefits(
            dataset,
            as_of,
            cfg,
            objective,  # type: ignore[arg-type]
            trials,
            name,
            register=not no_register,
            announce=lambda line: out.print(line, highlight=False),
        )
        costs = ", ".join(f"{a} {c:g} ({result.cost_sources[a]})" for a, c in result.costs.items())
        out.print(f"costs per offer: {costs}")
        # Plain text tables: readable in logs and CI (rich tables truncate at 80 columns).
        typer.echo("learners on the validation slice (greedy policy value, Qini per benefit):")
        typer.echo(result.learner_table.round(4).to_string(index=False))
        cols = ["policy", "ips", "ips_lo", "ips_hi", "snips", "dr", "dr_lo", "dr_hi"]
        cols += [c for c in ("dr_diff", "dr_diff_lo", "dr_diff_hi") if c in result.evaluation]
        typer.echo(
            f"policy value on the held-out slice ({result.objective}, per member, 95% CI); "
            f"differences paired vs {result.evaluation.attrs.get('reference')}:"
        )
        typer.echo(result.evaluation[cols].round(4).to_string(index=False))
        d = result.matcher.decision
        out.print(
            f"learner {result.learner}; decision: shrinkage {d.shrinkage}, switch margin "
            f"{d.switch_margin:.4g}, default {result.matcher.arms[d.default_arm]}; "
            f"personalised share {result.metrics.get('share_personalised', 0):.3f}; "
            f"net-value gate {'on' if result.matcher.calibration is not None else 'off'}"
        )
        if save is not None:
            path = result.matcher.save(save)
            out.print(f"model artifact written to {path}")
        if result.gate is not None:
            out.print(
                f"registered {result.model_name} v{result.gate.version} as "
                f"[bold]{result.gate.alias}[/]: {result.gate.reason}"
            )
        if result.run_id:
            console.print(f"run {result.run_id} (model {result.model_uri})")
