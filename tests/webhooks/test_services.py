"""Webhook services at their own level: token rotation, replay windows, scope checks, key rotation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from tests.helpers import ENCRYPTION_KEY, app_config
from tests.webhooks.helpers import post, stored_events
from vsync import create_app, crypto
from vsync.extensions import db
from vsync.models import AuditEvent, Integration, WebhookEvent
from vsync.models.types import utcnow
from vsync.services import webhooks as service
from vsync.services.integrations import rotate_encryption_keys
from vsync.services.webhooks import replay_events
from vsync.tenancy import TenancyError, platform_bypass, tenant


def authenticate(token: str):
    with service.receiving() as connection:
        return service.authenticate_token(connection, token)


def test_token_rotation_returns_a_new_token_once_and_is_audited(acme, inline_app):
    with inline_app.app_context(), tenant(acme.org_id):
        integration = db.session.get(Integration, acme.integration_id)
        token = service.rotate_webhook_token(integration)
        db.session.commit()
        assert integration.webhook_token_hash == crypto.secret_digest(token)
        assert token not in integration.webhook_token_hash
        actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "integration.webhook_token_rotated" in actions
    with inline_app.app_context():
        assert authenticate(acme.token) is None
        assert authenticate(token).integration_id == acme.integration_id


def test_a_disabled_integration_token_authenticates_nothing(acme, inline_app):
    with inline_app.app_context(), tenant(acme.org_id):
        db.session.get(Integration, acme.integration_id).status = "disabled"
        db.session.commit()
    with inline_app.app_context():
        assert authenticate(acme.token) is None


def test_the_endpoint_carries_no_secret_in_its_repr(acme, inline_app):
    with inline_app.app_context():
        endpoint = authenticate(acme.token)
    assert acme.api_key not in repr(endpoint) and endpoint.api_key == acme.api_key


def test_replay_since_takes_only_events_received_from_then_on(hook, acme, inline_app):
    post(hook, acme, acme.events("answered"))
    with inline_app.app_context(), tenant(acme.org_id):
        first_two = select(WebhookEvent.id).order_by(WebhookEvent.id).limit(2).scalar_subquery()
        db.session.execute(
            update(WebhookEvent).where(WebhookEvent.id.in_(first_two)).values(received_at=utcnow() - timedelta(days=2))
        )
        db.session.commit()
    before = [r.processed_at for r in stored_events(inline_app)]
    with inline_app.app_context(), tenant(acme.org_id):
        assert replay_events(acme.org_id, since=utcnow() - timedelta(days=1)) == 2
    after = [r.processed_at for r in stored_events(inline_app)]
    assert after[:2] == before[:2] and all(a > b for a, b in zip(after[2:], before[2:], strict=True))


def test_rejected_requests_are_never_replayed(hook, acme, inline_app):
    post(hook, acme, None, raw=b"{", content_type="application/json")
    with inline_app.app_context(), tenant(acme.org_id):
        assert replay_events(acme.org_id) == 0


def test_replay_refuses_another_orgs_scope(acme, globex, inline_app):
    with inline_app.app_context(), tenant(globex.org_id), pytest.raises(TenancyError):
        replay_events(acme.org_id)


def test_events_and_rejected_requests_are_stored_in_the_tokens_org_whatever_scope_the_caller_is_in(
    acme, globex, inline_app
):
    with inline_app.app_context(), tenant(globex.org_id), service.receiving() as connection:
        endpoint = service.authenticate_token(connection, acme.token)
        service.store_events(connection, endpoint, [("g", "IncomingCall", {})], {}, utcnow())
        service.store_rejected(connection, endpoint, b"{", {}, "400 malformed_json", utcnow())
    rows = stored_events(inline_app)
    assert [(r.org_id, r.integration_id, r.status) for r in rows] == [
        (acme.org_id, acme.integration_id, "received"),
        (acme.org_id, acme.integration_id, "rejected"),
    ]


def test_rotating_encryption_keys_re_encrypts_the_signing_secrets(acme, inline_app):
    with inline_app.app_context(), tenant(acme.org_id):
        secret = service.add_signing_secret(db.session.get(Integration, acme.integration_id))
        db.session.commit()
    rotated = create_app(
        app_config(REDIS_URL=None, VSYNC_ENCRYPTION_KEYS=[Fernet.generate_key().decode(), ENCRYPTION_KEY])
    )
    with rotated.app_context(), platform_bypass("test"):
        rotate_encryption_keys()
        db.session.commit()
    only_new = create_app(app_config(REDIS_URL=None, VSYNC_ENCRYPTION_KEYS=rotated.config["VSYNC_ENCRYPTION_KEYS"][:1]))
    with only_new.app_context(), platform_bypass("test"):
        stored = db.session.get(Integration, acme.integration_id).webhook_signing_secrets_encrypted
        assert crypto.decrypt_json(stored) == {"secrets": [secret]}
