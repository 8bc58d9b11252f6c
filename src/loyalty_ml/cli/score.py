"""``loyalty score``: batch churn scoring (the path the service shares)."""

from __future__ import annotations

from typing import Annotated

import typer

from loyalty_ml.cli.common import AsOfOpt, DataOpt, OutOpt, console, fail, friendly_errors, out


def register(app: typer.Typer) -> None:
    @app.command("score")
    @friendly_errors
    def score(
        data: DataOpt,
        out_file: OutOpt,
        as_of: AsOfOpt = None,
        all_members: Annotated[
            bool, typer.Option("--all", help="Score every member known at --as-of.")
        ] = False,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                help="Model folder, name or models:/ URI (default churn-<data>@champion).",
            ),
        ] = None,
        reasons_top: Annotated[
            int,
            typer.Option(
                "--reasons-top",
                help="Reason codes for the N highest value-at-risk members (0: all).",
            ),
        ] = 50_000,
        top_k: Annotated[int, typer.Option("--top-k", help="Reason codes per member.")] = 3,
    ) -> None:
        """One row per member: member_id, churn_probability, risk_band, value, value_segment,
        value_at_risk, reasons (JSON), top_reason."""
        from loyalty_ml.churn.scorer import ChurnScorer
        from loyalty_ml.contract.io import write_frame
        from loyalty_ml.contract.validate import load_valid_dataset
        from loyalty_ml.tracking import registered_model_name

        if not all_members:
            fail("only --all is supported (per-member scoring is the service's job)")
        dataset = load_valid_dataset(data)
        source = model or registered_model_name("churn", dataset.name)
        scorer = ChurnScorer.load(source)
        frame = scorer.score_dataset(dataset, as_of, reasons_top=reasons_top or None, top_k=top_k)
        write_frame(frame, out_file)
        counts = frame["risk_band"].value_counts().to_dict()
        out.print(f"{len(frame)} members scored with {scorer.source} -> {out_file}; bands {counts}")
        console.print(f"value segments {frame['value_segment'].value_counts().to_dict()}")
