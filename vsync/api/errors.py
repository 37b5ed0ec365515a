"""Request parsing for /api/v1. Its errors, like every error, are answered by `vsync.http`'s
handlers in the JSON envelope `{"error": {"code", "message", "details", "request_id"}}`.

Parsing (webargs, from the routes' marshmallow schemas) raises `vsync.errors.ValidationError`
like every service does, so a bad parameter and a bad value deep in a service look the same to a
caller: 400, a message, and `details` naming each field (`"kinds.1"` for the second item of a list).
"""

from __future__ import annotations

import marshmallow as ma
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import UnsupportedMediaType

from vsync.errors import ValidationError


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

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }
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
        raise ValidationError(
            f"{field}: {message}" if len(details) == 1 else f"{len(details)} fields are invalid; see details.",
            details=details,
        )

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        raise ValidationError("The body is not valid JSON.", field="body")
