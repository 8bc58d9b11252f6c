"""``loyalty demo``: simulate a shop and run the whole job on it, then say where to look."""

from __future__ import annotations

from typing import Annotated

import typer

from loyalty_ml.cli.common import console, friendly_errors, out


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @friendly_errors
    def demo(
        members: Annotated[
            int, typer.Option("--members", min=500, help="Simulated members.")
        ] = 5000,
        days: Annotated[int, typer.Option("--days", min=180, help="Simulated days.")] = 365,
        seed: Annotated[int, typer.Option("--seed", help="Simulator seed.")] = 42,
        trials: Annotated[
            int, typer.Option("--trials", min=0, help="Optuna trials per model.")
        ] = 1,
        limit: Annotated[int, typer.Option("--limit", min=1, help="At-risk list size.")] = 200,
        budget: Annotated[float, typer.Option("--budget", min=0, help="Campaign budget.")] = 2000.0,
        experiment: Annotated[
            str,
            typer.Option("--experiment", help="Experiment file compared at the end ('' skips it)."),
        ] = "churn-horizon",
        experiment_folds: Annotated[
            int, typer.Option("--experiment-folds", min=1, help="Time folds of the experiment.")
        ] = 2,
    ) -> None:
        """Simulate a shop, build features, train and gate every model, score all members,
        build an at-risk campaign list, sample recommendations, a monitoring report and one
        experiment comparison."""
        from rich.table import Table

        from loyalty_ml.campaigns.at_risk import AtRiskRequest
        from loyalty_ml.campaigns.batch import batch_at_risk, members_frame
        from loyalty_ml.cli.pipeline import print_summary
        from loyalty_ml.contract.io import write_frame
        from loyalty_ml.contract.validate import load_valid_dataset
        from loyalty_ml.demo import DEMO_NAME, generate_demo_data, sample_recommendations
        from loyalty_ml.pipeline import run_pipeline
        from loyalty_ml.settings import get_settings
        from loyalty_ml.tracking import champion_uri, registered_model_name

        if experiment:  # a typo in the name fails now, not after the pipeline
            from loyalty_ml.experiments import load_spec

            load_spec(experiment)
        settings = get_settings()
        home = settings.home_dir
        out.rule("1/5 simulate a shop")
        with console.status(f"simulating {members:,} members × {days} days"):
            data_dir = generate_demo_data(members, days, seed)
        dataset = load_valid_dataset(data_dir, name=DEMO_NAME)
        out.print(
            f"{data_dir}: " + ", ".join(f"{k} {len(v):,}" for k, v in dataset.tables().items())
        )

        out.rule("2/5 pipeline: features → churn, recs, benefits (Optuna → MLflow → gate)")
        with console.status("pipeline") as status:
            result = run_pipeline(
                dataset,
                data_dir,
                trials=trials,
                on_stage=lambda stage: status.update(f"pipeline: {stage}"),
            )
        print_summary(result)
        failed = [s for s in result.stages if s.status == "failed"]
        for s in failed:
            console.print(f"[red]{s.stage} failed:[/] {s.detail}")
        churn = result.stage("churn")
        if churn is None or churn.status != "done":
            raise typer.Exit(1)

        out.rule("3/5 score every member (risk, band, value, reasons)")
        from loyalty_ml.churn.scorer import ChurnScorer

        churn_name = registered_model_name("churn", DEMO_NAME)
        with console.status("scoring"):
            scores = ChurnScorer.load(churn_name).score_dataset(dataset, reasons_top=5000, top_k=3)
        scores_path = write_frame(scores, home / "outputs" / "scores.parquet")
        bands = scores["risk_band"].value_counts().to_dict()
        out.print(f"{len(scores):,} members scored → {scores_path}; risk bands {bands}")

        out.rule("4/5 at-risk recall campaign (contact log, caps, budget, holdout)")
        benefits = result.stage("benefits")
        benefits_source = (
            champion_uri(registered_model_name("benefits", DEMO_NAME))
            if benefits is not None and benefits.status == "done"
            else None
        )
        campaign_id = f"demo-{result.as_of[:10]}"
        with console.status("building the at-risk list"):
            campaign = batch_at_risk(
                dataset,
                AtRiskRequest(campaign_id=campaign_id, limit=limit, budget=budget),
                churn_source=churn_name,
                benefits_source=benefits_source,
            )
        listed = members_frame(campaign)
        list_path = write_frame(listed, home / "outputs" / f"{campaign_id}.csv")
        state = "replayed (idempotent: same id, same list)" if campaign.replayed else "recorded"
        out.print(
            f"campaign {campaign_id}: {len(listed)} members {state} → {list_path}; "
            f"excluded {campaign.payload.get('excluded')}"
        )
        if len(listed):
            table = Table(title="top of the at-risk list")
            cols = ["member_id", "churn_probability", "value_segment", "reasons", "benefit_id"]
            for c in [*cols, "cost", "channel"]:
                table.add_column(c, overflow="fold")
            for row in listed.head(8).itertuples(index=False):
                table.add_row(
                    row.member_id,
                    f"{row.churn_probability:.2f}",
                    row.value_segment,
                    " ".join(r.split(":")[0] for r in row.reasons.split(";") if r),
                    row.benefit_id,
                    f"{row.cost:.0f}",
                    row.channel,
                )
            out.print(table)

        out.rule("5/5 recommendations")
        recs = result.stage("recs")
        if recs is not None and recs.status == "done":
            sample_ids = [*scores["member_id"].astype(str).head(2), "new-member-x"]
            recommended = sample_recommendations(
                dataset, champion_uri(registered_model_name("recs", DEMO_NAME)), sample_ids, 5
            )
            table = Table(title="sample recommendations (home page)")
            for c in ["member_id", "rank", "product_id", "score", "reason", "points", "fallback"]:
                table.add_column(c, overflow="fold")
            for row in recommended.itertuples(index=False):
                table.add_row(
                    row.member_id,
                    str(row.rank),
                    row.product_id,
                    f"{row.score:.3f}",
                    str(row.reason or ""),
                    "" if row.points_to_earn is None else str(row.points_to_earn),
                    row.fallback or "",
                )
            out.print(table)
        else:
            out.print(f"recommendations skipped: {recs.detail if recs else 'not run'}")

        out.rule("monitoring report (drift vs the training window, score shift, calibration)")
        from loyalty_ml.campaigns.contact_log import open_contact_log
        from loyalty_ml.monitoring.scoring import scoring_report

        with console.status("monitoring report"):
            log = open_contact_log()
            try:
                report = scoring_report(dataset, ChurnScorer.load(churn_name), contact_log=log)
            finally:
                log.close()
        drifted = ", ".join(report.alerts[:5]) if report.alerts else "none"
        out.print(f"report: {report.path}\nfeatures over the drift threshold: {drifted}")

        experiment_plot = None
        if experiment:
            from loyalty_ml.cli.experiment import print_comparison
            from loyalty_ml.demo import demo_experiment

            out.rule(f"experiment {experiment}: variants over {experiment_folds} time folds")
            with console.status(f"experiment {experiment}") as status:
                done = demo_experiment(
                    dataset, experiment, experiment_folds, progress=lambda m: status.update(m)
                )
            if done.table is not None:
                print_comparison(done.table, done.spec.metric)
            experiment_plot = done.plot_path
            out.print(
                f"plot: {experiment_plot}\nMLflow experiment: {done.spec.mlflow_experiment}; "
                f"again: uv run loyalty experiment compare {experiment}"
            )

        out.rule("where to look")
        out.print(
            f"state:        {home}\n"
            f"MLflow UI:    uv run mlflow ui --backend-store-uri {settings.tracking_uri}\n"
            f"Optuna:       uv run optuna-dashboard sqlite:///{home / 'optuna' / 'optuna.db'}"
            "  (pip install optuna-dashboard)\n"
            f"outputs:      {home / 'outputs'}\n"
            f"monitoring:   {report.path}\n"
            + (f"experiment:   {experiment_plot}\n" if experiment_plot else "")
            + "service:      uv run loyalty serve   (API keys in LOYALTY_HOME/api_keys.json;"
            " curl examples in the README)"
        )
        if failed:
            raise typer.Exit(1)
