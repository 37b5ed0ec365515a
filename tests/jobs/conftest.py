"""Sync fixtures: a simulator over real HTTP on loopback, and apps tuned for quick retries.

`FAST` keeps every retry and timeout short so the fault matrix runs in seconds; the code paths are
the production ones (only the numbers differ)."""

from __future__ import annotations

import pytest

from tests.helpers import app_config
from tests.jobs.helpers import FAST, serve
from vsync import create_app


@pytest.fixture(scope="session")
def inline_app(app):
    """Jobs run inline (no Redis), as in the embedded default."""
    return create_app(app_config(REDIS_URL=None, **FAST))


@pytest.fixture(scope="session")
def queued_app(app):
    """Jobs go through the real Redis queue."""
    return create_app(app_config(**FAST))


@pytest.fixture
def sim_server():
    with serve() as server:
        yield server
