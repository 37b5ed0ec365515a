"""Helpers the tests share: the app configuration the suite runs with, and signing in through the form.

`make test` creates a fresh database and exports TEST_DATABASE_URL / TEST_REDIS_URL; run alone,
pytest uses the same local defaults.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.fernet import Fernet
from pypdf import PdfReader
from sqlalchemy.engine import make_url

# `make test` runs the suite in parallel processes (pytest-xdist); each worker `gwN` has its own
# database (the run's name + `_gwN`, made fresh when the worker starts) and its own Redis database
# (the run's number minus N), so no worker's TRUNCATE or FLUSHDB touches another's state.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_INDEX = int(WORKER.removeprefix("gw")) if WORKER else 0


def _own(database_url: str, redis_url: str) -> tuple[str, str]:
    if not WORKER:
        return database_url, redis_url
    database = make_url(database_url)
    redis_base, _, redis_db = redis_url.rpartition("/")
    return (
        database.set(database=f"{database.database}_{WORKER}").render_as_string(hide_password=False),
        f"{redis_base}/{int(redis_db or 0) - _WORKER_INDEX}",
    )


DATABASE_URL, REDIS_URL = _own(
    os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/vsync_test"),
    os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
)
ENCRYPTION_KEY = Fernet.generate_key().decode()
# The embedded default's outbox of `.eml` files, for apps of the suite that send email without SMTP.
OUTBOX = tempfile.mkdtemp(prefix="vsync-test-outbox-")


def app_config(**extra) -> dict:
    return {
        "VSYNC_ENV": "test",
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key",
        "VSYNC_ENCRYPTION_KEYS": [ENCRYPTION_KEY],
        "VSYNC_PASSWORD_HASH": "pbkdf2:sha256:1",  # new users cost microseconds, not 0.1 s of scrypt
        # Walks of every route make hundreds of requests a minute; the limits have tests of their own.
        "VSYNC_RATE_LIMIT_READ": "100000 per minute",
        "VSYNC_RATE_LIMIT_WRITE": "100000 per minute",
        "MAIL_FILE_PATH": OUTBOX,
        **extra,
    }


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def body_text(response) -> str:
    """A response's body as text; a PDF's as the text it shows."""
    if response.mimetype == "application/pdf":
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.get_data())).pages)
    return response.get_data(as_text=True)


def csrf_token(client, path: str = "/login") -> str:
    match = _CSRF.search(client.get(path, follow_redirects=True).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, email: str, password: str = "correct horse battery"):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})


@contextmanager
def kept_log_records() -> Iterator[list[logging.LogRecord]]:
    """Every record the root logger handles inside the block. An app made inside it puts its log
    context (`vsync.http.LogContext`) on this handler too, as on every root handler it finds."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)
