"""The contact log: which members each campaign contacted, with which benefit, and why not others.

One interface (``ContactLog``), two stores: SQLite under ``LOYALTY_HOME`` for the local profile and
PostgreSQL for production (``open_contact_log`` picks by profile). The semantics every store keeps:

- ``create_campaign`` is idempotent per ``campaign_id``: the same canonical body returns the stored
  list and records nothing new; a different body for a used id raises ``CampaignConflict``.
- Creation is serialised (one writer at a time) and the builder runs *inside* the transaction, so
  concurrent requests for one campaign produce one list and a later campaign sees earlier contacts.
- Everything a campaign records (the campaign row, its contacts, its offers) is one transaction: a
  crash in the middle leaves all of it or none of it.
- ``cancel`` releases a not-yet-sent campaign's contacts (they stop counting towards caps).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import pandas as pd

from loyalty_ml.errors import LoyaltyError

CampaignStatus = Literal["created", "sent", "cancelled"]
CONTACT_COLUMNS = ["campaign_id", "member_id", "contacted_at", "channel", "benefit_id"]
OFFER_COLUMNS = [
    "offer_id",
    "member_id",
    "offered_at",
    "benefit_id",
    "channel",
    "cost",
    "propensity",
    "converted",
    "revenue",
]


class CampaignConflict(LoyaltyError):
    """A used ``campaign_id`` was asked again with a different body, or its state forbids it."""

    def __init__(self, message: str, code: str = "campaign_conflict") -> None:
        super().__init__(message)
        self.code = code


class CampaignNotFound(LoyaltyError):
    """No campaign with that id."""


@dataclass(frozen=True)
class ContactRow:
    member_id: str
    channel: str
    benefit_id: str
    cost: float
    propensity: float
    holdout: bool = False


@dataclass(frozen=True)
class CampaignResult:
    """What a campaign recorded; ``payload`` is the API response body, stored verbatim."""

    campaign_id: str
    body_hash: str
    status: CampaignStatus
    created_at: datetime
    payload: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class BuiltCampaign:
    """What a builder hands back to be recorded: the response payload and the contacts it makes."""

    payload: dict[str, Any]
    contacts: Sequence[ContactRow] = field(default_factory=tuple)


@dataclass(frozen=True)
class ContactView:
    """What a builder may read inside the creation transaction."""

    contacts: pd.DataFrame  # CONTACT_COLUMNS, active (not released) contacts only
    suppressed: frozenset[str]
    unsubscribed: frozenset[str]  # for the requested channel or all channels
    now: datetime


Builder = Callable[[ContactView], BuiltCampaign]


def canonical_body(body: dict[str, Any]) -> str:
    """Stable JSON for a request body: sorted keys, no whitespace, ``None`` fields dropped."""
    cleaned = {k: v for k, v in body.items() if v is not None}
    return json.dumps(cleaned, sort_keys=True, separators=(",", ":"), default=str)


def body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_body(body).encode()).hexdigest()


def member_hash(member_id: str) -> str:
    """What logs and the erasure log carry instead of a member id."""
    return hashlib.sha256(f"loyalty-erasure:{member_id}".encode()).hexdigest()[:16]


def utcnow() -> datetime:
    return datetime.now(UTC)


def replay(existing: CampaignResult, digest: str) -> CampaignResult:
    """The stored answer for a repeated ``campaign_id`` with the same body hash; a different body
    or a cancelled campaign is a ``CampaignConflict`` (the one rule every caller applies)."""
    if existing.body_hash != digest:
        raise CampaignConflict(
            f"campaign {existing.campaign_id!r} exists with a different request body",
            code="campaign_body_mismatch",
        )
    if existing.status == "cancelled":
        raise CampaignConflict(
            f"campaign {existing.campaign_id!r} was cancelled", code="campaign_cancelled"
        )
    return replace(existing, replayed=True)


def offer_id(campaign_id: str, member_id: str) -> str:
    return f"{campaign_id}:{member_id}"


class ContactLog(Protocol):
    """Storage interface; both stores pass the same test-suite (tests/campaigns)."""

    backend_name: str

    def create_campaign(
        self,
        campaign_id: str,
        body: dict[str, Any],
        build: Builder,
        *,
        channel: str | None = None,
        lookback_days: int = 90,
        now: datetime | None = None,
    ) -> CampaignResult: ...

    def get_campaign(self, campaign_id: str) -> CampaignResult: ...

    def cancel(self, campaign_id: str) -> CampaignResult: ...

    def mark_sent(self, campaign_id: str) -> CampaignResult: ...

    def contacts(self, since: datetime | None = None, active_only: bool = True) -> pd.DataFrame: ...

    def offers(self, campaign_id: str) -> pd.DataFrame: ...

    def attach_outcomes(self, campaign_id: str, outcomes: pd.DataFrame) -> int: ...

    def suppress(self, member_id: str, reason: str = "manual") -> None: ...

    def unsubscribe(self, member_id: str, channel: str | None = None) -> None: ...

    def erase_member(self, member_id: str) -> dict[str, int]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def scrub_payload(payload: dict[str, Any], member_id: str) -> dict[str, Any]:
    """A stored campaign payload without one member (erasure)."""
    members = [m for m in payload.get("members", []) if str(m.get("member_id")) != member_id]
    return {**payload, "members": members}


def contacts_frame(rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=CONTACT_COLUMNS)
    frame["contacted_at"] = pd.to_datetime(frame["contacted_at"], utc=True)
    frame["member_id"] = frame["member_id"].astype(str)
    return frame


def offers_frame(rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=OFFER_COLUMNS)
    frame["offered_at"] = pd.to_datetime(frame["offered_at"], utc=True)
    return frame


def open_contact_log(profile: str | None = None, schema: str = "loyalty") -> ContactLog:
    """The contact log of the active profile (``LOYALTY_PROFILE``); ``schema``: PostgreSQL only."""
    from loyalty_ml.settings import get_settings

    settings = get_settings()
    profile = profile or settings.profile
    if profile == "production":
        from loyalty_ml.campaigns.store_postgres import PostgresContactLog

        return PostgresContactLog(settings.postgres_dsn, schema=schema)
    from loyalty_ml.campaigns.store_sqlite import SqliteContactLog

    return SqliteContactLog(settings.path("campaigns", "contact_log.sqlite"))
