"""Test data, made through the same domain functions the CLI uses, in a platform bypass.

They return ids, not ORM objects: like jobs, a test enters the scope it checks afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from vsync import crypto
from vsync.extensions import db
from vsync.models import Call, Integration
from vsync.services import members, numbers, orgs
from vsync.services.accounts import learn_account
from vsync.tenancy import platform_bypass, reviewed_sql

PASSWORD = "correct horse battery"
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def make_org(slug: str, tz: str = "UTC") -> int:
    with platform_bypass("test setup"):
        org_id = orgs.create_org(slug.title(), slug, tz).id
        db.session.commit()
    return org_id


def make_user(
    email: str,
    *,
    org_slug: str | None = None,
    role: str = "org_admin",
    extension: str | None = None,
    platform_admin: bool = False,
) -> int:
    with platform_bypass("test setup"):
        if platform_admin:
            user = orgs.create_platform_admin(email, PASSWORD)
        elif org_slug:
            if orgs.find_user(email) is None:
                orgs.create_user(email, PASSWORD)
            user = members.add_member(orgs.get_org_by_slug(org_slug), email, role, extension=extension).membership.user
        else:
            user = orgs.create_user(email, PASSWORD)
        user_id = user.id
        db.session.commit()
    return user_id


def make_number(e164: str) -> int:
    with platform_bypass("test setup"):
        number_id = numbers.add_number(e164).id
        db.session.commit()
    return number_id


def assign(org_slug: str, e164: str, at: datetime = T0 - timedelta(days=30), until: datetime | None = None) -> None:
    with platform_bypass("test setup"):
        org, number = orgs.get_org_by_slug(org_slug), numbers.get_number(e164)
        numbers.assign_number(org, number, at=at)
        if until is not None:
            numbers.unassign_number(org, number, at=until)
        db.session.commit()


def make_integration(
    org_id: int, base_url: str = "http://127.0.0.1:1/v4", api_key: str | None = None, user_key: str = "test-user-key"
) -> int:
    """An integration of the org; each org has a MightyCall account of its own (`test-api-key-<org id>`)
    unless the test gives two the same host and `api_key`, which is one account."""
    api_key = api_key or f"test-api-key-{org_id}"
    with platform_bypass("test setup"):
        integration = Integration(
            org_id=org_id,
            base_url=base_url,
            credentials_encrypted=crypto.encrypt_json({"api_key": api_key, "user_key": user_key}),
        )
        learn_account(integration)
        db.session.add(integration)
        db.session.commit()
        return integration.id


def account_of(integration_id: int) -> int:
    """The integration's MightyCall account, read on a connection of its own (in any scope)."""
    integrations = Integration.__table__
    with db.engine.connect() as conn:
        return conn.execute(
            reviewed_sql(select(integrations.c.account_id).where(integrations.c.id == integration_id))
        ).scalar_one()


def make_calls(integration_id: int, number_id: int, starts: list[datetime], *, prefix: str = "call") -> list[str]:
    """Insert provider calls directly (as the integration's sync would), one per start time; returns
    external ids."""
    rows = [
        {
            "account_id": account_of(integration_id),
            "phone_number_id": number_id,
            "external_id": f"{prefix}-{i}",
            "direction": "inbound",
            "status": "answered",
            "started_at": start,
            "duration_ms": 60_000,
            "raw": {},
        }
        for i, start in enumerate(starts)
    ]
    db.session.execute(insert(Call.__table__), rows)
    db.session.commit()
    return [row["external_id"] for row in rows]
