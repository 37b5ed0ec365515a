"""Provider identity: which MightyCall account an integration connects to.

MightyCall's API key is account-level (every user of an account signs in with it, and it rides on
every webhook), and the API returns no account id, so an account is known by a keyed fingerprint
of its host and its API key: HMAC-SHA256 under a key derived from `SECRET_KEY`, so the fingerprint
tells nothing about the key to someone who reads the database, and the key itself is never stored
outside the encrypted credentials. Two integrations with the same host and API key (two client
orgs of a platform that resells numbers from one account) share one `ProviderAccount`, and so one
row per call, recording, SMS and agent.

An integration learns its account whenever its host or credentials are set and whenever it is tested
(`learn_account`). When they change, the integration follows the new identity; an account that no
other integration uses keeps its rows and takes the new identity (the same account moved host, like
a simulator restarted on another port, or its API key was rotated), so its history is not read and
stored a second time. Changing `SECRET_KEY` changes every fingerprint: the next test or change of
each integration takes its account along in the same way.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, select

from vsync import crypto
from vsync.extensions import db
from vsync.models import Integration, ProviderAccount
from vsync.tenancy import reviewed_sql


def account_identity(base_url: str, api_key: str, secret_key: str | bytes | None = None) -> str:
    """The account's identity: `mightycall:` and the keyed fingerprint of the host and the API key."""
    secret = secret_key if secret_key is not None else current_app.config["SECRET_KEY"]
    secret = secret.encode() if isinstance(secret, str) else secret
    key = hashlib.sha256(b"vsync provider account identity\0" + secret).digest()
    host = urlsplit(base_url).netloc.lower()
    return "mightycall:" + hmac.new(key, f"{host}\n{api_key}".encode(), hashlib.sha256).hexdigest()


def _account(identity: str) -> ProviderAccount | None:
    return db.session.scalar(select(ProviderAccount).where(ProviderAccount.identity == identity))


def learn_account(integration: Integration) -> ProviderAccount:
    """Point `integration` at the account its host and API key identify (see the module docstring)."""
    identity = account_identity(integration.base_url, crypto.decrypt_json(integration.credentials_encrypted)["api_key"])
    account = _account(identity)
    if account is None and integration.account_id is not None:
        current = db.session.get(ProviderAccount, integration.account_id)
        if current is not None and not _shared(integration):
            current.identity = identity
            account = current
    if account is None:
        account = ProviderAccount(identity=identity)
        db.session.add(account)
    db.session.flush()
    integration.account_id = account.id
    return account


def _shared(integration: Integration) -> bool:
    """Whether another integration, of any organisation, is on the integration's account. Integrations
    are org-owned and an org's scope sees only its own, so this reviewed count reads the table itself."""
    integrations = Integration.__table__
    return (
        db.session.connection()
        .execute(
            reviewed_sql(
                select(func.count())
                .select_from(integrations)
                .where(integrations.c.account_id == integration.account_id, integrations.c.id != integration.id)
            )
        )
        .scalar_one()
        > 0
    )
