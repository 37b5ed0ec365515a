"""The webhook commands at the shell: rotate the token and signing secrets, replay stored events."""

from __future__ import annotations

import json
import time

from sqlalchemy import select, update

from tests.webhooks.helpers import post, stored_events
from vsync.extensions import db
from vsync.models import AuditEvent, WebhookEvent
from vsync.services import webhooks as service
from vsync.tenancy import platform_bypass


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def test_rotate_webhook_token_prints_a_new_token_once_and_refuses_the_old_one_at_once(inline_app, acme, hook):
    result = run(inline_app, "rotate-webhook-token", "acme")
    assert result.exit_code == 0, result.output
    new_token = result.output.strip().splitlines()[-1]
    old, new = (
        post(hook, acme, acme.events("answered")[:1]),
        post(hook, f"/webhooks/mightycall/{new_token}", acme.events("answered")[:1]),
    )
    assert old.status_code == 404 and new.status_code == 200
    with inline_app.app_context(), platform_bypass("check"):
        assert db.session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "integration.webhook_token_rotated")
        ).all() == ["cli"]


def test_signing_secrets_are_added_retired_and_dropped_from_the_shell(inline_app, acme, hook):
    first = run(inline_app, "add-webhook-signing-secret", "acme").output.strip().splitlines()[-1]
    assert post(hook, acme, acme.events("answered")[:1]).status_code == 401  # unsigned: refused now
    run(inline_app, "add-webhook-signing-secret", "acme")
    assert "1 previous" in run(inline_app, "retire-webhook-signing-secret", "acme").output
    body = json.dumps(acme.events("answered")[:1]).encode()
    signed = {service.SIGNATURE_HEADER: service.sign(first, body, int(time.time()))}
    assert post(hook, acme, None, raw=body, headers=signed).status_code == 401  # the retired secret
    assert run(inline_app, "stop-webhook-signatures", "acme").exit_code == 0
    assert post(hook, acme, acme.events("answered")[:1]).status_code == 200


def test_replay_webhook_events_runs_in_the_orgs_scope_and_touches_only_its_events(inline_app, acme, globex, hook):
    for tenant in (acme, globex):
        assert post(hook, tenant, tenant.events("answered")).status_code == 200
    with inline_app.app_context(), platform_bypass("fail them"):
        db.session.execute(update(WebhookEvent).values(status="failed", error="boom"))
        db.session.commit()
    result = run(inline_app, "replay-webhook-events", "acme", "--failed")
    assert result.exit_code == 0, result.output
    assert {e.status for e in stored_events(inline_app, acme.integration_id)} == {"processed"}
    assert {e.status for e in stored_events(inline_app, globex.integration_id)} == {"failed"}
    missing = run(inline_app, "replay-webhook-events", "nope")
    assert missing.exit_code == 2 and "nope" in missing.output


def test_demo_floor_without_demo_integrations_says_what_to_do_in_one_line(inline_app):
    result = inline_app.test_cli_runner().invoke(args=["demo-floor", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "run `demo` first" in result.output


def test_demo_floor_targets_get_a_fresh_token_that_the_receiver_accepts(inline_app, hook):
    from vsync.services import demo, integrations, numbers, orgs

    with inline_app.app_context(), platform_bypass("demo setup"):
        org = orgs.create_org("Acme Dental", "acme", "America/New_York")
        integrations.create_integration(
            org,
            api_key=demo.SIMULATOR_API_KEY,
            user_key=demo.SIMULATOR_USER_KEY,
            base_url="http://127.0.0.1:1/v4",
            name=demo.DEMO_INTEGRATION_NAME,
        )
        numbers.assign_number(org, numbers.add_number("+12127363100"))
        (target,) = demo.demo_floor_targets("http://localhost")
        db.session.commit()
    assert target.org_slug == "acme" and target.numbers == ("+12127363100",)
    path = target.url.removeprefix("http://localhost")
    from vsync.mightycall.simulator import WebhookEmitter

    events = WebhookEmitter(target.url, target.api_key).events("answered", business_number=target.numbers[0])
    assert post(hook, path, events).status_code == 200
