"""What every HTTP edge shares: which requests are API requests, the JSON error envelope, and the
request id that every response carries (`X-Request-ID`: the caller's, when it is a sane token)."""
from __future__ import annotations

import re
import uuid

from flask import Flask, g, jsonify, request

API_PREFIX = "/api/"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
          416: "range_not_satisfiable", 422: "unprocessable", 429: "rate_limited", 500: "internal_error",
          502: "upstream_error", 503: "unavailable"}


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(status: int, code: str | None = None, message: str = "", details: dict | None = None):
    """`{"error": {"code", "message", "details", "request_id"}}` with `status`."""
    body = {"error": {"code": code or _CODES.get(status, "error"), "message": message,
                      "details": details or {}, "request_id": g.get("request_id")}}
    return jsonify(body), status


def _request_id() -> None:
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex


def _echo_request_id(response):
    if g.get("request_id"):
        response.headers["X-Request-ID"] = g.request_id
    return response


def init_app(app: Flask) -> None:
    """The request id is set before any other hook, so even an authentication error carries it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _request_id)
    app.after_request(_echo_request_id)
