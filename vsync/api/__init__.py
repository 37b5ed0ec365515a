"""The JSON API, /api/v1. One module per resource; errors and conventions in `errors`,
per-route authorisation in `access`. CSRF: see `vsync.auth` (cookie writes only)."""
from __future__ import annotations

import re
import uuid

from flask import Blueprint, Flask, g, request

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _request_id():
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex


def _echo_request_id(response):
    if g.get("request_id"):
        response.headers["X-Request-ID"] = g.request_id
    return response


def init_app(app: Flask) -> None:
    from vsync.api import errors, health, me, orgs  # noqa: F401  (routes register on import)

    app.before_request_funcs.setdefault(None, []).insert(0, _request_id)
    app.after_request(_echo_request_id)
    errors.init_app(app)
    app.register_blueprint(bp)
