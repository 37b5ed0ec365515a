"""API key generation and verification.

A key reads `vsk_<public id>_<secret>`: the public id (64 bits) finds the row, the secret (256 bits)
proves possession. Only SHA-256 of the whole key is stored: a random 256-bit secret needs no slow
hash, and SHA-256 lets every request verify a key in microseconds. The comparison is constant-time.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from vsync.auth.principals import ApiKeyPrincipal
from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.models import ApiKey
from vsync.models.keys import SCOPES
from vsync.models.types import utcnow
from vsync.services import audit
from vsync.tenancy import platform_bypass
from vsync.timeutil import isoformat_z

KEY_RE = re.compile(r"^vsk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")
LAST_USED_GRANULARITY = timedelta(minutes=1)
_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _scopes(scopes) -> str:
    scopes = [scopes] if isinstance(scopes, str) else list(scopes or ["read"])
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValidationError(f"scope must be one of {', '.join(SCOPES)}.", field="scope")
    if "write" in scopes and "read" not in scopes:
        scopes.append("read")  # a key that may write may also read what it wrote
    return ",".join(s for s in SCOPES if s in scopes)


def create_api_key(*, org_id: int | None, name: str, scopes="read", expires_at: datetime | None = None,
                   created_by_user_id: int | None = None) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is shown once and never stored. `org_id=None`: platform key."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("An API key needs a name.", field="name")
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationError("The expiry must be in the future.", field="expires_at")
    public_id = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(12))
    plaintext = f"vsk_{public_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(org_id=org_id, public_id=public_id, secret_hash=hash_secret(plaintext), name=name,
                 scopes=_scopes(scopes), expires_at=expires_at, created_by_user_id=created_by_user_id)
    db.session.add(key)
    db.session.flush()
    audit.record("api_key.created", org_id=org_id, target=key,
                 summary=f"{key.prefix} '{name}' scopes={key.scopes}"
                         + (f" expires {isoformat_z(expires_at)}" if expires_at else ""))
    return key, plaintext


def revoke_api_key(key_id: int) -> ApiKey:
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.flush()
        audit.record("api_key.revoked", org_id=key.org_id, target=key, summary=f"{key.prefix} '{key.name}'")
    return key


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
        if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(token)) or not key.usable_at(now):
            return None
        principal = ApiKeyPrincipal(key_id=key.id, public_id=key.public_id, name=key.name,
                                    org_id=key.org_id, scopes=key.scope_list)
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_GRANULARITY:
            db.session.execute(update(ApiKey.__table__).where(ApiKey.__table__.c.id == key.id)
                               .values(last_used_at=now))
            db.session.commit()
    return principal
