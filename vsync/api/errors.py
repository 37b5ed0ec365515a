"""JSON errors for /api/v1: `{"error": {"code", "message", "details", "request_id"}}`."""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from vsync.errors import DomainError
from vsync.tenancy import TenancyError

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
          422: "unprocessable", 429: "rate_limited", 500: "internal_error", 503: "unavailable"}


def error_response(status: int, code: str | None = None, message: str = "", details: dict | None = None):
    body = {"error": {"code": code or _CODES.get(status, "error"), "message": message,
                      "details": details or {}, "request_id": g.get("request_id")}}
    return jsonify(body), status


def _is_api() -> bool:
    return request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    """App-level handlers (unmatched /api/ URLs never reach a blueprint handler); pages keep HTML."""

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        if _is_api():
            return error_response(exc.status, exc.code, exc.message, exc.details)
        return exc.message, exc.status

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        if _is_api():
            return error_response(400, "csrf_failed", exc.description)
        return exc

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if _is_api():
            return error_response(exc.code or 500, None, exc.description or exc.name)
        return exc

    @app.errorhandler(TenancyError)
    def _tenancy_error(exc: TenancyError):
        log.error("tenancy violation on %s %s: %s", request.method, request.path, exc)
        if _is_api():
            return error_response(500, "internal_error", "The request could not be scoped to an organisation.")
        return "The request could not be scoped to an organisation.", 500
