"""GET /api/v1/health: is the database reachable, is the queue reachable. Public, for load balancers."""
from __future__ import annotations

import logging

from flask import jsonify
from sqlalchemy import text

from vsync.api import bp
from vsync.extensions import db
from vsync.jobs import redis_connection

log = logging.getLogger(__name__)


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any driver error means "down" to a health check
        log.warning("health: database unreachable: %s", exc)
        db.session.rollback()
        return "unavailable"


def _queue() -> str:
    connection = redis_connection()
    if connection is None:
        return "inline"
    try:
        connection.ping()
        return "ok"
    except Exception as exc:
        log.warning("health: redis unreachable: %s", exc)
        return "unavailable"


@bp.get("/health")
def health():
    checks = {"database": _database(), "queue": _queue()}
    ok = all(value in ("ok", "inline") for value in checks.values())
    return jsonify(status="ok" if ok else "degraded", **checks), 200 if ok else 503
