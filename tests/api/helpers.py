"""Helpers of the API tests: callers of the two-org world, and what the audit log kept."""

from __future__ import annotations

from sqlalchemy import select

from tests.world import World, api_as
from vsync.extensions import db
from vsync.models import AuditEvent
from vsync.tenancy import platform_bypass


def caller(app, world: World, principal: str):
    """A test client acting as `principal`; a signed-in user's writes carry the CSRF token, as the console's do."""
    return api_as(app.test_client(), principal, world, csrf=True)


def audit_rows(app, org_id: int | None = None, action_prefix: str = "") -> list[AuditEvent]:
    with app.app_context(), platform_bypass("test"):
        query = select(AuditEvent).where(AuditEvent.action.startswith(action_prefix)).order_by(AuditEvent.id)
        if org_id is not None:
            query = query.where(AuditEvent.org_id == org_id)
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows
