"""Webhook fixtures: two orgs, each with an integration, a webhook token and a number of its own.

`inline_app` processes events in the request (no Redis), as the embedded default does; tests of
the queue use the session `app`, whose jobs go to the real Redis."""

from __future__ import annotations

import pytest

from tests.helpers import app_config
from tests.webhooks.helpers import FAST, Tenant, make_tenant
from vsync import create_app


@pytest.fixture(scope="session")
def inline_app(app):
    return create_app(app_config(REDIS_URL=None, **FAST))


@pytest.fixture
def acme(inline_app) -> Tenant:
    return make_tenant(inline_app, "acme", "+12127363100")


@pytest.fixture
def globex(inline_app) -> Tenant:
    return make_tenant(inline_app, "globex", "+13125550100")


@pytest.fixture
def hook(inline_app):
    return inline_app.test_client()
