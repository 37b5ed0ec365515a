"""MightyCall webhooks: authenticate a delivery, store its events, rotate the token and signing
secrets. Used by the receiver (`vsync.webhooks`), the CLI and the console; processing and replaying
stored events are jobs (`vsync.jobs.webhooks`).

Authentication has up to three parts. The URL token (random, stored as SHA-256, looked up before any
tenant is known, hence the one reviewed bypass in `authenticate_token`) finds the integration; each
event's `ApiKey` must equal that integration's MightyCall API key; and where the integration has
signing secrets (for a relay that can sign, since MightyCall itself cannot), `X-Vsync-Signature:
t=<unix seconds>,v1=<hex>` must be HMAC-SHA256 of `"<t>.<raw body>"` under one of its (at most two)
active secrets, within `SIGNATURE_TOLERANCE` of now. Secrets are stored encrypted (`vsync.crypto`).

Commit policy: functions that take an integration change it in the caller's session and flush; the
caller commits. `store_events` and `store_rejected` write in the caller's tenant scope and leave the
commit to the caller too, which acknowledges only after committing (store first, then acknowledge).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from vsync import crypto
from vsync.extensions import db
from vsync.models import Integration, WebhookEvent
from vsync.models.integrations import ACTIVE
from vsync.models.operations import RECEIVED, REJECTED
from vsync.services import audit
from vsync.tenancy import TenancyError, current_org_id

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vsync-Signature"
SIGNATURE_TOLERANCE = timedelta(minutes=5)
MAX_SIGNING_SECRETS = 2


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A webhook token and its hash; only the hash is stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


@dataclass(frozen=True)
class WebhookEndpoint:
    """What the receiver needs to know about the integration a token names; plain values only."""

    integration_id: int
    org_id: int
    api_key: str
    signing_secrets: tuple[str, ...]

    def __repr__(self) -> str:
        return f"WebhookEndpoint(integration_id={self.integration_id}, org_id={self.org_id})"


def _secrets_of(integration: Integration) -> list[str]:
    if not integration.webhook_signing_secrets_encrypted:
        return []
    return list(crypto.decrypt_json(integration.webhook_signing_secrets_encrypted)["secrets"])


def authenticate_token(token: str) -> WebhookEndpoint | None:
    """The active integration whose webhook token is `token`, or None.

    Runs before any tenant is known: a Core read of the one row the token names (the reviewed path,
    like an API key's check); it returns plain values, not the row. The token is 256 random bits, so looking up its
    SHA-256 by index gives nothing away by timing.
    """
    if not token or len(token) > 200:
        return None
    integrations = Integration.__table__.c
    found = db.session.connection().execute(
        select(integrations.id, integrations.org_id, integrations.credentials_encrypted,
               integrations.webhook_signing_secrets_encrypted)
        .where(integrations.webhook_token_hash == hash_token(token), integrations.status == ACTIVE)).first()
    if found is None:
        return None
    integration_id, org_id, credentials, signing_secrets = found
    return WebhookEndpoint(integration_id=integration_id, org_id=org_id,
                           api_key=crypto.decrypt_json(credentials)["api_key"],
                           signing_secrets=tuple(crypto.decrypt_json(signing_secrets)["secrets"])
                           if signing_secrets else ())


def api_key_matches(endpoint: WebhookEndpoint, given: object) -> bool:
    """Constant-time comparison of an event's `ApiKey` with the integration's."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), endpoint.api_key.encode())


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
        return f"The signature timestamp is more than {int(SIGNATURE_TOLERANCE.total_seconds() // 60)} minutes " \
               "away from now; check the sender's clock or re-sign."
    expected = [sign(secret, body, int(stamp)).partition("v1=")[2] for secret in endpoint.signing_secrets]
    if any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        return None
    return "The signature does not match any active signing secret."


def _insert_events():
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, executed with a list of rows: one cached
    statement whatever the number of events (a VALUES list would be compiled anew for each request)."""
    table = WebhookEvent.__table__
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return insert.on_conflict_do_nothing(index_elements=["integration_id", "guid"]).returning(table.c.id)


def _org_in_scope(endpoint: WebhookEndpoint) -> int:
    """Webhook events are written only inside the endpoint's own org scope."""
    org_id = current_org_id()
    if org_id != endpoint.org_id:
        raise TenancyError(f"Webhook events of org {endpoint.org_id} are stored in that org's tenant scope only.")
    return org_id


@dataclass(frozen=True)
class StoredEvents:
    new_ids: list[int]
    duplicates: int


def store_events(endpoint: WebhookEndpoint, events: list[tuple[str, str, str]], headers: dict,
                 received_at: datetime) -> StoredEvents:
    """Store (guid, event type, body) events raw; a Guid the integration already has is a duplicate.

    One INSERT … ON CONFLICT DO NOTHING, so two deliveries of one event racing each other store it
    once, and the unique index (not a read first) decides which events are new.
    """
    org_id = _org_in_scope(endpoint)
    unique = list({guid: (guid, event_type, body) for guid, event_type, body in events}.values())
    rows = [{"org_id": org_id, "integration_id": endpoint.integration_id, "guid": guid, "event_type": event_type,
             "headers": headers, "body": body, "status": RECEIVED, "attempts": 0, "received_at": received_at}
            for guid, event_type, body in unique]
    new_ids = list(db.session.execute(_insert_events(), rows).scalars())
    return StoredEvents(new_ids=sorted(new_ids), duplicates=len(events) - len(new_ids))


def store_rejected(endpoint: WebhookEndpoint, body: str, headers: dict, reason: str, received_at: datetime) -> None:
    """Keep a refused request (token valid, anything else wrong) with its reason; it is never processed."""
    _org_in_scope(endpoint)
    db.session.add(WebhookEvent(integration_id=endpoint.integration_id, guid=None, event_type=None, headers=headers,
                                body=body, status=REJECTED, error=reason, attempts=0, received_at=received_at))
    db.session.flush()


def rotate_webhook_token(integration: Integration) -> str:
    """A new webhook token for `integration`; the old one is refused from the next request on.
    Returns the token, which is shown once and never stored."""
    token, token_hash = new_token()
    integration.webhook_token_hash = token_hash
    db.session.flush()
    audit.record("integration.webhook_token_rotated", org_id=integration.org_id, target=integration,
                 summary="new webhook token; the previous one no longer authenticates")
    return token


def _save_secrets(integration: Integration, active: list[str]) -> None:
    integration.webhook_signing_secrets_encrypted = crypto.encrypt_json({"secrets": active}) if active else None
    db.session.flush()


def add_signing_secret(integration: Integration) -> str:
    """A new signing secret, active at once beside the previous one (so a relay can switch over);
    any older one is dropped. From now on unsigned deliveries are refused. Shown once."""
    secret = secrets.token_urlsafe(32)
    _save_secrets(integration, [secret, *_secrets_of(integration)][:MAX_SIGNING_SECRETS])
    audit.record("integration.webhook_secret_added", org_id=integration.org_id, target=integration,
                 summary="new webhook signing secret; signatures are required")
    return secret


def retire_previous_signing_secret(integration: Integration) -> int:
    """Keep only the newest signing secret, once the relay signs with it. Returns how many were dropped."""
    active = _secrets_of(integration)
    _save_secrets(integration, active[:1])
    audit.record("integration.webhook_secret_retired", org_id=integration.org_id, target=integration,
                 summary=f"{max(len(active) - 1, 0)} previous signing secret(s) retired")
    return max(len(active) - 1, 0)


def stop_requiring_signatures(integration: Integration) -> None:
    """Drop every signing secret: deliveries are authenticated by token and ApiKey only again."""
    _save_secrets(integration, [])
    audit.record("integration.webhook_secrets_removed", org_id=integration.org_id, target=integration,
                 summary="webhook signatures no longer required")
