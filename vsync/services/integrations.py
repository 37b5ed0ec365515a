"""MightyCall integrations: an org's account, its encrypted credentials and cached token."""
from __future__ import annotations

from sqlalchemy import select

from vsync import crypto
from vsync.extensions import db
from vsync.models import Integration
from vsync.services import audit


def rotate_encryption_keys() -> int:
    """Re-encrypt every stored secret under the newest key; returns how many integrations changed."""
    count = 0
    for integration in db.session.scalars(select(Integration).order_by(Integration.id)):
        integration.credentials_encrypted = crypto.reencrypt(integration.credentials_encrypted)
        if integration.access_token_encrypted:
            integration.access_token_encrypted = crypto.reencrypt(integration.access_token_encrypted)
        count += 1
    db.session.flush()
    audit.record("encryption_keys.rotated", summary=f"{count} integration(s) re-encrypted under the newest key")
    return count
