"""Notification fixtures: a real SMTP server on loopback, and apps that send to it (inline, or through
the real Redis queue)."""

from __future__ import annotations

import pytest

from tests.helpers import app_config
from tests.notifications.smtp import SmtpServer
from vsync import create_app


@pytest.fixture(scope="session")
def smtp_server():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def inbox(smtp_server):
    smtp_server.inbox.clear()
    yield smtp_server.inbox
    smtp_server.inbox.clear()


def smtp_config(server: SmtpServer, **extra) -> dict:
    """The settings `VSYNC_SMTP_HOST=127.0.0.1 VSYNC_SMTP_SECURITY=none VSYNC_SMTP_PORT=…` give."""
    return app_config(
        MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=server.port,
        MAIL_USE_TLS=False,
        MAIL_USE_SSL=False,
        MAIL_TIMEOUT=2,
        VSYNC_MAIL_RETRY_INTERVALS=[0, 0],
        **extra,
    )


@pytest.fixture(scope="session")
def mail_app(app, smtp_server):
    """Jobs inline (no Redis), email to the loopback SMTP server."""
    return create_app(smtp_config(smtp_server, REDIS_URL=None))


@pytest.fixture(scope="session")
def queued_mail_app(app, smtp_server):
    """Jobs through the real Redis queue, email to the loopback SMTP server."""
    return create_app(smtp_config(smtp_server))
