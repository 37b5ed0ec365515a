"""API key verification: the key in a request's `Authorization` header, to a principal.

The key format and its hash are defined where keys are made (`vsync.services.keys`). The
comparison is constant-time.

`verify_api_key` commits its own short write (`last_used_at`): it runs while authenticating,
before any view owns the transaction, and is the documented exception to "the caller commits".
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from sqlalchemy import select, update

from vsync.auth.principals import ApiKeyPrincipal
from vsync.crypto import secret_digest
from vsync.extensions import db
from vsync.models import ApiKey
from vsync.models.types import utcnow
from vsync.services.keys import KEY_RE
from vsync.tenancy import platform_bypass

LAST_USED_GRANULARITY = timedelta(minutes=1)


def verify_api_key(token: str) -> ApiKeyPrincipal | None:
    """The principal of the usable key `token` names, or None. Runs before any tenant is known,
    hence the bypass; it returns a plain principal, not the row, so nothing leaks out of the bypass.

    `last_used_at` is written at most once a minute per key, so a busy key does not turn every
    read request into a write.
    """
    match = KEY_RE.match(token or "")
    if match is None:
        return None
    now = utcnow()
    with platform_bypass("authenticate API key"):
        key = db.session.scalar(select(ApiKey).where(ApiKey.public_id == match.group(1)))
        if key is None or not hmac.compare_digest(key.secret_hash, secret_digest(token)) or not key.usable_at(now):
            return None
        principal = ApiKeyPrincipal(
            key_id=key.id, public_id=key.public_id, name=key.name, org_id=key.org_id, scopes=key.scope_list
        )
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_GRANULARITY:
            db.session.execute(update(ApiKey.__table__).where(ApiKey.__table__.c.id == key.id).values(last_used_at=now))
            db.session.commit()
    return principal
