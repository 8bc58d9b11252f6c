"""``loyalty campaign``: inspect, cancel and export the campaigns recorded in the contact log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import OutOpt, friendly_errors, out

app = typer.Typer(
    help="Campaign lists and the contact log (cancel, export offers, outcomes, suppression).",
    no_args_is_help=True,
)

CampaignArg = Annotated[
    str, typer.Argument(help="The campaign_id given to POST /campaigns/at_risk.")
]


def _log():
    from loyalty_ml.campaigns.contact_log import open_contact_log
    from loyalty_ml.serving.config import load_serving_config

    return open_contact_log(schema=load_serving_config().campaigns.postgres_schema)


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
