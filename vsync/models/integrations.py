"""MightyCall accounts, the organisations' integrations that connect to them, and the agents
(extensions) seen in each account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vsync.extensions import db
from vsync.models.types import JSONType, UtcDateTime, one_of, utcnow
from vsync.tenancy import AccountScoped, OrgOwned

ACTIVE = "active"
DISABLED = "disabled"
INTEGRATION_STATUSES = (ACTIVE, DISABLED)


class ProviderAccount(db.Model):
    """A MightyCall account, known by its `identity` (see `vsync.services.accounts`).

    Several organisations' integrations may connect to one account (a platform reselling numbers from
    one account connects each client with the same keys): provider rows (calls, call events,
    recordings, SMS, agents) are the account's, one row per (account, MightyCall id), however many
    integrations read them. Which organisation sees a row is decided by number periods alone.
    Holds no secret: the identity is a keyed fingerprint, never the API key.
    """

    __tablename__ = "provider_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<ProviderAccount {self.id}>"


class Integration(OrgOwned, db.Model):
    """An organisation's connection to a MightyCall account (`account_id`, learned from the host and
    the API key whenever they are set or tested).

    Credentials and the cached access token are MultiFernet ciphertexts (`vsync.crypto`).

    Never put them in a repr, a log line, an API response or an admin column.
    `sync_cursors` maps a sync kind to the end of the last window it completed (ISO-8601);
    `sync_schedule` maps a kind to minutes between scheduled syncs, 0 turning it off, overriding
    the platform defaults (`vsync.jobs.schedule.DEFAULT_INTERVALS`).
    `webhook_signing_secrets_encrypted`, when set, holds the one or two active secrets a relay signs
    webhooks with (newest first, see `vsync.services.webhooks`); the receiver then requires a signature.
    """

    __tablename__ = "integrations"
    # (org_id, id) is what org-owned rows of this integration reference, so none can name another org's.
    __table_args__ = (one_of("status", INTEGRATION_STATUSES), UniqueConstraint("org_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("provider_accounts.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="MightyCall")
    base_url: Mapped[str] = mapped_column(String(500))
    credentials_encrypted: Mapped[str] = mapped_column(Text)
    webhook_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    webhook_signing_secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20), default=ACTIVE)
    last_error: Mapped[str | None] = mapped_column(Text)
    sync_cursors: Mapped[dict] = mapped_column(JSONType, default=dict)
    sync_schedule: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    org = relationship("Organization")

    def __repr__(self) -> str:
        return f"<Integration {self.id} org={self.org_id} {self.base_url}>"


def of_own_integration() -> ForeignKeyConstraint:
    """The foreign key of an org-owned row to an integration of the same org: `(org_id, integration_id)`."""
    return ForeignKeyConstraint(
        ["org_id", "integration_id"], ["integrations.org_id", "integrations.id"], ondelete="CASCADE"
    )


class Agent(AccountScoped, db.Model):
    """An extension of a MightyCall account and the name it goes by. An agent is (account, extension):
    extension 101 of one account is not extension 101 of another, even on a shared number."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("account_id", "extension"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("provider_accounts.id", ondelete="RESTRICT"))
    extension: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
