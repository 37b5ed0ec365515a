"""Organisations (tenants), users, and the memberships that join them with a role."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    exists,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from vsync.extensions import db
from vsync.models.types import JSONType, UtcDateTime, one_of, utcnow
from vsync.tenancy import AGENT, MemberScoped, OrgOwned, SelfScoped, named_alias

PLATFORM_ADMIN = "platform_admin"
USER = "user"
GLOBAL_ROLES = (USER, PLATFORM_ADMIN)

ORG_ADMIN = "org_admin"
MANAGER = "manager"
ORG_ROLES = (ORG_ADMIN, MANAGER, AGENT)


class Organization(SelfScoped, db.Model):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("service_level_target > 0 AND service_level_target <= 1", name="service_level_target"),
        CheckConstraint("service_level_threshold_seconds > 0", name="service_level_threshold"),
        CheckConstraint("short_abandon_seconds >= 0", name="short_abandon"),
        Index("uq_organizations_name_lower", func.lower(text("name")), unique=True),
    )
    # Server defaults are read when first used, not returned by every insert: an insert then names only
    # the columns it sets, so code that creates orgs runs on a database a migration behind as well.
    __mapper_args__ = {"eager_defaults": False}

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    service_level_target: Mapped[float] = mapped_column(Float, default=0.8)
    service_level_threshold_seconds: Mapped[int] = mapped_column(Integer, default=20)
    short_abandon_seconds: Mapped[int] = mapped_column(Integer, default=5)
    # Every person acting in the org must have two-factor sign-in on (`vsync.services.twofactor`).
    require_two_factor: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="org", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<Organization {self.slug}>"


class User(UserMixin, MemberScoped, db.Model):
    """A person who signs in. An organisation sees its members only, and never a password hash or a
    set-password link's hashes (deferred, and refused in a tenant scope); sign-in reads users through
    `vsync.auth.principals`, set-password links through `vsync.services.members`."""

    __tablename__ = "users"
    __table_args__ = (one_of("role", GLOBAL_ROLES),)
    __secret_columns__ = (
        "password_hash",
        "password_token_hash",
        "password_token_state",
        "two_factor_secret",
        "two_factor_recovery_hashes",
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # What the person calls themselves (their own page); optional, shown beside the email.
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = deferred(mapped_column(String(256)))
    role: Mapped[str] = mapped_column(String(20), default=USER)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A one-time set-password link (`vsync.services.members.issue_password_link`): only its hash, and
    # the hash of the account's state when it was made (the link works only while that state holds).
    password_token_hash: Mapped[str | None] = deferred(mapped_column(String(64), unique=True))
    password_token_state: Mapped[str | None] = deferred(mapped_column(String(64)))
    password_token_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    password_token_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Two-factor sign-in (`vsync.services.twofactor`): the TOTP secret, encrypted (`vsync.crypto`), set
    # when enrolment begins and on once `two_factor_enabled_at` is; the last time-step a code was
    # accepted for (a code is used once); the hashes of the unused recovery codes.
    two_factor_secret: Mapped[str | None] = deferred(mapped_column(Text))
    two_factor_enabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    two_factor_last_step: Mapped[int | None] = mapped_column(BigInteger)
    two_factor_recovery_hashes: Mapped[list | None] = deferred(mapped_column(JSONType))

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_platform_admin(self) -> bool:
        return self.role == PLATFORM_ADMIN

    def set_password(self, password: str) -> None:
        """Hashed with `VSYNC_PASSWORD_HASH` (Werkzeug's scrypt unless a test suite asks for a cheap one)."""
        self.password_hash = generate_password_hash(password, method=current_app.config["VSYNC_PASSWORD_HASH"])

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.email}>"

    @classmethod
    def tenant_criterion(cls, table, scope):
        members = named_alias(Membership.__table__, "member_of")
        return (
            exists().where(members.c.user_id == table.c.id, members.c.org_id == scope.org_id).correlate_except(members)
        )


class Membership(OrgOwned, db.Model):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id"),
        one_of("role", ORG_ROLES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    extension: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    org: Mapped[Organization] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Membership org={self.org_id} user={self.user_id} {self.role}>"
