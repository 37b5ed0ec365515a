"""The receiver: handshake, authentication, store first, duplicates, bad input."""

from __future__ import annotations

import json
import time

import pytest

from tests.webhooks.helpers import one_call, post, stored_events
from vsync.extensions import db
from vsync.models import Integration
from vsync.redaction import API_KEY_MATCHED, API_KEY_NOT_MATCHED
from vsync.services import webhooks as service
from vsync.tenancy import tenant


def test_echo_handshake_answers_the_same_value_and_stores_nothing(hook, acme, inline_app):
    response = hook.post(acme.url, headers={"Echo": "a1b2c3"})
    assert response.status_code == 200 and response.headers["Echo"] == "a1b2c3"
    assert stored_events(inline_app) == []


def test_an_event_is_stored_acknowledged_and_turned_into_a_call(hook, acme, inline_app):
    event = acme.events("answered")[0]
    response = post(hook, acme, event)
    assert response.status_code == 200 and response.get_json() == {"received": 1, "duplicates": 0}
    [row] = stored_events(inline_app)
    assert row.status == "processed" and row.guid == event["Guid"] and row.attempts == 1
    assert json.loads(row.body) == event | {"ApiKey": API_KEY_MATCHED}
    assert row.headers["Content-Type"] == "application/json"
    assert one_call(inline_app, event["Body"]["Id"]).status == "other"


def test_a_repeated_guid_is_acknowledged_as_a_duplicate_and_not_processed_again(hook, acme, inline_app):
    events = acme.events("answered")
    post(hook, acme, events)
    response = post(hook, acme, [events[1], events[2]])
    assert response.status_code == 200 and response.get_json() == {"received": 0, "duplicates": 2}
    assert [r.attempts for r in stored_events(inline_app)] == [1, 1, 1, 1]


def test_unknown_token_is_a_plain_404_and_nothing_is_stored(hook, acme, inline_app):
    for url in ("/webhooks/mightycall/not-a-token", "/webhooks/mightycall/" + "x" * 43):
        response = post(hook, url, acme.events("answered")[0])
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
        assert "Echo" not in hook.post(url, headers={"Echo": "v"}).headers
    assert stored_events(inline_app) == []


def test_wrong_api_key_is_refused_kept_as_rejected_and_not_processed(hook, acme, globex, inline_app):
    event = acme.events("answered")[0] | {"ApiKey": globex.api_key}
    response = post(hook, acme, event)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "bad_api_key"
    [row] = stored_events(inline_app)
    assert row.status == "rejected" and row.guid is None and row.integration_id == acme.integration_id
    assert "401 bad_api_key" in row.error and json.loads(row.body) == event | {"ApiKey": API_KEY_NOT_MATCHED}


def test_a_rotated_out_token_is_refused_at_once(hook, acme, inline_app):
    with inline_app.app_context(), tenant(acme.org_id):
        new_token = service.rotate_webhook_token(db.session.get(Integration, acme.integration_id))
        db.session.commit()
    event = acme.events("answered")[0]
    assert post(hook, acme, event).status_code == 404
    assert post(hook, f"/webhooks/mightycall/{new_token}", event).status_code == 200
    assert [r.status for r in stored_events(inline_app)] == ["processed"]


def _require_signatures(app, tenant_) -> str:
    with app.app_context(), tenant(tenant_.org_id):
        secret = service.add_signing_secret(db.session.get(Integration, tenant_.integration_id))
        db.session.commit()
    return secret


def _signed(tenant_, secret: str, payload, *, at: int | None = None) -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    return body, {"X-Vsync-Signature": tenant_.emitter(signing_secret=secret).signature(body, at)}


def test_signed_delivery_is_accepted_under_the_current_and_the_previous_secret(hook, acme, inline_app):
    first = _require_signatures(inline_app, acme)
    second = _require_signatures(inline_app, acme)
    events = acme.events("answered")
    for secret, event in ((first, events[0]), (second, events[1])):
        body, headers = _signed(acme, secret, event)
        assert post(hook, acme, None, raw=body, headers=headers).status_code == 200
    assert [r.status for r in stored_events(inline_app)] == ["processed", "processed"]


@pytest.mark.parametrize("problem", ["missing", "bad", "stale", "future", "rotated_out", "garbled"])
def test_signature_failures_are_refused_with_401_and_nothing_processed(hook, acme, inline_app, problem):
    secret = _require_signatures(inline_app, acme)
    event = acme.events("answered")[0]
    body, headers = _signed(acme, secret, event)
    if problem == "missing":
        headers = {}
    elif problem == "bad":
        headers = _signed(acme, "not-the-secret", event)[1]
    elif problem == "stale":
        headers = _signed(acme, secret, event, at=int(time.time()) - 330)[1]
    elif problem == "future":
        headers = _signed(acme, secret, event, at=int(time.time()) + 330)[1]
    elif problem == "rotated_out":
        _require_signatures(inline_app, acme)
        _require_signatures(inline_app, acme)  # two newer secrets: the first is no longer active
    elif problem == "garbled":
        headers = {"X-Vsync-Signature": "sha256=abc"}
    response = post(hook, acme, None, raw=body, headers=headers)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "bad_signature"
    assert [r.status for r in stored_events(inline_app)] == ["rejected"]


def test_retiring_the_previous_secret_refuses_it_and_dropping_all_stops_requiring_signatures(hook, acme, inline_app):
    old = _require_signatures(inline_app, acme)
    _require_signatures(inline_app, acme)
    with inline_app.app_context(), tenant(acme.org_id):
        assert service.retire_previous_signing_secret(db.session.get(Integration, acme.integration_id)) == 1
        db.session.commit()
    events = acme.events("answered")
    body, headers = _signed(acme, old, events[0])
    assert post(hook, acme, None, raw=body, headers=headers).status_code == 401
    with inline_app.app_context(), tenant(acme.org_id):
        service.stop_requiring_signatures(db.session.get(Integration, acme.integration_id))
        db.session.commit()
    assert post(hook, acme, events[0]).status_code == 200


def test_signing_secrets_are_stored_encrypted(acme, inline_app):
    secret = _require_signatures(inline_app, acme)
    with inline_app.app_context(), tenant(acme.org_id):
        stored = db.session.get(Integration, acme.integration_id).webhook_signing_secrets_encrypted
    assert secret not in stored and stored.startswith("gAAAA")


def test_every_refusal_of_the_receiver_carries_the_request_id(hook, acme, inline_app):
    event = acme.events("answered")[0]
    refusals = {
        ("malformed_json", 400): post(hook, acme, None, raw=b"{not json", headers={"X-Request-ID": "trace-400"}),
        ("bad_api_key", 401): post(hook, acme, event | {"ApiKey": "wrong"}, headers={"X-Request-ID": "trace-401"}),
        ("payload_too_large", 413): post(
            hook, acme, None, raw=b"[" + b" " * 300_000 + b"]", headers={"X-Request-ID": "trace-413"}
        ),
        ("unsupported_media_type", 415): post(
            hook, acme, event, content_type="text/plain", headers={"X-Request-ID": "trace-415"}
        ),
        ("not_found", 404): post(
            hook, "/webhooks/mightycall/no-such-token", event, headers={"X-Request-ID": "trace-404"}
        ),
    }
    for (code, status), response in refusals.items():
        assert response.status_code == status, code
        error = response.get_json()["error"]
        assert (error["code"], error["request_id"]) == (code, f"trace-{status}") and error["message"]
