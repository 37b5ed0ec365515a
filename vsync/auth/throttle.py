"""Sign-in throttling, counted from the audit log.

Failed sign-ins are audited anyway; counting them per account and per client address over a
sliding window needs no extra store, holds across every web worker and machine, and survives
restarts. The audit index on (action, created_at) keeps the count cheap.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import false, func, or_, select

from vsync.extensions import db
from vsync.models import AuditEvent
from vsync.models.types import utcnow

LOGIN_FAILED = "login.failed"


def login_throttled(email: str, ip: str | None) -> bool:
    limit = current_app.config["VSYNC_LOGIN_MAX_FAILURES"]
    since = utcnow() - timedelta(seconds=current_app.config["VSYNC_LOGIN_WINDOW_SECONDS"])
    audit = AuditEvent.__table__.c
    recent = (audit.action == LOGIN_FAILED) & (audit.created_at >= since)
    by_account, by_ip = db.session.execute(
        select(
            func.count().filter(audit.actor == email),
            func.count().filter(audit.ip == ip) if ip else func.count().filter(false()),
        ).where(recent, or_(audit.actor == email, audit.ip == ip))
    ).one()
    return by_account >= limit or by_ip >= limit
