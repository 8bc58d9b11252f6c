"""The SQL both contact-log stores share; subclasses supply connections, the write lock and types.

Statements are written with ``?`` placeholders and converted for drivers using ``%s``. Each public
method is one transaction; ``create_campaign`` holds the store's write lock while the builder runs.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from loyalty_ml.campaigns.contact_log import (
    Builder,
    BuiltCampaign,
    CampaignConflict,
    CampaignNotFound,
    CampaignResult,
    CampaignStatus,
    ContactView,
    body_hash,
    canonical_body,
    contacts_frame,
    member_hash,
    offer_id,
    offers_frame,
    replay,
    scrub_payload,
    utcnow,
)

log = logging.getLogger(__name__)

ALL_CHANNELS = "*"


class SqlContactLog(ABC):
    backend_name = "sql"
    paramstyle = "qmark"
    ts_type = "TEXT"

    # -- what a store provides -------------------------------------------------------------
    @abstractmethod
    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A connection in autocommit mode (transactions are explicit)."""

    @abstractmethod
    def _begin_write(self, cur: Any) -> None:
        """Start a transaction holding the store-wide campaign write lock."""

    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN")

    def _ts(self, value: datetime) -> Any:
        return value.isoformat()

    # -- schema ----------------------------------------------------------------------------
    def _schema_statements(self) -> list[str]:
        ts = self.ts_type
        return [
            f"""CREATE TABLE IF NOT EXISTS campaigns (
                campaign_id TEXT PRIMARY KEY,
                body_hash TEXT NOT NULL,
                body TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('created', 'sent', 'cancelled')),
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL,
                payload TEXT NOT NULL)""",
            f"""CREATE TABLE IF NOT EXISTS contacts (
                campaign_id TEXT NOT NULL REFERENCES campaigns(campaign_id),
                member_id TEXT NOT NULL,
                contacted_at {ts} NOT NULL,
                channel TEXT NOT NULL,
                benefit_id TEXT NOT NULL,
                released INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (campaign_id, member_id))""",
            "CREATE INDEX IF NOT EXISTS contacts_member ON contacts (member_id, contacted_at)",
            f"""CREATE TABLE IF NOT EXISTS offers (
                offer_id TEXT PRIMARY KEY,
                campaign_id TEXT NOT NULL REFERENCES campaigns(campaign_id),
                member_id TEXT NOT NULL,
                offered_at {ts} NOT NULL,
                benefit_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                cost DOUBLE PRECISION NOT NULL,
                propensity DOUBLE PRECISION NOT NULL CHECK (propensity > 0 AND propensity <= 1),
                holdout INTEGER NOT NULL DEFAULT 0,
                converted INTEGER,
                revenue DOUBLE PRECISION,
                UNIQUE (campaign_id, member_id))""",
            f"""CREATE TABLE IF NOT EXISTS suppressions (
                member_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('suppressed', 'unsubscribed')),
                channel TEXT NOT NULL DEFAULT '*',
                reason TEXT,
                added_at {ts} NOT NULL,
                PRIMARY KEY (member_id, kind, channel))""",
            f"""CREATE TABLE IF NOT EXISTS erasures (
                member_hash TEXT NOT NULL,
                erased_at {ts} NOT NULL,
                counts TEXT NOT NULL)""",
        ]

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.paramstyle == "format" else statement

    def _exec(self, cur: Any, statement: str, params: tuple[Any, ...] = ()) -> Any:
        cur.execute(self._sql(statement), params)
        return cur

    @contextmanager
    def _transaction(self, write_lock: bool = False) -> Iterator[Any]:
        with self._connection() as conn:
            cur = conn.cursor()
            if write_lock:
                self._begin_write(cur)
            else:
                self._begin(cur)
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    # -- campaigns -------------------------------------------------------------------------
    def _load(self, cur: Any, campaign_id: str) -> CampaignResult | None:
        row = self._exec(
            cur,
            "SELECT campaign_id, body_hash, status, created_at, payload FROM campaigns "
            "WHERE campaign_id = ?",
            (campaign_id,),
        ).fetchone()
        if row is None:
            return None
        created = row[3] if isinstance(row[3], datetime) else datetime.fromisoformat(row[3])
        return CampaignResult(row[0], row[1], row[2], created, json.loads(row[4]))

    def create_campaign(
        self,
        campaign_id: str,
        body: dict[str, Any],
        build: Builder,
        *,
        channel: str | None = None,
        lookback_days: int = 90,
        now: datetime | None = None,
    ) -> CampaignResult:
        digest = body_hash(body)
        with self._transaction() as cur:  # fast path: a replay takes no write lock
            existing = self._load(cur, campaign_id)
        if existing is not None:
            return replay(existing, digest)
        with self._transaction(write_lock=True) as cur:
            existing = self._load(cur, campaign_id)
            if existing is not None:
                return replay(existing, digest)
            now = now or utcnow()
            view = self._view(cur, now, lookback_days, channel)
            built = build(view)
            self._record(cur, campaign_id, digest, body, built, now)
        log.info("campaign %s recorded: %d contacts", campaign_id, len(built.contacts))
        return CampaignResult(campaign_id, digest, "created", now, built.payload)

    def _view(
        self, cur: Any, now: datetime, lookback_days: int, channel: str | None
    ) -> ContactView:
        since = now - timedelta(days=lookback_days)
        rows = self._exec(
            cur,
            "SELECT campaign_id, member_id, contacted_at, channel, benefit_id FROM contacts "
            "WHERE released = 0 AND contacted_at >= ?",
            (self._ts(since),),
        ).fetchall()
        sup = self._exec(cur, "SELECT member_id, kind, channel FROM suppressions").fetchall()
        suppressed = frozenset(str(m) for m, kind, _ in sup if kind == "suppressed")
        unsubscribed = frozenset(
            str(m)
            for m, kind, ch in sup
            if kind == "unsubscribed" and (channel is None or ch in (ALL_CHANNELS, channel))
        )
        return ContactView(contacts_frame(rows), suppressed, unsubscribed, now)

    def _record(
        self,
        cur: Any,
        campaign_id: str,
        digest: str,
        body: dict[str, Any],
        built: BuiltCampaign,
        now: datetime,
    ) -> None:
        ts = self._ts(now)
        self._exec(
            cur,
            "INSERT INTO campaigns (campaign_id, body_hash, body, status, created_at, updated_at,"
            " payload) VALUES (?, ?, ?, 'created', ?, ?, ?)",
            (campaign_id, digest, canonical_body(body), ts, ts, json.dumps(built.payload)),
        )
        contacts = list(built.contacts)  # a failing builder fails here: nothing is written
        # One executemany per table (psycopg pipelines it; sqlite3 loops in C): 10k contacts
        # are two statements, not 20k round trips. Same transaction: all or nothing.
        cur.executemany(
            self._sql(
                "INSERT INTO contacts (campaign_id, member_id, contacted_at, channel, benefit_id)"
                " VALUES (?, ?, ?, ?, ?)"
            ),
            [(campaign_id, c.member_id, ts, c.channel, c.benefit_id) for c in contacts],
        )
        cur.executemany(
            self._sql(
                "INSERT INTO offers (offer_id, campaign_id, member_id, offered_at, benefit_id,"
                " channel, cost, propensity, holdout) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [
                (
                    offer_id(campaign_id, c.member_id),
                    campaign_id,
                    c.member_id,
                    ts,
                    c.benefit_id,
                    c.channel,
                    float(c.cost),
                    float(c.propensity),
                    int(c.holdout),
                )
                for c in contacts
            ],
        )

    def get_campaign(self, campaign_id: str) -> CampaignResult:
        with self._transaction() as cur:
            existing = self._load(cur, campaign_id)
        if existing is None:
            raise CampaignNotFound(f"no campaign {campaign_id!r}")
        return existing

    def _set_status(self, campaign_id: str, status: CampaignStatus) -> CampaignResult:
        with self._transaction(write_lock=True) as cur:
            existing = self._load(cur, campaign_id)
            if existing is None:
                raise CampaignNotFound(f"no campaign {campaign_id!r}")
            if existing.status == status:
                return existing
            if existing.status != "created":
                raise CampaignConflict(
                    f"campaign {campaign_id!r} is already {existing.status}",
                    code=f"campaign_{existing.status}",
                )
            self._exec(
                cur,
                "UPDATE campaigns SET status = ?, updated_at = ? WHERE campaign_id = ?",
                (status, self._ts(utcnow()), campaign_id),
            )
            if status == "cancelled":
                self._exec(
                    cur, "UPDATE contacts SET released = 1 WHERE campaign_id = ?", (campaign_id,)
                )
                self._exec(cur, "DELETE FROM offers WHERE campaign_id = ?", (campaign_id,))
        return CampaignResult(
            existing.campaign_id, existing.body_hash, status, existing.created_at, existing.payload
        )

    def cancel(self, campaign_id: str) -> CampaignResult:
        """Cancel a campaign that was not sent; its contacts stop counting towards caps."""
        return self._set_status(campaign_id, "cancelled")

    def mark_sent(self, campaign_id: str) -> CampaignResult:
        return self._set_status(campaign_id, "sent")

    # -- reads -----------------------------------------------------------------------------
    def contacts(self, since: datetime | None = None, active_only: bool = True) -> pd.DataFrame:
        query = (
            "SELECT campaign_id, member_id, contacted_at, channel, benefit_id FROM contacts"
            " WHERE contacted_at >= ?"
        )
        if active_only:
            query += " AND released = 0"
        floor = since or datetime(1970, 1, 1, tzinfo=utcnow().tzinfo)
        with self._transaction() as cur:
            rows = self._exec(cur, query, (self._ts(floor),)).fetchall()
        return contacts_frame(rows)

    def offers(self, campaign_id: str) -> pd.DataFrame:
        """The campaign's assignments in the contract's ``offers`` format."""
        with self._transaction() as cur:
            if self._load(cur, campaign_id) is None:
                raise CampaignNotFound(f"no campaign {campaign_id!r}")
            rows = self._exec(
                cur,
                "SELECT offer_id, member_id, offered_at, benefit_id, channel, cost, propensity,"
                " converted, revenue FROM offers WHERE campaign_id = ? ORDER BY offer_id",
                (campaign_id,),
            ).fetchall()
        return offers_frame(rows)

    def attach_outcomes(self, campaign_id: str, outcomes: pd.DataFrame) -> int:
        """Set ``converted``/``revenue`` from a frame keyed by ``member_id`` or ``offer_id``."""
        key = "offer_id" if "offer_id" in outcomes.columns else "member_id"
        updated = 0
        with self._transaction() as cur:
            for row in outcomes.itertuples(index=False):
                ident = str(getattr(row, key))
                oid = ident if key == "offer_id" else offer_id(campaign_id, ident)
                converted: Any = getattr(row, "converted", None)
                revenue: Any = getattr(row, "revenue", None)
                cur_ = self._exec(
                    cur,
                    "UPDATE offers SET converted = ?, revenue = ? WHERE offer_id = ?"
                    " AND campaign_id = ?",
                    (
                        None if pd.isna(converted) else int(converted),
                        None if pd.isna(revenue) else float(revenue),
                        oid,
                        campaign_id,
                    ),
                )
                updated += max(cur_.rowcount, 0)
        return updated

    # -- suppression, unsubscribes, erasure --------------------------------------------------
    def suppress(self, member_id: str, reason: str = "manual") -> None:
        self._add_suppression(str(member_id), "suppressed", ALL_CHANNELS, reason)

    def unsubscribe(self, member_id: str, channel: str | None = None) -> None:
        self._add_suppression(str(member_id), "unsubscribed", channel or ALL_CHANNELS, None)

    def _add_suppression(self, member_id: str, kind: str, channel: str, reason: str | None) -> None:
        with self._transaction() as cur:
            self._exec(
                cur,
                "INSERT INTO suppressions (member_id, kind, channel, reason, added_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (member_id, kind, channel, reason, self._ts(utcnow())),
            )

    def erase_member(self, member_id: str) -> dict[str, int]:
        """Remove a member from contacts, offers, suppressions and stored lists; log a hash."""
        member_id = str(member_id)
        counts: dict[str, int] = {}
        with self._transaction(write_lock=True) as cur:
            campaign_ids = [
                r[0]
                for r in self._exec(
                    cur,
                    "SELECT DISTINCT campaign_id FROM contacts WHERE member_id = ?",
                    (member_id,),
                ).fetchall()
            ]
            for campaign_id in campaign_ids:
                existing = self._load(cur, campaign_id)
                if existing is not None:
                    self._exec(
                        cur,
                        "UPDATE campaigns SET payload = ? WHERE campaign_id = ?",
                        (json.dumps(scrub_payload(existing.payload, member_id)), campaign_id),
                    )
            counts["campaigns"] = len(campaign_ids)
            for table in ("contacts", "offers", "suppressions"):
                counts[table] = max(
                    self._exec(
                        cur, f"DELETE FROM {table} WHERE member_id = ?", (member_id,)
                    ).rowcount,
                    0,
                )
            self._exec(
                cur,
                "INSERT INTO erasures (member_hash, erased_at, counts) VALUES (?, ?, ?)",
                (member_hash(member_id), self._ts(utcnow()), json.dumps(counts)),
            )
        log.info("erased member %s from the contact log: %s", member_hash(member_id), counts)
        return counts

    def erasures(self) -> pd.DataFrame:
        with self._transaction() as cur:
            rows = self._exec(cur, "SELECT member_hash, erased_at, counts FROM erasures").fetchall()
        return pd.DataFrame(rows, columns=["member_hash", "erased_at", "counts"])

    def ping(self) -> None:
        with self._transaction() as cur:
            self._exec(cur, "SELECT 1 FROM campaigns LIMIT 1").fetchall()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release pooled connections."""
