"""API keys: creating and revoking them (verification is authentication's, in `vsync.auth.keys`).

A key reads `vsk_<public id>_<secret>`: the public id (64 bits) finds the row, the secret (256 bits)
proves possession. Only SHA-256 of the whole key is stored: a random 256-bit secret needs no slow
hash, and SHA-256 lets every request verify a key in microseconds.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from vsync.crypto import secret_digest
from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.models import ApiKey
from vsync.models.keys import SCOPES
from vsync.models.types import utcnow
from vsync.services import audit
from vsync.timeutil import isoformat_z

KEY_RE = re.compile(r"^vsk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _scopes(scopes) -> str:
    scopes = [scopes] if isinstance(scopes, str) else list(scopes or ["read"])
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValidationError(f"scope must be one of {', '.join(SCOPES)}.", field="scope")
    if "write" in scopes and "read" not in scopes:
        scopes.append("read")  # a key that may write may also read what it wrote
    return ",".join(s for s in SCOPES if s in scopes)


def create_api_key(
    *,
    org_id: int | None,
    name: str,
    scopes="read",
    expires_at: datetime | None = None,
    created_by_user_id: int | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is shown once and never stored. `org_id=None`: platform key."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("An API key needs a name.", field="name")
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationError("The expiry must be in the future.", field="expires_at")
    public_id = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(12))
    plaintext = f"vsk_{public_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        org_id=org_id,
        public_id=public_id,
        secret_hash=secret_digest(plaintext),
        name=name,
        scopes=_scopes(scopes),
        expires_at=expires_at,
        created_by_user_id=created_by_user_id,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(
        "api_key.created",
        org_id=org_id,
        target=key,
        summary=f"{key.prefix} '{name}' scopes={key.scopes}"
        + (f" expires {isoformat_z(expires_at)}" if expires_at else ""),
    )
    return key, plaintext


def revoke_api_key(key_id: int) -> ApiKey:
    """Revoke the key; revoking a revoked key changes nothing and writes no second audit row."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.flush()
        audit.record("api_key.revoked", org_id=key.org_id, target=key, summary=f"{key.prefix} '{key.name}'")
    return key
