"""``loyalty member``: per-member privacy operations."""

from __future__ import annotations

from typing import Annotated

import typer

from loyalty_ml.cli.common import friendly_errors, out

app = typer.Typer(help="Per-member operations (erasure).", no_args_is_help=True)


@app.command("erase")
@friendly_errors
def erase(member_id: Annotated[str, typer.Argument(help="The member to erase.")]) -> None:
    """Remove a member from the contact log, online features and caches; log the erasure.

    A running service re-reads the erasure log and stops answering for the member."""
    from loyalty_ml.campaigns.contact_log import member_hash, open_contact_log
    from loyalty_ml.campaigns.erasure import erase_member
    from loyalty_ml.serving.config import load_serving_config

    log = open_contact_log(schema=load_serving_config().campaigns.postgres_schema)
    try:
        report = erase_member(member_id, contact_log=log)
    finally:
        log.close()
    for store, counts in report.items():
        out.print(f"{store}: {counts}")
    out.print(f"erasure logged as {member_hash(member_id)}")
    out.print(
        "running services drop the member within privacy.erasure_poll_s (config/serving.yaml)"
    )
