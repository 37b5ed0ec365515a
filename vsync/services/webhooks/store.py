"""Receiving MightyCall webhooks: authenticate a delivery and store its events, as the receiver
(`vsync.webhooks`) does; applying them is `vsync.services.webhooks.process`.

Authentication has up to three parts. The URL token (random, stored as SHA-256, looked up before any
tenant is known, hence the one reviewed bypass in `authenticate_token`) finds the integration; each
event's `ApiKey` must equal that integration's MightyCall API key; and where the integration has
signing secrets (for a relay that can sign, since MightyCall itself cannot), `X-Vsync-Signature:
t=<unix seconds>,v1=<hex>` must be HMAC-SHA256 of `"<t>.<raw body>"` under one of its (at most two)
active secrets, within `SIGNATURE_TOLERANCE` of now. The token and secrets are issued by
`vsync.services.webhooks.credentials`; secrets are stored encrypted (`vsync.crypto`).

Nothing stored holds MightyCall's API key: every field of a delivery that names one (`ApiKey`, in
accepted events and in refused requests alike, matching or not: a key that does not match may be
another account's real one) is replaced before the row is written by a marker saying only whether
it matched (`vsync.redaction`), and so are such fields among the kept headers. Processing and
replaying read the stored events and never need the key: the receiver checked it.

A delivery is received on a Core connection of its own (`receiving()`), not the ORM session: it is
the one path every event takes, and it reads one row and writes the delivery's events. Its writes
are scoped by construction instead of by the tenant hook: the token decides the org before anything
is stored, and every row `store_events` and `store_rejected` write names that org. The connection
commits when the receiver's block ends, before it answers (store first, then acknowledge).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, TextualSelect, bindparam, insert, select, text

from vsync import crypto
from vsync.extensions import db
from vsync.models import Integration, WebhookEvent
from vsync.models.integrations import ACTIVE
from vsync.models.operations import RECEIVED, REJECTED
from vsync.redaction import API_KEY_MATCHED, API_KEY_NOT_MATCHED, api_key_fields_replaced, is_api_key_name
from vsync.tenancy import reviewed_sql

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vsync-Signature"
SIGNATURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class WebhookEndpoint:
    """What the receiver needs to know about the integration a token names; plain values only."""

    integration_id: int
    org_id: int
    api_key: str
    signing_secrets: tuple[str, ...]

    def __repr__(self) -> str:
        return f"WebhookEndpoint(integration_id={self.integration_id}, org_id={self.org_id})"


@lru_cache(maxsize=1024)
def _api_key(credentials_encrypted: str) -> str:
    """Decrypted once per ciphertext and process, not per delivery: a new key or a re-encryption is a
    new ciphertext. The plaintext stays in a process that holds the encryption keys anyway."""
    return crypto.decrypt_json(credentials_encrypted)["api_key"]


@lru_cache(maxsize=1024)
def _signing_secrets(secrets_encrypted: str) -> tuple[str, ...]:
    return tuple(crypto.decrypt_json(secrets_encrypted)["secrets"])


@contextmanager
def receiving() -> Iterator[Connection]:
    """The connection one delivery is authenticated and stored on; it commits when the block ends
    without an error, and rolls back otherwise."""
    with db.engine.begin() as connection:
        yield connection


_integrations = Integration.__table__.c
_BY_TOKEN = reviewed_sql(
    select(
        _integrations.id,
        _integrations.org_id,
        _integrations.credentials_encrypted,
        _integrations.webhook_signing_secrets_encrypted,
    ).where(_integrations.webhook_token_hash == bindparam("token_hash"), _integrations.status == ACTIVE)
)


def authenticate_token(connection: Connection, token: str) -> WebhookEndpoint | None:
    """The active integration whose webhook token is `token`, or None.

    Runs before any tenant is known: a Core read of the one row the token names (the reviewed path,
    like an API key's check); it returns plain values, not the row. The token is 256 random bits, so
    looking up its SHA-256 by index gives nothing away by timing.
    """
    if not token or len(token) > 200:
        return None
    found = connection.execute(_BY_TOKEN, {"token_hash": crypto.secret_digest(token)}).first()
    if found is None:
        return None
    integration_id, org_id, credentials, signing_secrets = found
    return WebhookEndpoint(
        integration_id=integration_id,
        org_id=org_id,
        api_key=_api_key(credentials),
        signing_secrets=_signing_secrets(signing_secrets) if signing_secrets else (),
    )


def api_key_matches(endpoint: WebhookEndpoint, given: object) -> bool:
    """Constant-time comparison of an event's `ApiKey` with the integration's."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), endpoint.api_key.encode())


def _api_key_marker(endpoint: WebhookEndpoint, given: object) -> str:
    return API_KEY_MATCHED if api_key_matches(endpoint, given) else API_KEY_NOT_MATCHED


def without_api_keys(endpoint: WebhookEndpoint, value: Any) -> Any:
    """`value` (a delivery as parsed, or a part of it) with every field that names an API key
    holding only whether it matched the integration's key."""
    if isinstance(value, dict):
        return {
            name: _api_key_marker(endpoint, item) if is_api_key_name(name) else without_api_keys(endpoint, item)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [without_api_keys(endpoint, item) for item in value]
    return value


def _text_without_api_keys(endpoint: WebhookEndpoint, text: str) -> str:
    return api_key_fields_replaced(text, lambda given: _api_key_marker(endpoint, given))


def _refused_body(endpoint: WebhookEndpoint, raw: bytes) -> str:
    """A refused request's body for storing: as JSON without API keys when it is JSON; otherwise
    (malformed, cut at the size limit, another format) as text with every `ApiKey`'s value replaced.
    PostgreSQL text holds no NUL character."""
    try:
        text = json.dumps(without_api_keys(endpoint, json.loads(raw)), separators=(",", ":"))
    except (ValueError, RecursionError):
        text = raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return _text_without_api_keys(endpoint, text)


def _headers(endpoint: WebhookEndpoint, headers: Mapping[str, Any]) -> dict:
    return {
        name: _api_key_marker(endpoint, value)
        if is_api_key_name(name)
        else _text_without_api_keys(endpoint, value)
        if isinstance(value, str)
        else value
        for name, value in headers.items()
    }


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Vsync-Signature` value a relay sends for `body` at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_problem(endpoint: WebhookEndpoint, header: str | None, body: bytes, now: datetime) -> str | None:
    """Why the signature does not authenticate `body`, or None when it does (or none is required)."""
    if not endpoint.signing_secrets:
        return None
    if not header:
        return f"This integration requires a {SIGNATURE_HEADER} header."
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    stamp, signatures = fields.get("t", [""])[0], fields.get("v1", [])
    if not stamp.isdigit() or not signatures:
        return f"{SIGNATURE_HEADER} must read t=<unix seconds>,v1=<hex HMAC-SHA256>."
    if abs(now.timestamp() - int(stamp)) > SIGNATURE_TOLERANCE.total_seconds():
        return (
            f"The signature timestamp is more than {int(SIGNATURE_TOLERANCE.total_seconds() // 60)} minutes "
            "away from now; check the sender's clock or re-sign."
        )
    expected = [sign(secret, body, int(stamp)).partition("v1=")[2] for secret in endpoint.signing_secrets]
    if any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        return None
    return "The signature does not match any active signing secret."


_STORED = ("org_id", "integration_id", "guid", "event_type", "headers", "body", "status", "attempts", "received_at")


def _insert_events() -> TextualSelect:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id of one event, over the columns a received event is
    stored with, their types taken from the model.

    Written as text because SQLAlchemy 2.0 compiles its dialect INSERT … ON CONFLICT anew on every
    execution (its cache key is missing: sqlalchemy/sqlalchemy#10445, fixed in 2.1), which on the
    receiver's hot path cost more than the rest of storing the event; a text statement is compiled
    once and cached. PostgreSQL and SQLite both take this syntax.
    """
    table = WebhookEvent.__table__
    names = ", ".join(_STORED)
    values = ", ".join(f":{name}" for name in _STORED)
    return reviewed_sql(
        text(
            f"INSERT INTO {table.name} ({names}) VALUES ({values}) "
            "ON CONFLICT (integration_id, guid) DO NOTHING RETURNING id"
        )
        .bindparams(*(bindparam(name, type_=table.c[name].type) for name in _STORED))
        .columns(table.c.id)
    )


_INSERT_EVENTS = _insert_events()


@dataclass(frozen=True)
class StoredEvents:
    new_ids: list[int]
    duplicates: int


def store_events(
    connection: Connection,
    endpoint: WebhookEndpoint,
    events: list[tuple[str, str, Mapping]],
    headers: Mapping[str, Any],
    received_at: datetime,
) -> StoredEvents:
    """Store (guid, event type, event object) events as sent but for their API key, in the
    endpoint's org; a Guid the integration already has is a duplicate.

    An INSERT … ON CONFLICT DO NOTHING per event, in the caller's one transaction, so two
    deliveries of one event racing each other store it once, and the unique index (not a read
    first) decides which events are new.
    """
    unique = list({guid: (guid, event_type, item) for guid, event_type, item in events}.values())
    kept = _headers(endpoint, headers)
    rows = [
        {
            "org_id": endpoint.org_id,
            "integration_id": endpoint.integration_id,
            "guid": guid,
            "event_type": event_type,
            "headers": kept,
            "body": json.dumps(without_api_keys(endpoint, item), separators=(",", ":")),
            "status": RECEIVED,
            "attempts": 0,
            "received_at": received_at,
        }
        for guid, event_type, item in unique
    ]
    new_ids = [event_id for row in rows for event_id in connection.execute(_INSERT_EVENTS, row).scalars()]
    return StoredEvents(new_ids=sorted(new_ids), duplicates=len(events) - len(new_ids))


def store_rejected(
    connection: Connection,
    endpoint: WebhookEndpoint,
    body: bytes,
    headers: Mapping[str, Any],
    reason: str,
    received_at: datetime,
) -> None:
    """Keep a refused request (token valid, anything else wrong) with its reason, in the endpoint's
    org, without any API key it carried; it is never processed."""
    connection.execute(
        reviewed_sql(insert(WebhookEvent.__table__)).values(
            org_id=endpoint.org_id,
            integration_id=endpoint.integration_id,
            guid=None,
            event_type=None,
            headers=_headers(endpoint, headers),
            body=_refused_body(endpoint, body),
            status=REJECTED,
            error=reason,
            attempts=0,
            received_at=received_at,
        )
    )
