"""The receiver on the embedded default: SQLite, events processed inline, one call per call."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy import select

from vsync import create_app
from vsync.extensions import db
from vsync.mightycall.simulator import WebhookEmitter
from vsync.models import Call, WebhookEvent
from vsync.services import numbers, orgs
from vsync.services.integrations import create_integration
from vsync.services.live import floor_state
from vsync.tenancy import platform_bypass, tenant

STARTED = datetime(2026, 11, 2, 12, tzinfo=UTC)


def embedded_app(tmp_path, monkeypatch):
    """The embedded default on a SQLite file, with one org, its integration and number; and its token."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'vsync.db'}",
            "SECRET_KEY": "embedded",
            "VSYNC_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
        }
    )
    with app.app_context():
        upgrade()
        with platform_bypass("test setup"):
            org = orgs.create_org("Acme", "acme", "UTC")
            _, token = create_integration(org, api_key="key", user_key="user", base_url="http://127.0.0.1:9/v4")
            numbers.assign_number(org, numbers.add_number("+12127363100"), at=datetime(2025, 1, 1, tzinfo=UTC))
            app.config["TEST_ORG_ID"] = org.id
            db.session.commit()
    return app, token


def test_events_are_stored_processed_and_merged_on_sqlite(tmp_path, monkeypatch):
    app, token = embedded_app(tmp_path, monkeypatch)
    org_id, started = app.config["TEST_ORG_ID"], STARTED
    events = WebhookEmitter("http://unused", "key").events("answered", started_at=started, rng=random.Random(4))
    client = app.test_client()
    url = f"/webhooks/mightycall/{token}"
    assert client.post(url, json=events[::-1]).get_json() == {"received": 4, "duplicates": 0}
    assert client.post(url, json=events[1]).get_json() == {"received": 0, "duplicates": 1}
    with app.app_context():
        with platform_bypass("test"):
            assert set(db.session.scalars(select(WebhookEvent.status))) == {"processed"}
            [call] = db.session.scalars(select(Call)).all()
            assert call.status == "answered" and call.agent_extension == "101"
        with tenant(org_id):
            floor = floor_state(org_id, now=started + timedelta(seconds=200))
            assert [(a.extension, a.state) for a in floor.agents] == [("101", "available")]
        db.engine.dispose()


def test_concurrent_deliveries_on_sqlite_apply_each_event_once(tmp_path, monkeypatch):
    """Inline, each delivery drains its org's received events, so drains in concurrent requests meet."""
    app, token = embedded_app(tmp_path, monkeypatch)
    emitter = WebhookEmitter("http://unused", "key")
    calls = [
        emitter.events("answered", started_at=STARTED + timedelta(minutes=i), rng=random.Random(i)) for i in range(6)
    ]
    answers: list[int] = []

    def deliver(events):
        client = app.test_client()
        answers.extend(client.post(f"/webhooks/mightycall/{token}", json=event).status_code for event in events)

    senders = [threading.Thread(target=deliver, args=(events,)) for events in calls]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert answers == [200] * 24
    with app.app_context(), platform_bypass("test"):
        assert [(e.status, e.attempts) for e in db.session.scalars(select(WebhookEvent))] == [("processed", 1)] * 24
        assert len(db.session.scalars(select(Call)).all()) == 6
        db.engine.dispose()
