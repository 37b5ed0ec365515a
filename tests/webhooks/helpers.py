"""Helpers of the webhooks tests, imported by their modules and fixtures."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from tests.factories import T0
from vsync.extensions import db
from vsync.mightycall.simulator import WebhookEmitter
from vsync.models import Call, CallEvent, WebhookEvent
from vsync.services import numbers, orgs
from vsync.services.integrations import create_integration
from vsync.tenancy import platform_bypass

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


FAST = {"VSYNC_WEBHOOK_RETRY_INTERVALS": [0, 0]}


@dataclass(frozen=True)
class Tenant:
    slug: str
    org_id: int
    integration_id: int
    account_id: int
    token: str
    api_key: str
    number: str

    @property
    def url(self) -> str:
        return f"/webhooks/mightycall/{self.token}"

    def emitter(self, **options) -> WebhookEmitter:
        return WebhookEmitter(f"http://127.0.0.1:9{self.url}", self.api_key, **options)

    def events(self, lifecycle: str, *, seed: int = 1, started_at: datetime = NOW, **options) -> list[dict]:
        options.setdefault("business_number", self.number)
        return self.emitter().events(lifecycle, started_at=started_at, rng=random.Random(seed), **options)


def make_tenant(app, slug: str, number: str) -> Tenant:
    with app.app_context(), platform_bypass("test setup"):
        org = orgs.create_org(slug.title(), slug, "UTC")
        api_key = f"{slug}-api-key-x81"
        integration, token = create_integration(
            org, api_key=api_key, user_key="user-key", base_url="http://127.0.0.1:9/v4"
        )
        phone = numbers.add_number(number)
        numbers.assign_number(org, phone, at=T0.replace(year=2025))
        db.session.commit()
        return Tenant(slug, org.id, integration.id, integration.account_id, token, api_key, number)


def post(
    client,
    tenant_or_url,
    payload,
    *,
    headers: dict | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
):
    url = tenant_or_url if isinstance(tenant_or_url, str) else tenant_or_url.url
    data = raw if raw is not None else json.dumps(payload).encode()
    return client.post(url, data=data, headers={"Content-Type": content_type, **(headers or {})})


def stored_events(app, integration_id: int | None = None) -> list[WebhookEvent]:
    with app.app_context(), platform_bypass("test"):
        query = select(WebhookEvent).order_by(WebhookEvent.id)
        if integration_id is not None:
            query = query.where(WebhookEvent.integration_id == integration_id)
        rows = db.session.scalars(query).all()
        db.session.expunge_all()
        return rows


CALL_FIELDS = (
    "account_id",
    "external_id",
    "phone_number_id",
    "direction",
    "status",
    "from_number",
    "to_number",
    "started_at",
    "answered_at",
    "wait_ended_at",
    "ring_ms",
    "ended_at",
    "duration_ms",
    "agent_extension",
    "events_at",
    "raw",
)


def calls_state(app) -> dict:
    """Every call and call event, as comparable values (no surrogate ids)."""
    with app.app_context(), platform_bypass("test"):
        calls = {
            (c.account_id, c.external_id): tuple(getattr(c, f) for f in CALL_FIELDS)
            for c in db.session.scalars(select(Call))
        }
        events = sorted(
            (e.account_id, e.guid, e.call_external_id, e.kind, e.extension, e.occurred_at, e.phone_number_id)
            for e in db.session.scalars(select(CallEvent))
        )
        return {"calls": calls, "events": events}


def one_call(app, external_id: str) -> Call:
    with app.app_context(), platform_bypass("test"):
        found = db.session.scalars(select(Call).where(Call.external_id == external_id)).all()
        assert len(found) == 1, f"{len(found)} calls stored for {external_id}"
        db.session.expunge_all()
        return found[0]
