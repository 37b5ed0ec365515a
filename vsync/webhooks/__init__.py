"""The MightyCall webhook receiver: `POST /webhooks/mightycall/<token>`.

Store first, then acknowledge: every event is written to `webhook_events` as sent, less MightyCall's
`ApiKey` (kept only as whether it matched: `vsync.services.webhooks`), and committed before
the 200 goes out, and applied afterwards by a drain of the org's received events on RQ
(`vsync.services.webhooks.process`; a delivery only wakes it, with one Redis flag), so the sender (which gives
up after a few seconds) is answered in milliseconds and no event it was told about is lost.

Public and exempt from CSRF by design (see `vsync.auth`): MightyCall has no session and no CSRF
token; the URL token, each event's `ApiKey` and, where configured, a signature authenticate it
(`vsync.services.webhooks`). An unknown or rotated-out token gets the same 404 as any unknown URL, so
the answer never says whether a token exists, and nothing is stored. With a valid token, a request
that is refused for any other reason is kept as one `rejected` event with the reason. The token also
fixes the request's org (`vsync.tenancy.fix_request_org`): the drain it runs inline without Redis
acts in that org's scope, and nothing in the request may enter another's.

Answers: 200 `{"received": n, "duplicates": d}`; refusals in `vsync.http`'s JSON error envelope,
with the request id; `Echo` validation requests get their `Echo` header
back; 400 malformed JSON or a bad event (the first problem named, with its index); 401 wrong `ApiKey`
or signature; 413 body over 256 KiB or more than `MAX_EVENTS` events; 415 not JSON. A request is
stored whole or refused whole: a list with one bad event stores none of its events.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Flask, Response, jsonify, request
from sqlalchemy import Connection

from vsync.http import error_response
from vsync.mightycall.parsing import ParseError
from vsync.mightycall.webhook_events import parse_event
from vsync.models.types import utcnow
from vsync.services.webhooks import (
    SIGNATURE_HEADER,
    WebhookEndpoint,
    api_key_matches,
    authenticate_token,
    receiving,
    signature_problem,
    store_events,
    store_rejected,
    wake,
)
from vsync.tenancy import fix_request_org

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_BODY = 256 * 1024
MAX_EVENTS = 500
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", SIGNATURE_HEADER, "X-Forwarded-For")


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def _kept_headers() -> dict[str, str | None]:
    kept: dict[str, str | None] = {
        name: request.headers[name][:500] for name in KEPT_HEADERS if name in request.headers
    }
    kept["Remote-Addr"] = request.remote_addr
    return kept


def _read_body() -> bytes:
    if (request.content_length or 0) > MAX_BODY:
        raw = request.stream.read(MAX_BODY)
        raise Refused(
            413,
            "payload_too_large",
            f"The body is {request.content_length} bytes; the limit is "
            f"{MAX_BODY} (256 KiB). Send fewer events per request.",
            {"body": raw},
        )
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Refused(
            413,
            "payload_too_large",
            f"The body is over {MAX_BODY} bytes (256 KiB). Send fewer events per request.",
            {"body": raw[:MAX_BODY]},
        )
    return raw


def _events(endpoint: WebhookEndpoint, raw: bytes) -> list:
    """The request's events, authenticated and validated, or `Refused`."""
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise Refused(
            415,
            "unsupported_media_type",
            f"Send Content-Type: application/json, not {request.mimetype or 'nothing'!r}.",
        )
    problem = signature_problem(endpoint, request.headers.get(SIGNATURE_HEADER), raw, utcnow())
    if problem:
        raise Refused(401, "bad_signature", problem)
    try:
        payload = json.loads(raw)
    except RecursionError:
        raise Refused(400, "malformed_json", "The JSON is nested too deeply.") from None
    except ValueError as exc:
        raise Refused(400, "malformed_json", f"The body is not valid JSON: {exc}.") from None
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise Refused(400, "no_events", "The list holds no events.")
    if len(items) > MAX_EVENTS:
        raise Refused(413, "too_many_events", f"{len(items)} events in one request; the limit is {MAX_EVENTS}.")
    for index, item in enumerate(items):
        if isinstance(item, dict) and not api_key_matches(endpoint, item.get("ApiKey")):
            raise Refused(
                401,
                "bad_api_key",
                f"Event {index}: ApiKey is missing or is not this integration's MightyCall API key.",
                {"index": index},
            )
    events = []
    for index, item in enumerate(items):
        try:
            events.append(parse_event(item))
        except ParseError as exc:
            raise Refused(
                400,
                "invalid_event",
                f"Event {index}: {exc}",
                {"index": index, **({"field": exc.field} if exc.field else {})},
            ) from None
    return events


def _store(connection: Connection, endpoint: WebhookEndpoint, events) -> tuple[list[int], int]:
    rows = [(e.guid, e.event_type, e.raw) for e in events]
    try:
        stored = store_events(connection, endpoint, rows, _kept_headers(), utcnow())
    except RecursionError:  # each event is walked for API keys before any is written
        raise Refused(400, "malformed_json", "The JSON is nested too deeply.") from None
    return stored.new_ids, stored.duplicates


def _refuse(connection: Connection, endpoint: WebhookEndpoint, refused: Refused, raw: bytes):
    body = refused.details.pop("body", raw)
    store_rejected(
        connection, endpoint, body, _kept_headers(), f"{refused.status} {refused.code}: {refused.message}", utcnow()
    )
    log.info("webhook for integration %s refused: %s %s", endpoint.integration_id, refused.status, refused.code)
    return error_response(refused.status, refused.code, refused.message, refused.details)


@bp.post("/mightycall/<token>")
def receive(token: str):
    with receiving() as connection:  # committed as the block ends, before any answer goes out
        endpoint = authenticate_token(connection, token)
        if endpoint is None:
            return error_response(404, "not_found", "Not found.")
        fix_request_org(endpoint.org_id)  # the drain it runs inline acts in this org, and in no other
        if "Echo" in request.headers:
            response = Response(status=200)
            response.headers["Echo"] = request.headers["Echo"][:200]
            return response
        raw = b""
        try:
            raw = _read_body()
            new_ids, duplicates = _store(connection, endpoint, _events(endpoint, raw))
        except Refused as refused:
            return _refuse(connection, endpoint, refused, raw)
    if new_ids:
        try:
            wake(endpoint.org_id)
        except Exception:
            # Stored and committed, so acknowledged: the org's next drain, or the minute's sweep of
            # stalled events, applies them (Redis down; without Redis, processing failed in-request).
            log.exception(
                "webhook events %s of integration %s stored, processing not started", new_ids, endpoint.integration_id
            )
    return jsonify({"received": len(new_ids), "duplicates": duplicates}), 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
