"""JSON errors for /api/v1: `{"error": {"code", "message", "details", "request_id"}}`."""
from __future__ import annotations

import logging

from flask import Flask, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from vsync.errors import DomainError
from vsync.http import error_response, is_api_request
from vsync.tenancy import TenancyError

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """App-level handlers (unmatched /api/ URLs never reach a blueprint handler); pages keep HTML."""

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        if is_api_request():
            return error_response(exc.status, exc.code, exc.message, exc.details)
        return exc.message, exc.status

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        if is_api_request():
            return error_response(400, "csrf_failed", exc.description)
        return exc

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if is_api_request():
            return error_response(exc.code or 500, None, exc.description or exc.name)
        return exc

    @app.errorhandler(TenancyError)
    def _tenancy_error(exc: TenancyError):
        log.error("tenancy violation on %s %s: %s", request.method, request.path, exc)
        if is_api_request():
            return error_response(500, "internal_error", "The request could not be scoped to an organisation.")
        return "The request could not be scoped to an organisation.", 500
