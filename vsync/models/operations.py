"""What vsync does on an organisation's behalf: sync runs, received webhooks, the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vsync.extensions import db
from vsync.models.integrations import of_own_integration
from vsync.models.types import JSONType, UtcDateTime, one_of, utcnow
from vsync.tenancy import OrgOwned

SYNC_KINDS = ("calls", "numbers", "agents", "sms")
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
SYNC_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED)
ACTIVE_SYNC_STATUSES = (QUEUED, RUNNING)
RECEIVED, PROCESSED, IGNORED, UNMATCHED, REJECTED = "received", "processed", "ignored", "unmatched", "rejected"
WEBHOOK_STATUSES = (RECEIVED, PROCESSED, FAILED, IGNORED, UNMATCHED, REJECTED)


class SyncRun(OrgOwned, db.Model):
    """One sync of one kind for one integration over one window; the UI reads progress from here.

    `progress` is the share of the window done (0..1); `fetched` counts items received, `inserted`
    and `updated` what they changed, `skipped` items that could not be stored (unparseable, or on
    no valid number). `heartbeat_at` moves with every page: a running run whose heartbeat stops is
    marked failed by `vsync.services.sync.reap_stale_runs`.

    At most one queued-or-running run per (integration, kind), enforced by a partial unique index so
    two web workers racing to start the same sync cannot both win.
    """

    __tablename__ = "sync_runs"
    __table_args__ = (
        one_of("status", SYNC_STATUSES),
        one_of("kind", SYNC_KINDS),
        Index(
            "uq_sync_runs_one_active",
            "integration_id",
            "kind",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
            sqlite_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_sync_runs_integration_created", "integration_id", "created_at"),
        of_own_integration(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20), default="manual")
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    job_id: Mapped[str | None] = mapped_column(String(64))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    integration = relationship("Integration")


class WebhookEvent(OrgOwned, db.Model):
    """A webhook delivery as received, stored before it is processed, so none is lost; only
    MightyCall's `ApiKey` is replaced, before writing, by whether it matched (`vsync.services.webhooks`).

    One row per event (a request carrying a list gives one row per element). `guid` is the event's
    `Guid`; a repeated one for the same integration is a duplicate and is not stored again. A request
    the receiver refused after its token was recognised is kept as one `rejected` row with no guid,
    its whole body and the reason in `error`. Statuses: `received` (stored, not yet processed),
    `processed`, `ignored` (an event type vsync does not know, kept raw), `unmatched` (on a number
    not assigned to the org, so it made no call), `failed` (after its last retry), `rejected`.
    `attempts` counts processing attempts that ended, in success or error; after a failed one that
    will be retried, `retry_at` says when (the event stays `received` until then).
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("integration_id", "guid"),
        of_own_integration(),
        one_of("status", WEBHOOK_STATUSES),
        Index("ix_webhook_events_status_received", "status", "received_at"),
        Index("ix_webhook_events_integration_received", "integration_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    integration_id: Mapped[int] = mapped_column(Integer)
    guid: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str | None] = mapped_column(String(60))
    headers: Mapped[dict] = mapped_column(JSONType, default=dict)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="received")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    retry_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEvent(OrgOwned, db.Model):
    """Who did what, to what, in which org. Written only through `vsync.services.audit.record`.

    `org_id` is empty for platform-wide events (sign-ins, platform keys, new orgs).
    """

    __tablename__ = "audit_events"
    __append_only__ = True
    __table_args__ = (
        Index("ix_audit_events_action_created", "action", "created_at"),
        Index("ix_audit_events_org_created", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str | None] = mapped_column(String(60))
    target_id: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
