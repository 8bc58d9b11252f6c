"""``loyalty score``: batch churn scoring (the path the service shares)."""

from __future__ import annotations

from typing import Annotated, Any

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
        benefits: Annotated[
            bool,
            typer.Option(
                "--benefits/--no-benefits",
                help="Add each member's best eligible benefit (benefits-<data>@champion).",
            ),
        ] = True,
        report: Annotated[
            bool,
            typer.Option(
                "--report/--no-report",
                help="Write a monitoring report (drift, score shift, matured calibration, "
                "campaign outcomes) under LOYALTY_HOME/reports.",
            ),
        ] = True,
    ) -> None:
        """One row per member: member_id, churn_probability, risk_band, value, value_segment,
        value_at_risk, reasons (JSON), top_reason, and best_benefit, best_benefit_net_value,
        best_benefit_cost when a benefits champion exists."""
        from loyalty_ml.churn.scorer import ChurnScorer
        from loyalty_ml.contract.io import write_frame
        from loyalty_ml.contract.validate import load_valid_dataset
        from loyalty_ml.timeutil import to_utc
        from loyalty_ml.tracking import champion_uri, registered_model_name

        if not all_members:
            fail("only --all is supported (per-member scoring is the service's job)")
        dataset = load_valid_dataset(data)
        at = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
        source = model or registered_model_name("churn", dataset.name)
        with console.status(f"loading {source}"):
            scorer = ChurnScorer.load(source)
        with console.status(f"scoring members of {dataset.name} as of {at.date()}"):
            features = scorer.features_for(dataset, at)
            frame = scorer.score_dataset(
                dataset, at, reasons_top=reasons_top or None, top_k=top_k, features=features
            )
        console.print(f"scored {len(frame):,} members")
        if benefits:
            with console.status("best eligible benefit per member"):
                frame = _with_best_benefit(
                    frame,
                    dataset,
                    champion_uri(registered_model_name("benefits", dataset.name)),
                    at,
                )
        write_frame(frame, out_file)
        counts = frame["risk_band"].value_counts().to_dict()
        out.print(f"{len(frame)} members scored with {scorer.source} -> {out_file}; bands {counts}")
        console.print(f"value segments {frame['value_segment'].value_counts().to_dict()}")
        if report:
            from loyalty_ml.campaigns.contact_log import open_contact_log
            from loyalty_ml.monitoring.scoring import scoring_report

            with console.status("monitoring report"):
                log = open_contact_log()
                try:
                    result = scoring_report(
                        dataset, scorer, at, contact_log=log, current_features=features
                    )
                finally:
                    log.close()
            alerts = ", ".join(result.alerts[:5]) or "none"
            out.print(f"monitoring report: {result.path} (drift alerts: {alerts})")


def _with_best_benefit(frame: Any, dataset: Any, benefits_source: str, at: Any) -> Any:
    """``frame`` plus best_benefit / best_benefit_net_value / best_benefit_cost (the at-risk
    list's choice rule without a budget); unchanged, with a note, when no model is available."""
    from loyalty_ml.campaigns.at_risk import best_options
    from loyalty_ml.campaigns.batch import benefit_options

    try:
        options = benefit_options(dataset, benefits_source, at, frame["member_id"].astype(str))
    except Exception as exc:  # no champion yet, or one trained on other data: scores still stand
        console.print(f"best benefit skipped ({benefits_source}: {type(exc).__name__}: {exc})")
        return frame
    best = best_options(options[options["eligible"].astype(bool)])
    best = best[["member_id", "benefit_id", "expected_net_value", "cost"]].rename(
        columns={
            "benefit_id": "best_benefit",
            "expected_net_value": "best_benefit_net_value",
            "cost": "best_benefit_cost",
        }
    )
    merged = frame.assign(member_id=frame["member_id"].astype(str)).merge(
        best, on="member_id", how="left", validate="one_to_one"
    )
    return merged
