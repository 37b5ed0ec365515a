"""GET /api/v1/health: is the database reachable, is the queue reachable. Public, for load balancers."""

from __future__ import annotations

import logging

import marshmallow as ma
from marshmallow import fields
from sqlalchemy import text

from vsync.api import bp
from vsync.extensions import db
from vsync.queue import redis_connection

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


class HealthSchema(ma.Schema):
    status = fields.String(required=True, metadata={"description": "ok or degraded"})
    database = fields.String(required=True, metadata={"description": "ok or unavailable"})
    queue = fields.String(required=True, metadata={"description": "ok, inline (no Redis configured) or unavailable"})


@bp.get("/health")
@bp.response(200, HealthSchema)
@bp.alt_response(503, schema=HealthSchema, description="The database or the queue is unreachable.")
@bp.doc(security=[])
def health():
    """Is vsync up

    Public, for load balancers; not rate limited.
    """
    checks = {"database": _database(), "queue": _queue()}
    ok = all(value in ("ok", "inline") for value in checks.values())
    return {"status": "ok" if ok else "degraded", **checks}, 200 if ok else 503
