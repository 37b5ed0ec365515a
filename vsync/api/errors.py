"""JSON errors for /api/v1: `{"error": {"code", "message", "details", "request_id"}}`.

Request parsing (webargs, from the routes' marshmallow schemas) raises `vsync.errors.ValidationError`
like every service does, so a bad parameter and a bad value deep in a service look the same to a
caller: 400, a message, and `details` naming each field (`"kinds.1"` for the second item of a list).
"""
from __future__ import annotations

import logging

import marshmallow as ma
from flask import Flask, request
from flask_wtf.csrf import CSRFError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, UnsupportedMediaType

from vsync.errors import DomainError, ValidationError
from vsync.http import error_response, is_api_request
from vsync.tenancy import TenancyError

log = logging.getLogger(__name__)


def _flatten(messages, prefix: str = "") -> dict[str, str]:
    if isinstance(messages, dict):
        flat: dict[str, str] = {}
        for key, value in messages.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(messages, (list, tuple)) and all(isinstance(m, str) for m in messages):
        return {prefix or "_body": " ".join(messages)}
    if isinstance(messages, (list, tuple)):
        flat = {}
        for value in messages:
            flat.update(_flatten(value, prefix))
        return flat
    return {prefix or "_body": str(messages)}


class Parser(FlaskParser):
    """webargs' parser, refusing unknown query parameters and body fields, failing as `ValidationError`."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
                                   "query": ma.RAISE, "querystring": ma.RAISE}
    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req, schema):
        if req.get_data(cache=True) and not req.is_json:
            raise UnsupportedMediaType("Send the body as JSON, with 'Content-Type: application/json'.")
        return super().load_json(req, schema)

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        details = {}
        for location, messages in error.normalized_messages().items():
            details.update(_flatten(messages) if location in ("query", "json", "form") else {location: str(messages)})
        details = {("body" if field == "_body" else field): message for field, message in details.items()}
        field, message = next(iter(details.items()))
        raise ValidationError(f"{field}: {message}" if len(details) == 1 else
                              f"{len(details)} fields are invalid; see details.", details=details)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        raise ValidationError("The body is not valid JSON.", field="body")


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
            response, status = error_response(exc.code or 500, None, exc.description or exc.name)
            for name, value in exc.get_headers():
                if name.lower() not in ("content-type", "content-length"):
                    response.headers[name] = value
            return response, status
        return exc

    @app.errorhandler(TenancyError)
    def _tenancy_error(exc: TenancyError):
        log.error("tenancy violation on %s %s: %s", request.method, request.path, exc)
        if is_api_request():
            return error_response(500, "internal_error", "The request could not be scoped to an organisation.")
        return "The request could not be scoped to an organisation.", 500
