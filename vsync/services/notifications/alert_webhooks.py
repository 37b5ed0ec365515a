"""The org's outbound alert webhook: each firing and resolution of its rules POSTed as signed JSON.

The org sets an HTTPS URL (console: *Alerts*, org admins). Saving one the first time, or asking for a
new one, makes a signing secret: stored encrypted (`vsync.crypto`), shown once to the person who
saved it, never logged or audited. The URL is refused unless it is `https://` and every address its
host resolves to is public: not private, loopback, link-local, multicast, reserved or unspecified,
unless `VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE` is on (tests; an internal receiver). The check runs when
the URL is saved and again at each attempt, and the attempt connects to the address it checked
(the TLS certificate is still verified against the URL's host name), so a name that resolves to a
public address when checked and to a private one a moment later (DNS rebinding) reaches nothing.

A delivery is decided once per (firing, fired or resolved), a unique row, when the evaluation that
fired or resolved the alert commits; it is POSTed by a job (`deliver_alert_webhook` in
`vsync.jobs.notifications`) that claims it (`queued` → `delivering`) first, with a timeout of
`VSYNC_ALERT_WEBHOOK_TIMEOUT` seconds. Any answer but 2xx, a refused address, a timeout or a broken
connection is a failed attempt: recorded on the row (attempts, response code, error) and retried after
`VSYNC_ALERT_WEBHOOK_RETRY_INTERVALS`, then `failed`.

The request: `Content-Type: application/json`, `X-Vsync-Timestamp` (Unix seconds) and
`X-Vsync-Signature: sha256=<hex>`, the HMAC-SHA256 under the secret of `<timestamp>.<body>` (the body's
exact bytes). A receiver recomputes it, compares in constant time, and refuses a timestamp more than a
few minutes old (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from rq import Retry
from sqlalchemy import CursorResult, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vsync import crypto, queue
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import AlertEvent, AlertWebhook, AlertWebhookDelivery, Organization
from vsync.models.notifications import ALERT_DESCRIPTIONS, DELIVERED, DELIVERING, FAILED, QUEUED
from vsync.models.types import utcnow
from vsync.services import audit

log = logging.getLogger(__name__)

DELIVER_JOB = "vsync.jobs.notifications.deliver_alert_webhook"
JOB_TIMEOUT = 120
_PENDING = "vsync.alert_webhooks.pending"


class DeliveryError(RuntimeError):
    """An attempt that did not end in a 2xx answer; `status_code` is the answer's, when there was one."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


# --- the URL and its secret -----------------------------------------------------------------------


def webhook_of(org: Organization) -> AlertWebhook | None:
    return db.session.scalar(select(AlertWebhook).where(AlertWebhook.org_id == org.id))


def save_webhook(org: Organization, url: str | None, *, new_secret: bool = False) -> str | None:
    """Set the org's webhook URL (checked: HTTPS, a public address), or remove it with an empty one;
    audited with the URL's host only (a receiver's path may hold a token of its own), never the
    secret. Returns the new signing secret when one was made (the first URL, or `new_secret`), to be
    shown once; else None."""
    url = (url or "").strip()
    hook = webhook_of(org)
    if not url:
        if hook is not None:
            db.session.delete(hook)
            db.session.flush()
            audit.record("alerts.webhook_removed", org_id=org.id, summary="outbound alert webhook removed")
        return None
    check_url(url)
    secret = None
    if hook is None:
        secret = secrets.token_urlsafe(32)
        hook = AlertWebhook(org_id=org.id, url=url, secret_encrypted=crypto.encrypt(secret))
        db.session.add(hook)
    else:
        hook.url = url
        if new_secret:
            secret = secrets.token_urlsafe(32)
            hook.secret_encrypted = crypto.encrypt(secret)
    db.session.flush()
    audit.record(
        "alerts.webhook_saved",
        org_id=org.id,
        target=hook,
        summary=f"outbound alert webhook to {urlsplit(url).hostname}{', new signing secret' if secret else ''}",
    )
    return secret


def check_url(url: str) -> tuple[str, str]:
    """The URL's host and the public address it resolves to, or `ValidationError` (field `url`)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValidationError("The webhook URL must start with https:// and name a host.", field="url")
    if parts.username or parts.password:
        raise ValidationError("The webhook URL may not carry a user name or password.", field="url")
    try:
        port = parts.port or 443
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        raise ValidationError(
            f"The host {parts.hostname!r} of the webhook URL does not resolve.", field="url"
        ) from None
    addresses = [str(info[4][0]) for info in infos]
    if not current_app.config["VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE"]:
        for address in addresses:
            if not _public(address):
                raise ValidationError(
                    f"The webhook URL's host {parts.hostname!r} resolves to {address}, a private, loopback, "
                    "link-local or reserved address.",
                    field="url",
                )
    return parts.hostname, addresses[0]


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: the HMAC-SHA256 under `secret` of `<timestamp>.<body>`."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


# --- deliveries -----------------------------------------------------------------------------------


def queue_delivery(org: Organization, event_id: int, state: str) -> AlertWebhookDelivery | None:
    """Decide the POST of a firing's `state` to the org's webhook (None: no webhook, or decided
    already); it is enqueued when the caller commits."""
    hook = webhook_of(org)
    if hook is None:
        return None
    row = AlertWebhookDelivery(org_id=org.id, event_id=event_id, state=state, url=hook.url, status=QUEUED)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return None
    db.session.info.setdefault(_PENDING, []).append((org.id, row.id))
    return row


@event.listens_for(Session, "after_commit")
def _dispatch_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for org_id, delivery_id in session.info.pop(_PENDING, []):
        dispatch(org_id, delivery_id)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)


def dispatch(org_id: int, delivery_id: int) -> str | None:
    intervals = current_app.config["VSYNC_ALERT_WEBHOOK_RETRY_INTERVALS"]
    return queue.enqueue(
        DELIVER_JOB,
        org_id,
        delivery_id,
        job_id=f"vsync-alert-webhook-{delivery_id}",
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        job_timeout=JOB_TIMEOUT,
        on_failure="vsync.jobs.notifications.on_delivery_failure",
        record_attempt="vsync.jobs.notifications.record_delivery_attempt",
    )


def claim(delivery_id: int) -> AlertWebhookDelivery | None:
    """Take a queued delivery for an attempt (committed), or None when another worker has it or it is done."""
    taken = cast(
        CursorResult,
        db.session.execute(
            update(AlertWebhookDelivery)
            .where(AlertWebhookDelivery.id == delivery_id, AlertWebhookDelivery.status == QUEUED)
            .values(status=DELIVERING, attempts=AlertWebhookDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    db.session.commit()
    return db.session.get(AlertWebhookDelivery, delivery_id) if taken == 1 else None


def payload(org: Organization, alert: AlertEvent, state: str) -> dict:
    return {
        "id": alert.id,
        "state": state,
        "org": org.slug,
        "kind": alert.kind,
        "description": ALERT_DESCRIPTIONS[alert.kind],
        "window_minutes": alert.rule.window_minutes if alert.rule else None,
        "threshold": alert.rule.threshold if alert.rule else None,
        "fired_at": alert.fired_at.isoformat(),
        "fired_value": alert.fired_value,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "resolved_value": alert.resolved_value,
    }


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address that was checked while TLS verifies the certificate for the host name."""

    def __init__(self, hostname: str):
        self.hostname = hostname
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs["server_hostname"] = self.hostname
        pool_kwargs["assert_hostname"] = self.hostname
        return host_params, pool_kwargs


def post(row: AlertWebhookDelivery) -> None:
    """One attempt of a claimed delivery: checked, signed, POSTed with the timeout; marks it delivered
    (committed), or raises `DeliveryError` (the row stays `delivering` for `record_attempt`)."""
    org = db.session.get_one(Organization, row.org_id)
    hook = webhook_of(org)
    if hook is None:
        raise DeliveryError("The org has no alert webhook any more.")
    try:
        hostname, address = check_url(row.url)
    except ValidationError as exc:
        raise DeliveryError(exc.message) from None
    body = json.dumps(payload(org, row.event, row.state), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    parts = urlsplit(row.url)
    host = f"[{address}]" if ":" in address else address
    pinned = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or 443}"))
    headers = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        "User-Agent": "vsync-alerts",
        "X-Vsync-Timestamp": timestamp,
        "X-Vsync-Signature": sign(crypto.decrypt(hook.secret_encrypted), timestamp, body),
    }
    config = current_app.config
    with requests.Session() as session:
        session.mount("https://", _PinnedAdapter(hostname))
        try:
            answer = session.post(
                pinned,
                data=body,
                headers=headers,
                timeout=config["VSYNC_ALERT_WEBHOOK_TIMEOUT"],
                verify=config["VSYNC_ALERT_WEBHOOK_CA_BUNDLE"] or True,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    row.response_code = answer.status_code
    if not 200 <= answer.status_code < 300:
        raise DeliveryError(f"The webhook answered {answer.status_code}.", answer.status_code)
    row.status, row.delivered_at, row.last_error = DELIVERED, utcnow(), None
    db.session.commit()
    log.info("alert webhook delivery %s (%s %s) delivered", row.id, row.event_id, row.state)


def record_attempt(delivery_id: int, exc: BaseException, will_retry: bool) -> None:
    """A failed attempt: back to `queued` while retries remain, else `failed`; error and code kept."""
    db.session.rollback()
    row = db.session.get(AlertWebhookDelivery, delivery_id)
    if row is None or row.status != DELIVERING:
        return
    row.status = QUEUED if will_retry else FAILED
    row.last_error = str(exc)[:2000]
    row.response_code = getattr(exc, "status_code", None)
    log.warning(
        "alert webhook delivery %s attempt %s failed%s: %s",
        delivery_id,
        row.attempts,
        ", will retry" if will_retry else "",
        row.last_error,
    )
    db.session.commit()
