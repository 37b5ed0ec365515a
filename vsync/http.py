"""What every HTTP edge shares: which requests are API requests, the JSON error envelope and every
error handler, the request id that every response, JSON error and log record carries
(`X-Request-ID`: the caller's, when it is a sane token), the security headers on every answer, and
the refusal of NUL characters in what a request names (PostgreSQL text cannot hold one, so one
reaching a query would be a 500; the webhook receiver, which keeps every body it is sent, is exempt
and stores them replaced).

Security headers are one `after_request` hook rather than Flask-Talisman: vsync needs five fixed
headers and no per-route policy, while Talisman's defaults (an HTTPS redirect, secure-only session
cookies, same-origin framing) would each have to be overridden: `make run` is plain HTTP, the
cookie flags are `vsync.config`'s, and vsync is never framed. The hook covers every answer Flask
makes: pages, the API's JSON, errors of every kind (their handlers' answers pass through it), the
webhook receiver and static files. The Content-Security-Policy allows no inline script or style:
vsync's are files under `vsync/static/`, the dashboard's figures ride in a JSON data block (never
executed), and the two inline texts of Flask-Admin's own templates are allowed by hash alone.
`Referrer-Policy: same-origin` sends no address to other sites, yet keeps the Referer on vsync's own
form posts: Flask-WTF's CSRF check requires it over HTTPS, and the platform console returns to the
page a form came from. HSTS is sent in production only (`VSYNC_ENV=production`, served over HTTPS);
vsync never redirects to HTTPS itself: that is the TLS-terminating proxy's work.

Errors: the API, the webhook receiver and the dashboard's data answer JSON in one envelope
(`error_response`, its `request_id` the request's); pages keep HTML, except that an org the user may
not reach in a console URL sends them back to the org picker with a flash. The handlers are the
app's, not a blueprint's, because an unmatched `/api/` URL never reaches a blueprint handler.

Logging: `LogContext` puts the request id, or the RQ job id in a job, on every log record
(`%(context)s`), so no log call writes it by hand.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import uuid

from flask import Flask, flash, g, has_request_context, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from vsync.errors import DomainError, NotFound
from vsync.queue import current_job_id
from vsync.tenancy import TenancyError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
}


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(status: int, code: str | None = None, message: str = "", details: dict | None = None):
    """`{"error": {"code", "message", "details", "request_id"}}` with `status`."""
    body = {
        "error": {
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "details": details or {},
            "request_id": g.get("request_id"),
        }
    }
    return jsonify(body), status


NUL_ALLOWED_ENDPOINTS = {"webhooks.receive"}


def _nul_field() -> str | None:
    """The first part of the request holding a NUL character: the path, a query parameter, a form
    field or a JSON value (by its dotted path)."""
    if "\x00" in request.path:
        return "path"
    # An API request's body is JSON or refused (415) by the API itself: its form is never parsed here.
    sources = (request.args,) if request.is_json or is_api_request() else (request.args, request.form)
    for source in sources:
        for key, values in source.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return key.replace("\x00", "")
    return _nul_in(request.get_json(silent=True), "body") if request.is_json else None


def _nul_in(value, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if "\x00" in str(key):
            return path
        if (found := _nul_in(item, f"{path}.{key}" if path != "body" else str(key))) is not None:
            return found
    return None


def _refuse_nul():
    if request.endpoint in NUL_ALLOWED_ENDPOINTS or (field := _nul_field()) is None:
        return None
    message = "A NUL character (\\0) is not allowed here."
    if is_api_request():
        return error_response(400, "validation_error", message, {field: message})
    return message, 400


def _request_id() -> None:
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex


def _echo_request_id(response):
    if g.get("request_id"):
        response.headers["X-Request-ID"] = g.request_id
    return response


# Flask-Admin's own templates carry two bits of inline script: `onclick="return false;"` on the
# items of a list's filter menu, and `href="javascript:void(0)"` on its tabs, menu toggles and
# disabled pager links. The policy allows exactly these two texts, by hash ('unsafe-hashes' is what
# lets a hash match an event handler or a javascript: URL), and no other inline script.
FLASK_ADMIN_INLINE_SCRIPT = ("return false;", "javascript:void(0)")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        " ".join(("script-src 'self' 'unsafe-hashes'", *map(_sha256, FLASK_ADMIN_INLINE_SCRIPT))),
        "style-src 'self'",
        "img-src 'self' data:",  # Bootstrap's icons are data: SVGs in its stylesheet; the favicon is `data:,`
        "font-src 'self'",
        "connect-src 'self'",  # the dashboard's refresh
        "media-src 'self'",  # the recording player, through vsync's audio route
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(production: bool) -> dict[str, str]:
    """The headers every answer carries; HSTS only in production."""
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if production:
        headers["Strict-Transport-Security"] = HSTS
    return headers


class LogContext(logging.Filter):
    """Adds `context` to every record: `job <id>` in an RQ job (its failure callback included),
    `request <id>` in a request, else `-`. A job run inline in a request logs as the request.

    A filter on a logger sees only that logger's own records, so `vsync.create_app` sets it on the
    root logger's handlers, which every record reaches (Redash's `CurrentJobFilter` does the same).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = current_job_id()
        if job_id is not None:
            record.context = f"job {job_id}"
        elif has_request_context() and g.get("request_id"):
            record.context = f"request {g.request_id}"
        else:
            record.context = "-"
        return True


def _domain_error(exc: DomainError):
    if is_api_request():
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, NotFound) and exc.field == "org" and request.path.startswith("/admin/orgs/"):
        flash("That organisation is not available to you. Choose one of yours.", "error")
        return redirect(url_for("admin.index"))
    return exc.message, exc.status


def _csrf_error(exc: CSRFError):
    if is_api_request():
        return error_response(400, "csrf_failed", exc.description or "")
    return exc


# What the error page says for the common statuses; any other shows Werkzeug's description.
_ERROR_PAGES = {
    403: ("Not for your role", "Your role does not give you this page."),
    404: ("Page not found", "There is no such page, or it is not one of yours. Check the address or start again."),
    500: ("Something went wrong", "vsync could not answer this request. It is logged; try again in a moment."),
}


def _signed_in() -> bool:
    """Whether a person is signed in, for the error page's way back: loading the user may be what
    failed (the database), and the page must render all the same."""
    try:
        return bool(current_user.is_authenticated)
    except Exception:
        return False


def _http_error(exc: HTTPException):
    if is_api_request():
        response, status = error_response(exc.code or 500, None, exc.description or exc.name)
        for name, value in exc.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response, status
    if exc.code is None or exc.code < 400 or exc.code in (401, 405):
        return exc  # redirects, and answers a browser never shows a person, stay as Werkzeug makes them
    heading, message = _ERROR_PAGES.get(exc.code, (exc.name, exc.description or exc.name))
    page = render_template(
        "error.html",
        error=exc,
        heading=heading,
        message=message,
        signed_in=_signed_in(),
        request_id=g.get("request_id"),
    )
    return page, exc.code, {name: value for name, value in exc.get_headers() if name.lower() == "retry-after"}


def _tenancy_error(exc: TenancyError):
    log.error("tenancy violation on %s %s: %s", request.method, request.path, exc)
    if is_api_request():
        return error_response(500, "internal_error", "The request could not be scoped to an organisation.")
    return "The request could not be scoped to an organisation.", 500


def init_app(app: Flask) -> None:
    """The request id is set before any other hook, so even an authentication error carries it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _request_id)
    app.before_request_funcs[None].insert(1, _refuse_nul)
    app.after_request(_echo_request_id)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(TenancyError, _tenancy_error)
    headers = security_headers(app.config["VSYNC_ENV"] == "production")

    def _secure(response):
        response.headers.update(headers)
        return response

    app.after_request(_secure)
