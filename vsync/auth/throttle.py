"""Throttling of what can be guessed, counted from the audit log.

Failed sign-ins, password-reset requests and the own page's failed checks are audited anyway;
counting them per account (or requested address) and per client address over a sliding window needs
no extra store, holds across every web worker and machine, and survives restarts. The audit index on
(action, created_at) keeps the count cheap.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import false, func, or_, select

from vsync.extensions import db
from vsync.models import AuditEvent
from vsync.models.types import utcnow

LOGIN_FAILED = "login.failed"


def throttled(
    action: str,
    actor: str,
    ip: str | None,
    *,
    limit: int,
    ip_limit: int | None = None,
    now: datetime | None = None,
    per_ip: bool = True,
) -> bool:
    """Whether `action` was audited `limit` times within the login window (`VSYNC_LOGIN_WINDOW_SECONDS`)
    for `actor`, or (with `per_ip`) `ip_limit` times (default `limit`) from `ip`."""
    since = (now or utcnow()) - timedelta(seconds=current_app.config["VSYNC_LOGIN_WINDOW_SECONDS"])
    audit = AuditEvent.__table__.c
    by_ip_counted = per_ip and ip is not None
    recent = (audit.action == action) & (audit.created_at >= since)
    by_account, by_ip = db.session.execute(
        select(
            func.count().filter(audit.actor == actor),
            func.count().filter(audit.ip == ip) if by_ip_counted else func.count().filter(false()),
        ).where(recent, or_(audit.actor == actor, audit.ip == ip) if by_ip_counted else audit.actor == actor)
    ).one()
    return by_account >= limit or by_ip >= (ip_limit or limit)


def login_throttled(email: str, ip: str | None) -> bool:
    return throttled(LOGIN_FAILED, email, ip, limit=current_app.config["VSYNC_LOGIN_MAX_FAILURES"])
