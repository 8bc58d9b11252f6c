"""``loyalty campaign``: inspect, cancel and export the campaigns recorded in the contact log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import AsOfOpt, OutOpt, friendly_errors, out

app = typer.Typer(
    help="Campaign lists and the contact log (cancel, export offers, outcomes, suppression).",
    no_args_is_help=True,
)

SegmentsOpt = Annotated[
    list[str] | None,
    typer.Option("--value-segments", help="Only these value segments (repeat the option)."),
]

CampaignArg = Annotated[
    str, typer.Argument(help="The campaign_id given to POST /campaigns/at_risk.")
]


def _log():
    from loyalty_ml.campaigns.contact_log import open_contact_log
    from loyalty_ml.serving.config import load_serving_config

    return open_contact_log(schema=load_serving_config().campaigns.postgres_schema)


def _batch_sources(data: Path | None) -> tuple[Path, str | None, str, str | None]:
    """(data dir, dataset name, churn model, benefits model URI) from --data and the manifest."""
    from loyalty_ml.errors import LoyaltyError
    from loyalty_ml.pipeline import read_manifest
    from loyalty_ml.tracking import champion_uri, registered_model_name

    manifest = read_manifest() or {}
    models = manifest.get("models") or {}
    data_dir = data or (Path(manifest["data_dir"]) if manifest.get("data_dir") else None)
    if data_dir is None:
        raise LoyaltyError("no --data and no pipeline manifest: run `loyalty pipeline` first")
    name = manifest.get("dataset")
    churn = models.get("churn") or (name and registered_model_name("churn", name))
    if not churn:
        raise LoyaltyError("no churn model in the pipeline manifest: run `loyalty pipeline`")
    benefits = models.get("benefits")
    return data_dir, name, churn, champion_uri(benefits) if benefits else None


@app.command("at-risk")
@friendly_errors
def at_risk(
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign id (idempotency key).")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="List size.")],
    out_path: OutOpt,
    budget: Annotated[float | None, typer.Option("--budget", min=0, help="Benefit budget.")] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Contract directory; default: the last pipeline's data."),
    ] = None,
    as_of: AsOfOpt = None,
    min_probability: Annotated[
        float | None, typer.Option("--min-probability", min=0, max=1, help="Churn floor.")
    ] = None,
    value_segments: SegmentsOpt = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Contact channel.")] = None,
) -> None:
    """Build (or replay) an at-risk recall list from the batch scores and record it in the
    contact log, exactly like POST /campaigns/at_risk: same id and options → the same list; same
    id with other options → error."""
    from loyalty_ml.campaigns.at_risk import AtRiskRequest
    from loyalty_ml.campaigns.batch import batch_at_risk, members_frame
    from loyalty_ml.campaigns.contact_log import CampaignConflict, CampaignNotFound, body_hash
    from loyalty_ml.contract import write_frame
    from loyalty_ml.contract.validate import load_valid_dataset

    request = AtRiskRequest(
        campaign_id=campaign,
        limit=limit,
        budget=budget,
        min_probability=min_probability,
        value_segments=tuple(value_segments) if value_segments else None,
        channel=channel,
    )
    log = _log()
    try:
        try:  # answer a replay or a conflict before scoring anybody
            existing = log.get_campaign(campaign)
        except CampaignNotFound:
            existing = None
        if existing is not None and existing.status == "cancelled":
            raise CampaignConflict(f"campaign {campaign!r} was cancelled", "campaign_cancelled")
        if existing is not None and existing.body_hash != body_hash(request.body()):
            raise CampaignConflict(
                f"campaign {campaign!r} already exists with different options; "
                "use a new --campaign id",
                "campaign_body_mismatch",
            )
        if existing is not None:
            result = existing
            replayed = True
        else:
            data_dir, name, churn, benefits = _batch_sources(data)
            dataset = load_valid_dataset(data_dir, name=name)
            result = batch_at_risk(
                dataset,
                request,
                churn_source=churn,
                benefits_source=benefits,
                as_of=as_of,
                log=log,
            )
            replayed = result.replayed
    finally:
        log.close()
    listed = members_frame(result)
    path = write_frame(listed, out_path)
    state = "replayed (same id, same options)" if replayed else "recorded"
    out.print(
        f"campaign {campaign}: {len(listed)} members {state} → {path}; "
        f"excluded {result.payload.get('excluded')}"
    )


@app.command("show")
@friendly_errors
def show(campaign_id: CampaignArg) -> None:
    """Print a campaign's status and its recorded list as JSON."""
    log = _log()
    try:
        result = log.get_campaign(campaign_id)
    finally:
        log.close()
    out.print_json(
        json.dumps(
            {"status": result.status, "created_at": result.created_at.isoformat(), **result.payload}
        )
    )


@app.command("cancel")
@friendly_errors
def cancel(campaign_id: CampaignArg) -> None:
    """Cancel a campaign that was not sent yet; its contacts no longer count towards caps."""
    log = _log()
    try:
        result = log.cancel(campaign_id)
    finally:
        log.close()
    out.print(f"campaign {campaign_id} {result.status}; contacts released")


@app.command("mark-sent")
@friendly_errors
def mark_sent(campaign_id: CampaignArg) -> None:
    """Record that a campaign was sent (it can no longer be cancelled)."""
    log = _log()
    try:
        log.mark_sent(campaign_id)
    finally:
        log.close()
    out.print(f"campaign {campaign_id} marked sent")


@app.command("export-offers")
@friendly_errors
def export_offers(campaign_id: CampaignArg, out_path: OutOpt) -> None:
    """Write the campaign's assignments (holdout as ``none``) in the contract's offers format."""
    from loyalty_ml.contract import write_frame

    log = _log()
    try:
        offers = log.offers(campaign_id)
    finally:
        log.close()
    path = write_frame(offers, out_path)
    out.print(f"wrote {len(offers)} offers to {path}")


@app.command("attach-outcomes")
@friendly_errors
def attach_outcomes(
    campaign_id: CampaignArg,
    outcomes: Annotated[
        Path,
        typer.Option(
            "--from", help="CSV/Parquet with member_id (or offer_id), converted, revenue."
        ),
    ],
) -> None:
    """Attach conversions and revenue to a campaign's offers (the benefit model retrains on them)."""
    import pandas as pd

    from loyalty_ml.errors import LoyaltyError

    if outcomes.suffix == ".parquet":
        frame = pd.read_parquet(outcomes)
    elif outcomes.suffix == ".csv":
        frame = pd.read_csv(outcomes, dtype={"member_id": str, "offer_id": str})
    else:
        raise LoyaltyError(f"--from must end in .csv or .parquet, got {outcomes.name}")
    if not {"member_id", "offer_id"} & set(frame.columns):
        raise LoyaltyError(f"{outcomes.name} needs a member_id or offer_id column")
    log = _log()
    try:
        updated = log.attach_outcomes(campaign_id, frame)
    finally:
        log.close()
    out.print(f"updated {updated} offers of campaign {campaign_id}")


@app.command("suppress")
@friendly_errors
def suppress(
    member_id: Annotated[str, typer.Argument(help="Member never to contact.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the contact log).")] = "manual",
) -> None:
    """Add a member to the suppression list."""
    log = _log()
    try:
        log.suppress(member_id, reason)
    finally:
        log.close()
    out.print("suppressed")


@app.command("unsubscribe")
@friendly_errors
def unsubscribe(
    member_id: Annotated[str, typer.Argument(help="Member who opted out.")],
    channel: Annotated[str | None, typer.Option(help="One channel; default all.")] = None,
) -> None:
    """Record an unsubscribe (all channels unless --channel)."""
    log = _log()
    try:
        log.unsubscribe(member_id, channel)
    finally:
        log.close()
    out.print("unsubscribed")
