"""The JSON API, /api/v1. One module per resource; errors and conventions in `errors`,
per-route authorisation in `access`. CSRF: see `vsync.auth` (cookie writes only)."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    from vsync.api import errors, health, live, me, orgs  # noqa: F401  (routes register on import)

    errors.init_app(app)
    app.register_blueprint(bp)
