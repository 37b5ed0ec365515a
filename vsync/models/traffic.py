"""Provider rows: what happened on a phone number. Scoped through number assignments (see tenancy).

Every row is keyed by (integration, external id), so ingesting the same page twice is a no-op.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vsync.extensions import db
from vsync.models.types import JSONType, UtcDateTime, utcnow
from vsync.tenancy import NumberTraffic

INBOUND, OUTBOUND, CALLBACK = "inbound", "outbound", "callback"
DIRECTIONS = (INBOUND, OUTBOUND, CALLBACK, "other")
ANSWERED, MISSED, VOICEMAIL, DROPPED = "answered", "missed", "voicemail", "dropped"
CALL_STATUSES = (ANSWERED, MISSED, VOICEMAIL, DROPPED, "other")


class Call(NumberTraffic, db.Model):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("integration_id", "external_id"),
        # Covering on PostgreSQL: the KPI engine reads a window's calls of a number from the index alone.
        Index("ix_calls_number_started", "phone_number_id", "started_at",
              postgresql_include=["direction", "status", "duration_ms", "answered_at", "agent_extension",
                                  "integration_id", "external_id"]),
        Index("ix_calls_integration_started", "integration_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="RESTRICT"))
    external_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    provider_status: Mapped[str | None] = mapped_column(String(40))
    from_number: Mapped[str | None] = mapped_column(String(40))
    to_number: Mapped[str | None] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    agent_extension: Mapped[str | None] = mapped_column(String(20))
    raw: Mapped[dict] = mapped_column(JSONType)
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Call {self.external_id} {self.direction} {self.status}>"


class CallEvent(NumberTraffic, db.Model):
    """One webhook lifecycle event of a call (ringing, connected, completed...)."""

    __tablename__ = "call_events"
    __tenant_time__ = "occurred_at"
    __table_args__ = (
        UniqueConstraint("integration_id", "guid"),
        # Covering on PostgreSQL: ring times and missed rings come from the index alone.
        Index("ix_call_events_call", "integration_id", "call_external_id", "occurred_at",
              postgresql_include=["event_type", "extension", "phone_number_id"]),
        Index("ix_call_events_number_occurred", "phone_number_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="RESTRICT"))
    guid: Mapped[str] = mapped_column(String(64))
    call_external_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(60))
    extension: Mapped[str | None] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    raw: Mapped[dict] = mapped_column(JSONType)


class Recording(NumberTraffic, db.Model):
    """A call's recording. `provider_uri` is only ever fetched server-side by the audio proxy."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("integration_id", "call_external_id"),
        Index("ix_recordings_number_started", "phone_number_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="RESTRICT"))
    call_external_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    file_name: Mapped[str | None] = mapped_column(String(300))
    provider_uri: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)


class SmsMessage(NumberTraffic, db.Model):
    __tablename__ = "sms_messages"
    __tenant_time__ = "sent_at"
    __table_args__ = (
        UniqueConstraint("integration_id", "external_id"),
        Index("ix_sms_messages_number_sent", "phone_number_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="RESTRICT"))
    external_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(12))
    counterpart: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    raw: Mapped[dict] = mapped_column(JSONType)
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
