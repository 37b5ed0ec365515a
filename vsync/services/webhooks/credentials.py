"""An integration's webhook credentials: the URL token and the signing secrets that
`vsync.services.webhooks.store` authenticates deliveries with. Used by the console, the CLI and the
integration service.

The token is random, shown once and stored as SHA-256; secrets are stored encrypted (`vsync.crypto`),
at most `MAX_SIGNING_SECRETS` at a time so a relay can switch over. Commit policy: each function
changes the integration in the caller's session and flushes; the caller commits.
"""

from __future__ import annotations

import secrets

from vsync import crypto
from vsync.extensions import db
from vsync.models import Integration
from vsync.services import audit

MAX_SIGNING_SECRETS = 2


def new_token() -> tuple[str, str]:
    """A webhook token and its hash; only the hash is stored."""
    token = secrets.token_urlsafe(32)
    return token, crypto.secret_digest(token)


def _secrets_of(integration: Integration) -> list[str]:
    if not integration.webhook_signing_secrets_encrypted:
        return []
    return list(crypto.decrypt_json(integration.webhook_signing_secrets_encrypted)["secrets"])


def rotate_webhook_token(integration: Integration) -> str:
    """A new webhook token for `integration`; the old one is refused from the next request on.
    Returns the token, which is shown once and never stored."""
    token, token_hash = new_token()
    integration.webhook_token_hash = token_hash
    db.session.flush()
    audit.record(
        "integration.webhook_token_rotated",
        org_id=integration.org_id,
        target=integration,
        summary="new webhook token; the previous one no longer authenticates",
    )
    return token


def _save_secrets(integration: Integration, active: list[str]) -> None:
    integration.webhook_signing_secrets_encrypted = crypto.encrypt_json({"secrets": active}) if active else None
    db.session.flush()


def add_signing_secret(integration: Integration) -> str:
    """A new signing secret, active at once beside the previous one (so a relay can switch over);
    any older one is dropped. From now on unsigned deliveries are refused. Shown once."""
    secret = secrets.token_urlsafe(32)
    _save_secrets(integration, [secret, *_secrets_of(integration)][:MAX_SIGNING_SECRETS])
    audit.record(
        "integration.webhook_secret_added",
        org_id=integration.org_id,
        target=integration,
        summary="new webhook signing secret; signatures are required",
    )
    return secret


def retire_previous_signing_secret(integration: Integration) -> int:
    """Keep only the newest signing secret, once the relay signs with it. Returns how many were dropped."""
    active = _secrets_of(integration)
    _save_secrets(integration, active[:1])
    audit.record(
        "integration.webhook_secret_retired",
        org_id=integration.org_id,
        target=integration,
        summary=f"{max(len(active) - 1, 0)} previous signing secret(s) retired",
    )
    return max(len(active) - 1, 0)


def stop_requiring_signatures(integration: Integration) -> None:
    """Drop every signing secret: deliveries are authenticated by token and ApiKey only again."""
    _save_secrets(integration, [])
    audit.record(
        "integration.webhook_secrets_removed",
        org_id=integration.org_id,
        target=integration,
        summary="webhook signatures no longer required",
    )
