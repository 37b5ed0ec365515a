"""Provider rows: what happened on a phone number. Scoped through number assignments (see tenancy).

Every row is the MightyCall account's, keyed by (account, external id): one call is one row however
many organisations' integrations read it, and ingesting the same page twice is a no-op.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    exists,
    false,
    or_,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vsync.extensions import db
from vsync.models.types import JSONType, UtcDateTime, utcnow
from vsync.tenancy import NumberTraffic, Scope, named_alias

INBOUND, OUTBOUND, CALLBACK = "inbound", "outbound", "callback"
DIRECTIONS = (INBOUND, OUTBOUND, CALLBACK, "other")
ANSWERED, MISSED, VOICEMAIL, DROPPED = "answered", "missed", "voicemail", "dropped"
CALL_STATUSES = (ANSWERED, MISSED, VOICEMAIL, DROPPED, "other")


def _handled_by(table, scope: Scope):
    """An EXISTS: the call that `table`'s row belongs to was handled by the scope's agent."""
    calls = named_alias(Call.__table__, "own_call")
    return (
        exists()
        .where(
            calls.c.account_id == table.c.account_id,
            calls.c.external_id == table.c.call_external_id,
            Call.agent_criterion(calls, scope),
        )
        .correlate_except(calls)
    )


class Call(NumberTraffic, db.Model):
    """One call of a MightyCall account, merged from two sources under (account, external id): the sync (MightyCall's
    call list) and webhook events. The sync's fields win where it has read the call (`synced_at`
    set: direction, status, numbers, start, end, duration, raw); the events' fields always win for
    what only they know: `answered_at`, `wait_ended_at` (when the caller stopped waiting: answered,
    or hung up unanswered), `ring_ms` (how long it rang, see `derive_call`) and, for an answered
    call, the answering `agent_extension`. `events_at` is the time of the call's latest event, empty
    for a call no event has told of, so wait-based KPIs know which calls they cover. `ring_ms` is kept
    on the row, not read from the events, so that the KPI engine aggregates calls alone.
    The merge rules live in `vsync.services.sync.ingest`.

    Agents see the calls their extension of the account handled (`account_id`, `agent_extension`).
    """

    __tablename__ = "calls"
    __agent_extension__ = "agent_extension"
    __table_args__ = (
        UniqueConstraint("account_id", "external_id"),
        # Covering on PostgreSQL: the KPI engine reads a window's calls of a number from the index alone.
        Index(
            "ix_calls_number_started",
            "phone_number_id",
            "started_at",
            postgresql_include=[
                "direction",
                "status",
                "duration_ms",
                "answered_at",
                "ring_ms",
                "agent_extension",
                "account_id",
                "external_id",
            ],
        ),
        Index("ix_calls_account_started", "account_id", "started_at"),
        # The calls list, newest first: a keyset page is one backward range scan from its cursor.
        Index("ix_calls_started_id", "started_at", "id"),
        # The live floor's open calls: known from events, not yet ended.
        Index(
            "ix_calls_open_started",
            "started_at",
            postgresql_where=text("ended_at IS NULL AND events_at IS NOT NULL"),
            sqlite_where=text("ended_at IS NULL AND events_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("provider_accounts.id", ondelete="RESTRICT"))
    external_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    provider_status: Mapped[str | None] = mapped_column(String(40))
    from_number: Mapped[str | None] = mapped_column(String(40))
    to_number: Mapped[str | None] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    wait_ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ring_ms: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    agent_extension: Mapped[str | None] = mapped_column(String(20))
    raw: Mapped[dict] = mapped_column(JSONType)
    synced_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    events_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"<Call {self.external_id} {self.direction} {self.status}>"


class CallEvent(NumberTraffic, db.Model):
    """One webhook lifecycle event of a call. `kind` is the event type's meaning (`call`, `ringing`,
    `stop_ringing`, `connected`, `completed`; see `vsync.mightycall.webhook_events`), `event_type` the name as
    sent.

    An event is filed under its call's start (`call_started_at`), like the call: an organisation sees
    every event of the calls it sees, and none of a call it does not, whenever the event happened.
    Agents see the events on their own extension and every event of a call they handled.
    """

    __tablename__ = "call_events"
    __tenant_time__ = "call_started_at"
    __agent_extension__ = "extension"
    __table_args__ = (
        UniqueConstraint("account_id", "guid"),
        # Covering on PostgreSQL: ring times and missed rings come from the index alone.
        Index(
            "ix_call_events_call",
            "account_id",
            "call_external_id",
            "occurred_at",
            postgresql_include=["event_type", "extension", "phone_number_id", "call_started_at"],
        ),
        Index("ix_call_events_number_call_started", "phone_number_id", "call_started_at"),
        Index("ix_call_events_extension_occurred", "extension", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("provider_accounts.id", ondelete="RESTRICT"))
    guid: Mapped[str] = mapped_column(String(64))
    call_external_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    extension: Mapped[str | None] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    call_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    raw: Mapped[dict] = mapped_column(JSONType)

    @classmethod
    def agent_criterion(cls, table, scope: Scope):
        if scope.extension is None or not scope.accounts:
            return false()
        own = and_(table.c.account_id.in_(scope.accounts), table.c.extension == scope.extension)
        return or_(own, _handled_by(table, scope))


class Recording(NumberTraffic, db.Model):
    """A call's recording. `provider_uri` is only ever fetched server-side by the audio proxy."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("account_id", "call_external_id"),
        Index("ix_recordings_number_started", "phone_number_id", "started_at"),
        Index("ix_recordings_started_id", "started_at", "id"),  # the recordings list, newest first
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("provider_accounts.id", ondelete="RESTRICT"))
    call_external_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    file_name: Mapped[str | None] = mapped_column(String(300))
    provider_uri: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)

    @classmethod
    def agent_criterion(cls, table, scope: Scope):
        return _handled_by(table, scope)


class SmsMessage(NumberTraffic, db.Model):
    """Agents see no SMS: a message is the number's, not an extension's."""

    __tablename__ = "sms_messages"
    __tenant_time__ = "sent_at"
    __table_args__ = (
        UniqueConstraint("account_id", "external_id"),
        Index("ix_sms_messages_number_sent", "phone_number_id", "sent_at"),
        Index("ix_sms_messages_sent_id", "sent_at", "id"),  # the SMS list, newest first
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("provider_accounts.id", ondelete="RESTRICT"))
    external_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(12))
    counterpart: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    raw: Mapped[dict] = mapped_column(JSONType)
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
