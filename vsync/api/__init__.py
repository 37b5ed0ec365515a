"""The JSON API, /api/v1: one module per resource, described by one OpenAPI document.

Routes are declared with flask-smorest: the marshmallow schemas that parse a route's query and body
(`@bp.arguments`) and shape its answer (`@bp.response`) are the ones `/api/v1/openapi.json` is
generated from, so the document cannot drift from the code. Query parameters a route does not
declare are refused (400), as are bodies with unknown fields (`vsync.api.schemas`).

Conventions shared by every route live beside it: request parsing in `errors` (the JSON error
envelope and its handlers are `vsync.http`'s), per-route authorisation in `access`, keyset cursors
in `paging`, rate limits in `limits`, the readable reference at `/api/v1/docs` in `docs`. CSRF: see
`vsync.auth` (cookie-authenticated writes only).
"""

from __future__ import annotations

import marshmallow as ma
from flask import Flask
from flask_smorest import Api, Blueprint

from vsync.api.errors import Parser

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.ARGUMENTS_PARSER = Parser()


class _Api(Api):
    """flask-smorest's Api with the error envelope of `vsync.http`, whose handlers answer every error."""

    ERROR_SCHEMA: type[ma.Schema]  # the envelope of `vsync.http`, set in `init_app` (schemas import this module)

    def _register_error_handlers(self) -> None:
        pass


api = _Api()

API_CONFIG = {
    "API_TITLE": "vsync",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
}


def init_app(app: Flask) -> None:
    from vsync.api import (  # noqa: F401  (routes register on import)
        alerts,
        audit,
        billing,
        calls,
        docs,
        health,
        integration,
        keys,
        limits,
        live,
        me,
        members,
        metrics,
        numbers,
        orgs,
        preferences,
        recordings,
        schemas,
        sms,
        sync,
        tickets,
    )

    for name, value in API_CONFIG.items():
        app.config.setdefault(name, value)
    app.config.setdefault("API_SPEC_OPTIONS", schemas.SPEC_OPTIONS)
    api.ERROR_SCHEMA = schemas.ErrorEnvelope
    api.init_app(app)
    limits.init_app(app)
    api.register_blueprint(bp)
    docs.init_app(app)
