"""A billing lock: every org route of the API and every org console page answers every principal of
the suspended org "suspended" (403, `org_suspended`), while platform staff still reach it and the
org's other members' other orgs are untouched; syncs and webhooks keep storing the org's data, and
lifting the lock shows it all."""

from __future__ import annotations

import random
import re

import pytest
from sqlalchemy import func, select

from tests.jobs.helpers import API_KEY, W0, connect, serve, sync
from tests.test_org_resolver import REACH
from tests.webhooks.helpers import post
from tests.world import api_as
from vsync.extensions import db
from vsync.mightycall.simulator import WebhookEmitter
from vsync.models import Call, Integration, NumberAssignment, PhoneNumber, WebhookEvent
from vsync.models.types import utcnow
from vsync.services.billing import locks
from vsync.services.webhooks import rotate_webhook_token
from vsync.tenancy import platform_bypass

PRINCIPALS_OF_A = [p for p, (role_a, _) in REACH.items() if role_a is not None and p not in ("root", "platform")]


def _org_urls(app, slug: str) -> list[str]:
    """Every GET route of one org, API and console, its other arguments filled with 1 (the lock
    answers before any object is looked up)."""
    rules = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and rule.rule.startswith(("/api/v1/orgs/<org>", "/admin/orgs/<org>"))
    ]
    return sorted({re.sub(r"<(?:\w+:)?(\w+)>", lambda m: slug if m[1] == "org" else "1", rule) for rule in rules})


def _suspend(app, org_id: int) -> None:
    with app.app_context(), platform_bypass("test"):
        locks.suspend_org(org_id, "invoice INV-2026-000001 unpaid", utcnow())
        db.session.commit()


def _lift(app, org_id: int) -> None:
    with app.app_context(), platform_bypass("test"):
        locks.lift_lock(org_id, utcnow())
        db.session.commit()


@pytest.mark.parametrize("principal", PRINCIPALS_OF_A)
def test_every_org_route_and_page_answers_every_principal_of_a_suspended_org_suspended(app, world, principal):
    _suspend(app, world.a)
    client = api_as(app.test_client(), principal, world)
    urls = [url for url in _org_urls(app, "org-a") if url.startswith("/api/") or principal not in world.keys]
    assert any(u.startswith("/api/") for u in urls) and (
        principal in world.keys or any(u.startswith("/admin/") for u in urls)
    )
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)
        if url.startswith("/api/"):
            assert response.get_json()["error"]["code"] == "org_suspended", url
        else:
            assert "is suspended" in response.get_data(as_text=True), url
    if REACH[principal][1] is not None:  # their other org is not suspended
        assert client.get("/api/v1/orgs/org-b/calls").status_code == 200


@pytest.mark.parametrize("principal", ["root", "platform"])
def test_platform_staff_still_reach_a_suspended_org(app, world, principal):
    _suspend(app, world.a)
    client = api_as(app.test_client(), principal, world)
    assert client.get("/api/v1/orgs/org-a/calls?from=2026-11-01&to=2026-11-03").status_code == 200


def test_lifting_the_lock_lets_the_org_in_again(app, world):
    _suspend(app, world.a)
    client = api_as(app.test_client(), "admin_a", world)
    assert client.get("/api/v1/orgs/org-a/usage").status_code == 403
    _lift(app, world.a)
    assert client.get("/api/v1/orgs/org-a/usage").status_code == 200


def test_syncs_and_webhooks_keep_storing_while_the_org_is_suspended(inline_app):
    with serve() as server:
        org_id, integration_id = connect(inline_app, "acme", server)
        _suspend(inline_app, org_id)
        run = sync(inline_app, org_id, integration_id)
        assert run.status == "succeeded", run.error
        with inline_app.app_context(), platform_bypass("test"):
            token = rotate_webhook_token(db.session.get(Integration, integration_id))
            number = db.session.scalar(
                select(PhoneNumber.e164)
                .join(NumberAssignment)
                .where(NumberAssignment.org_id == org_id)
                .order_by(PhoneNumber.id)
            )
            db.session.commit()
            synced = db.session.scalar(select(func.count()).select_from(Call))
        assert synced > 0
        url = f"/webhooks/mightycall/{token}"
        events = WebhookEmitter(f"http://127.0.0.1:9{url}", API_KEY).events(
            "answered", started_at=W0, rng=random.Random(3), business_number=number
        )
        hook = inline_app.test_client()
        assert post(hook, url, events).status_code == 200
        with inline_app.app_context(), platform_bypass("test"):
            assert {e.status for e in db.session.scalars(select(WebhookEvent))} == {"processed"}
            assert db.session.scalar(select(func.count()).select_from(Call)) == synced + 1
        _lift(inline_app, org_id)
