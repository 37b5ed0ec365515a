"""The audit log helper: every state change made through the CLI, API or admin calls `record`.

Who acted: the request's principal in a request; outside one, the actor an edge declared for its
app context with `acting_as` (the CLI declares `cli`); otherwise `system`. A job has an app context
of its own, so what it writes is the system's, inline or on a worker alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import g, has_app_context, has_request_context, request
from sqlalchemy import insert

from vsync.extensions import db
from vsync.models import AuditEvent
from vsync.tenancy import CrossTenantWrite, current_scope, reviewed_sql


def actor_of(principal) -> dict:
    """Audit actor columns for a principal (`vsync.auth.principals`) or a plain label such as 'cli'."""
    if principal is None or isinstance(principal, str):
        return {"actor": principal or "system"}
    if principal.is_api_key:
        return {"actor": principal.label, "actor_api_key_id": principal.key_id}
    if principal.is_authenticated:
        return {"actor": principal.label, "actor_user_id": principal.id}
    return {"actor": "anonymous"}


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Attribute the audit rows this app context writes in the block, outside a request, to `actor`."""
    previous = g.get("audit_actor")
    g.audit_actor = actor
    try:
        yield
    finally:
        g.audit_actor = previous


def current_actor() -> str:
    """Who is acting now, as the audit log names them: for a job queued on their behalf."""
    return actor_of(_current_principal())["actor"]


def _current_principal():
    if not has_request_context():
        return g.get("audit_actor") if has_app_context() else None
    from flask_login import current_user

    return current_user._get_current_object()


def record(
    action: str,
    *,
    org_id: int | None = None,
    target=None,
    summary: str | None = None,
    actor=None,
    ip: str | None = None,
) -> None:
    """Add one audit row in the caller's transaction, so it commits (or rolls back) with the change.

    `target` is a model instance or a `(type, id)` pair; `actor` defaults to who is acting (above).
    A reviewed Core insert, so it works with no tenant scope (sign-in attempts); inside a tenant scope
    it may only write that org's log.
    """
    scope = current_scope()
    if scope is not None and scope.org_id is not None:
        if org_id is not None and org_id != scope.org_id:
            raise CrossTenantWrite(f"Audit event for org {org_id} written from {scope}.")
        org_id = scope.org_id
    target_type = target_id = None
    if isinstance(target, tuple):
        target_type, target_id = target
    elif target is not None:
        if getattr(target, "id", None) is None:
            db.session.flush()
        target_type, target_id = type(target).__name__, target.id
    if ip is None and has_request_context():
        ip = request.remote_addr
    values = dict(actor_of(actor if actor is not None else _current_principal()))
    values["actor"] = values["actor"][:300]
    db.session.execute(
        reviewed_sql(insert(AuditEvent.__table__)).values(
            org_id=org_id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            summary=summary,
            ip=ip,
            **values,
        )
    )
