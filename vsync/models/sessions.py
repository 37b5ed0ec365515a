"""Signed-in sessions, one row each, so that the server can end them (`vsync.services.sessions`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from vsync.extensions import db
from vsync.models.types import UtcDateTime, one_of, utcnow
from vsync.tenancy import TenantScoped

SIGNED_OUT = "signed_out"
SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
PASSWORD_SET = "password_set"
PASSWORD_RESET = "password_reset"
DEACTIVATED = "deactivated"
NO_ORGANISATION = "no_organisation"
TWO_FACTOR_RESET = "two_factor_reset"
ENDED_REASONS = (
    SIGNED_OUT,
    SIGNED_OUT_EVERYWHERE,
    PASSWORD_SET,
    PASSWORD_RESET,
    DEACTIVATED,
    NO_ORGANISATION,
    TWO_FACTOR_RESET,
)


class UserSession(TenantScoped, db.Model):
    """A person's signed-in session: the browser's cookie holds a random token, this row its SHA-256.

    A session is usable while it has not ended and `expires_at` has not passed. Platform-level data:
    no organisation sees these rows (its criterion is false), not even its own members' devices and
    addresses; sign-in reads and writes them with the reviewed Core statements of
    `vsync.services.sessions`, and a platform bypass sees them all.
    """

    __tablename__ = "user_sessions"
    __table_args__ = (
        one_of("ended_reason", ENDED_REASONS),
        CheckConstraint("(ended_at IS NULL) = (ended_reason IS NULL)", name="ended_with_reason"),
        Index("ix_user_sessions_user_device", "user_id", "device_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # The SHA-256 of the browser's device cookie (`vsync.auth.devices`): a sign-in from a browser none
    # of the person's sessions came from is a new device.
    device_hash: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(30))

    @classmethod
    def tenant_criterion(cls, table, scope):
        return false()

    def __repr__(self) -> str:
        return f"<UserSession {self.id} user={self.user_id}>"
