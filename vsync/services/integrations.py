"""MightyCall integrations: an org's account, its encrypted credentials and shared access token."""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select, update

from vsync import crypto
from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.mightycall import (
    CONTACT_CENTER_BASE_URL,
    STANDARD_BASE_URL,
    MightyCallClient,
    MightyCallError,
    Token,
)
from vsync.models import Integration, Organization
from vsync.models.integrations import ACTIVE
from vsync.models.types import utcnow
from vsync.services import audit
from vsync.services.accounts import learn_account
from vsync.services.webhooks import new_token
from vsync.tenancy import reviewed_sql

log = logging.getLogger(__name__)

MIGHTYCALL_HOSTS = (STANDARD_BASE_URL, CONTACT_CENTER_BASE_URL)


def validate_base_url(base_url: str, *, mightycall_hosts_only: bool = False) -> str:
    """`base_url` without a trailing slash. With `mightycall_hosts_only` (an org admin choosing its
    account) only MightyCall's own hosts are accepted: vsync sends the credentials there and connects
    from inside the platform's network, so a tenant may not point it anywhere else."""
    base_url = (base_url or "").strip().rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("The base URL must be http(s), e.g. https://api.mightycall.com/v4.", field="base_url")
    if mightycall_hosts_only and base_url not in MIGHTYCALL_HOSTS:
        raise ValidationError(
            f"The base URL is one of MightyCall's: {' or '.join(MIGHTYCALL_HOSTS)}; "
            "a platform admin can set another (a relay or a simulator).",
            field="base_url",
        )
    return base_url


def _credential(value: str, field: str) -> str:
    """A MightyCall key: it travels in HTTP headers, so printable ASCII only, at most 512 characters."""
    value = (value or "").strip()
    if not value:
        raise ValidationError(f"{field} is required.", field=field)
    if len(value) > 512 or not all(" " < ch < "\x7f" for ch in value):
        raise ValidationError(
            f"{field} is MightyCall's key as shown in its settings: letters, digits and "
            "punctuation, no spaces, at most 512 characters.",
            field=field,
        )
    return value


def create_integration(
    org: Organization, *, api_key: str, user_key: str, base_url: str = STANDARD_BASE_URL, name: str = "MightyCall"
) -> tuple[Integration, str]:
    """Connect `org` to a MightyCall account. Returns the integration and its webhook token,
    which is shown once (only its hash is kept) and goes into the webhook URL given to MightyCall."""
    credentials = {"api_key": _credential(api_key, "api_key"), "user_key": _credential(user_key, "user_key")}
    webhook_token, webhook_token_hash = new_token()
    integration = Integration(
        org_id=org.id,
        name=(name or "MightyCall").strip(),
        base_url=validate_base_url(base_url),
        credentials_encrypted=crypto.encrypt_json(credentials),
        webhook_token_hash=webhook_token_hash,
        status=ACTIVE,
    )
    learn_account(integration)
    db.session.add(integration)
    db.session.flush()
    audit.record(
        "integration.created",
        org_id=org.id,
        target=integration,
        summary=f"{integration.name} at {integration.base_url}",
    )
    return integration, webhook_token


def update_integration(
    integration: Integration,
    *,
    api_key: str | None = None,
    user_key: str | None = None,
    base_url: str | None = None,
    name: str | None = None,
    mightycall_hosts_only: bool = False,
) -> Integration:
    """Change an integration's account: `None` leaves a value as it is. Every value is checked before
    any is applied. New credentials or a new host drop the cached access token (issued for the old
    ones). The audit row names what changed, never a credential."""
    wanted_url = None if base_url is None else validate_base_url(base_url, mightycall_hosts_only=mightycall_hosts_only)
    wanted_name = None if name is None else (name.strip() or None)
    if name is not None and (wanted_name is None or len(wanted_name) > 200):
        raise ValidationError("An integration needs a name of up to 200 characters.", field="name")
    given = {
        field: _credential(value, field)
        for field, value in (("api_key", api_key), ("user_key", user_key))
        if value is not None
    }
    changes = []
    if wanted_name is not None and wanted_name != integration.name:
        changes.append(f"name {integration.name} → {wanted_name}")
        integration.name = wanted_name
    if wanted_url is not None and wanted_url != integration.base_url:
        changes.append(f"base URL {integration.base_url} → {wanted_url}")
        integration.base_url = wanted_url
    if given:
        credentials = crypto.decrypt_json(integration.credentials_encrypted)
        replaced = [field for field, value in given.items() if credentials[field] != value]
        if replaced:
            integration.credentials_encrypted = crypto.encrypt_json({**credentials, **given})
            changes.append(f"{' and '.join(replaced)} replaced")
    if any(not change.startswith("name") for change in changes):
        integration.access_token_encrypted = integration.access_token_expires_at = None
        learn_account(integration)
    if changes:
        db.session.flush()
        audit.record("integration.updated", org_id=integration.org_id, target=integration, summary="; ".join(changes))
    return integration


def save_account(
    org: Organization,
    *,
    api_key: str | None = None,
    user_key: str | None = None,
    base_url: str | None = None,
    name: str | None = None,
    integration_id: int | None = None,
    mightycall_hosts_only: bool = False,
) -> tuple[Integration, str | None]:
    """Connect `org` to its MightyCall account, or change the connection: an edge's "save" of the
    org's integration. An org without one gets one (both keys required), and the webhook token comes
    back, shown once; otherwise the integration `integration_id` names (or the only one) is updated
    with what is given, and the token is None."""
    if (
        integration_id is None
        and db.session.scalar(select(Integration.id).where(Integration.org_id == org.id).limit(1)) is None
    ):
        validate_base_url(base_url or STANDARD_BASE_URL, mightycall_hosts_only=mightycall_hosts_only)
        return create_integration(
            org,
            api_key=api_key or "",
            user_key=user_key or "",
            base_url=base_url or STANDARD_BASE_URL,
            name=name or "MightyCall",
        )
    return update_integration(
        integration_for(org, integration_id),
        api_key=api_key,
        user_key=user_key,
        base_url=base_url,
        name=name,
        mightycall_hosts_only=mightycall_hosts_only,
    ), None


def integration_for(org: Organization, integration_id: int | None = None) -> Integration:
    """The org's integration `integration_id`, or its only one, for edges that name an org."""
    found = db.session.scalars(select(Integration).where(Integration.org_id == org.id).order_by(Integration.id)).all()
    ids = ", ".join(str(each.id) for each in found)
    if integration_id is not None:
        for each in found:
            if each.id == integration_id:
                return each
        raise NotFound(
            f"{org.slug} has no integration {integration_id}" + (f"; its integrations: {ids}." if found else "."),
            field="integration",
        )
    if not found:
        raise NotFound(f"{org.slug} has no MightyCall integration; add one first.", field="org")
    if len(found) > 1:
        raise ValidationError(f"{org.slug} has {len(found)} integrations (ids {ids}); name one.", field="integration")
    return found[0]


class DatabaseTokenStore:
    """The integration's access token, encrypted in its row, shared by every worker on every machine.

    Reads and writes go through short transactions of their own, so a token fetched mid-sync is
    visible to other workers at once and survives a sync that rolls back.
    """

    def __init__(self, integration_id: int):
        self.integration_id = integration_id

    def load(self) -> Token | None:
        table = Integration.__table__
        with db.engine.connect() as conn:
            row = conn.execute(
                reviewed_sql(
                    select(table.c.access_token_encrypted, table.c.access_token_expires_at).where(
                        table.c.id == self.integration_id
                    )
                )
            ).one_or_none()
        if row is None or row.access_token_encrypted is None:
            return None
        try:
            stored = crypto.decrypt_json(row.access_token_encrypted)
        except crypto.DecryptionError:
            log.warning(
                "integration %s: cached MightyCall token cannot be decrypted; fetching a new one", self.integration_id
            )
            return None
        return Token(
            access_token=stored["access_token"],
            refresh_token=stored.get("refresh_token"),
            expires_at=datetime.fromisoformat(stored["expires_at"]),
        )

    def save(self, token: Token) -> None:
        table = Integration.__table__
        ciphertext = crypto.encrypt_json(
            {
                "access_token": token.access_token,
                "refresh_token": token.refresh_token,
                "expires_at": token.expires_at.isoformat(),
            }
        )
        with db.engine.begin() as conn:
            conn.execute(
                reviewed_sql(
                    update(table)
                    .where(table.c.id == self.integration_id)
                    .values(access_token_encrypted=ciphertext, access_token_expires_at=token.expires_at)
                )
            )


def client_for(integration: Integration, **options) -> MightyCallClient:
    """A client for `integration`, sharing its token through the database, tuned by the config."""
    config = current_app.config
    base, cap = config["VSYNC_MIGHTYCALL_BACKOFF"]
    settings = {
        "timeout": tuple(config["VSYNC_MIGHTYCALL_TIMEOUT"]),
        "max_retries": config["VSYNC_MIGHTYCALL_MAX_RETRIES"],
        "backoff_base": base,
        "backoff_cap": cap,
        **options,
    }
    credentials = crypto.decrypt_json(integration.credentials_encrypted)
    return MightyCallClient(
        integration.base_url,
        credentials["api_key"],
        credentials["user_key"],
        token_store=DatabaseTokenStore(integration.id),
        **settings,
    )


def check_connection(integration: Integration) -> dict:
    """Sign in to MightyCall and read the account's numbers; the outcome is kept on the integration,
    and the integration learns its account again (`vsync.services.accounts`)."""
    learn_account(integration)
    client = client_for(integration, max_retries=1)
    try:
        result = client.test_connection()
    except MightyCallError as exc:
        integration.last_error = str(exc)
        audit.record("integration.tested", org_id=integration.org_id, target=integration, summary=f"failed: {exc}")
        return {"ok": False, "error": str(exc), "retryable": exc.retryable}
    finally:
        client.close()
    integration.last_error = None
    audit.record(
        "integration.tested",
        org_id=integration.org_id,
        target=integration,
        summary=f"ok, {result.get('numbers', 0)} number(s)",
    )
    return {"ok": True, **result, "checked_at": utcnow()}


def rotate_encryption_keys() -> int:
    """Re-encrypt every stored secret under the newest key; returns how many integrations changed."""
    count = 0
    for integration in db.session.scalars(select(Integration).order_by(Integration.id)):
        integration.credentials_encrypted = crypto.reencrypt(integration.credentials_encrypted)
        if integration.access_token_encrypted:
            integration.access_token_encrypted = crypto.reencrypt(integration.access_token_encrypted)
        if integration.webhook_signing_secrets_encrypted:
            integration.webhook_signing_secrets_encrypted = crypto.reencrypt(
                integration.webhook_signing_secrets_encrypted
            )
        count += 1
    db.session.flush()
    audit.record("encryption_keys.rotated", summary=f"{count} integration(s) re-encrypted under the newest key")
    return count
