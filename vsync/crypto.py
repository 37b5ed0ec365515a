"""Encryption at rest for MightyCall credentials and tokens (MultiFernet), and the one digest of a secret.

`VSYNC_ENCRYPTION_KEYS` lists Fernet keys newest first: new ciphertexts use the first, any listed key
decrypts. To rotate, put a new key first, deploy, run `flask rotate-encryption-keys`, then drop the old key.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def secret_digest(secret: str) -> str:
    """The SHA-256 hex digest under which a secret is stored and looked up (API keys, session tokens,
    webhook tokens, set-password links and the account state they are bound to): never the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


class DecryptionError(RuntimeError):
    """No configured key opens this ciphertext (a key was dropped before rotation finished)."""


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise RuntimeError("VSYNC_ENCRYPTION_KEYS is empty.")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(current_app.config["VSYNC_ENCRYPTION_KEYS"]))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _current().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError("No configured encryption key opens this value; check VSYNC_ENCRYPTION_KEYS.") from None


def encrypt_json(value: dict) -> str:
    return encrypt(json.dumps(value, separators=(",", ":")))


def decrypt_json(ciphertext: str) -> dict:
    return json.loads(decrypt(ciphertext))


def reencrypt(ciphertext: str) -> str:
    """The same plaintext under the newest key."""
    try:
        return _current().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError("No configured encryption key opens this value; check VSYNC_ENCRYPTION_KEYS.") from None
