"""Notifications: the outbox of every email vsync sends, each person's preferences in an org, and the
org's alert rules, their firings, its outbound alert webhook and its business hours."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vsync.extensions import db
from vsync.models.types import JSONType, UtcDateTime, one_of, utcnow
from vsync.tenancy import OrgOwned

QUEUED, SENDING, SENT, FAILED, UNKNOWN = "queued", "sending", "sent", "failed", "unknown"
EMAIL_STATUSES = (QUEUED, SENDING, SENT, FAILED, UNKNOWN)
EMAIL_KINDS = ("digest", "alert", "invitation", "test", "invoice", "support", "sync_failure", "account")
ACCOUNT = "account"


class OutboundEmail(OrgOwned, db.Model):
    """One email to one person about one thing, from the moment it is decided until it is sent.

    `dedupe_key` names the person and the event or period (`digest:daily:2026-11-01:user 7`): its
    unique index is claimed by inserting the row, so two cron processes or two workers that decide
    the same message make one row, and the row is claimed again (`queued` → `sending`) before it is
    handed to SMTP, so one row is handed over at most once. A row left `sending` by a worker that
    died mid-send is marked `unknown`, never sent again: a lost message is visible in the outbox,
    a duplicate could not be taken back.

    A message about a person's own account (`account`: a reset link, an email-change link, an
    account-security notice) belongs to no org: its `org_id` is empty, so no org's scope sees it, and
    it is written and sent by reviewed statements that need no scope
    (`vsync.services.notifications.mail.queue_account_email`).
    """

    __tablename__ = "outbound_emails"
    __table_args__ = (
        one_of("status", EMAIL_STATUSES),
        one_of("kind", EMAIL_KINDS),
        UniqueConstraint("dedupe_key"),
        Index("ix_outbound_emails_org_created", "org_id", "created_at"),
        CheckConstraint("org_id IS NOT NULL OR kind = 'account'", name="org_unless_account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(  # pyright: ignore[reportIncompatibleVariableOverride]
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    template: Mapped[str] = mapped_column(String(100))
    # What the template is rendered with when the message is sent (JSON: ids, figures, links).
    context: Mapped[dict] = mapped_column(JSONType, default=dict)
    # The invoice or credit note whose PDF and CSV the message carries, drawn when it is sent: the
    # outbox keeps which document, never its bytes.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoices.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(200))
    # Set when the digest's one-click unsubscribe link was used: a link works once.
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"<OutboundEmail {self.id} {self.kind} {self.status}>"


class NotificationPreference(OrgOwned, db.Model):
    """One preference of one person in one org that differs from their role's default
    (`vsync.services.notifications.preferences.DEFAULTS`); a missing row means the default."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("org_id", "user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class PlatformNotificationPreference(db.Model):
    """One preference of a platform admin about every org (sync failures anywhere) that differs from
    `vsync.services.notifications.preferences.PLATFORM_DEFAULTS`. Platform staff have no membership,
    hence no org preference: this is theirs. Not tenant-owned: it belongs to a person, not an org."""

    __tablename__ = "platform_notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


SERVICE_LEVEL, SILENCE = "service_level", "silence"
ABANDON_RATE, MISSED_CALLS = "abandon_rate", "missed_calls"
SYNC_FAILING, WEBHOOK_SILENCE = "sync_failing", "webhook_silence"
ALERT_KINDS = (SERVICE_LEVEL, SILENCE, ABANDON_RATE, MISSED_CALLS, SYNC_FAILING, WEBHOOK_SILENCE)
ALERT_DESCRIPTIONS = {
    SERVICE_LEVEL: "Service level below target",
    ABANDON_RATE: "Abandon rate above its limit",
    MISSED_CALLS: "Missed calls",
    SILENCE: "No calls",
    SYNC_FAILING: "Sync failing",
    WEBHOOK_SILENCE: "No webhook events",
}
# Who a firing is for: the org's members (by an org's rule), or platform staff (a platform check).
ORG_AUDIENCE, PLATFORM_AUDIENCE = "org", "platform"
AUDIENCES = (ORG_AUDIENCE, PLATFORM_AUDIENCE)


class AlertRule(OrgOwned, db.Model):
    """An org's rule of one kind, with a window of `window_minutes` and, for the kinds that have one,
    a `threshold` (a fraction for `service_level` and `abandon_rate`, a count for `missed_calls`).
    The exact conditions are those of `vsync.services.notifications.alerts`. Evaluated only within
    the org's business hours (`BusinessHours`)."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        one_of("kind", ALERT_KINDS),
        UniqueConstraint("org_id", "kind"),
        CheckConstraint("window_minutes > 0", name="window_minutes"),
        CheckConstraint("threshold >= 0", name="threshold"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    threshold: Mapped[float] = mapped_column(Float, default=0.0)
    window_minutes: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AlertEvent(OrgOwned, db.Model):
    """One firing of an alert of one org, and its resolution: by the org's rule (`audience` `org`,
    `rule_id` set) or by a platform check for platform staff (`platform`, no rule). At most one open
    firing per (org, audience, kind), a partial unique index, so two cron processes evaluating the
    same minute fire it once."""

    __tablename__ = "alert_events"
    __table_args__ = (
        one_of("kind", ALERT_KINDS),
        one_of("audience", AUDIENCES),
        Index(
            "uq_alert_events_one_open",
            "org_id",
            "audience",
            "kind",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
            sqlite_where=text("resolved_at IS NULL"),
        ),
        Index("ix_alert_events_fired", "fired_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    audience: Mapped[str] = mapped_column(String(10), default=ORG_AUDIENCE)
    fired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fired_value: Mapped[float | None] = mapped_column(Float)
    resolved_value: Mapped[float | None] = mapped_column(Float)

    rule: Mapped[AlertRule | None] = relationship()
    deliveries: Mapped[list[AlertWebhookDelivery]] = relationship(
        back_populates="event", order_by="AlertWebhookDelivery.id", cascade="all, delete-orphan"
    )


class AlertWebhook(OrgOwned, db.Model):
    """The org's outbound alert webhook: every firing and resolution of its rules is POSTed to `url`
    (HTTPS), signed with its secret (a MultiFernet ciphertext, `vsync.crypto`; shown once, when made).
    Never put the secret in a repr, a log line, an audit summary or a console column."""

    __tablename__ = "alert_webhooks"
    __table_args__ = (UniqueConstraint("org_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<AlertWebhook org={self.org_id}>"


DELIVERING, DELIVERED = "delivering", "delivered"
DELIVERY_STATUSES = (QUEUED, DELIVERING, DELIVERED, FAILED)


class AlertWebhookDelivery(OrgOwned, db.Model):
    """One POST of one firing's `state` (fired or resolved) to the org's webhook, and how its attempts
    went: unique per (event, state), so the decision is taken once whatever the cron processes; each
    attempt is claimed (`queued` → `delivering`) so two workers do not post it together."""

    __tablename__ = "alert_webhook_deliveries"
    __table_args__ = (
        one_of("status", DELIVERY_STATUSES),
        one_of("state", ("fired", "resolved")),
        UniqueConstraint("event_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    event: Mapped[AlertEvent] = relationship(back_populates="deliveries")


class BusinessHours(OrgOwned, db.Model):
    """The hours an org's phones are expected to ring, per local weekday (0 Monday): from `opens` to
    `closes`, minutes after local midnight. An org without rows has `DEFAULT_BUSINESS_HOURS`."""

    __tablename__ = "business_hours"
    __table_args__ = (
        UniqueConstraint("org_id", "weekday"),
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday"),
        CheckConstraint("opens >= 0 AND opens < closes AND closes <= 1440", name="opens_before_closes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    weekday: Mapped[int] = mapped_column(Integer)
    opens: Mapped[int] = mapped_column(Integer)
    closes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


DEFAULT_BUSINESS_HOURS = dict.fromkeys(range(5), (9 * 60, 17 * 60))
