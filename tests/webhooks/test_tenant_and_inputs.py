"""Tenant crossing and bad input: a clear 4xx, raw bodies kept where the token was valid, and the
receiver goes on serving."""

from __future__ import annotations

import json

import pytest

from tests.webhooks.helpers import calls_state, one_call, post, stored_events
from vsync.webhooks import MAX_BODY, MAX_EVENTS


def test_org_a_token_with_org_b_api_key_is_refused_and_touches_nothing(hook, acme, globex, inline_app):
    post(hook, globex, globex.events("answered"))
    before = calls_state(inline_app)
    event = globex.events("answered", seed=2)[0]  # B's ApiKey and B's number
    assert post(hook, acme, event).status_code == 401
    assert calls_state(inline_app) == before
    assert [r.status for r in stored_events(inline_app, acme.integration_id)] == ["rejected"]


def test_org_a_events_on_org_b_number_are_kept_unmatched_and_make_no_call(hook, acme, globex, inline_app):
    post(hook, globex, globex.events("answered"))
    before = calls_state(inline_app)
    events = acme.events("answered", business_number=globex.number)
    assert post(hook, acme, events).status_code == 200
    assert calls_state(inline_app) == before
    rows = stored_events(inline_app, acme.integration_id)
    assert {r.status for r in rows} == {"unmatched"} and globex.number in rows[0].error


def test_org_a_events_naming_org_b_call_id_make_org_a_own_call_and_leave_b_call_alone(hook, acme, globex, inline_app):
    b_events = globex.events("answered", extension="201")
    post(hook, globex, b_events)
    b_call = one_call(inline_app, b_events[0]["Body"]["Id"])
    a_events = acme.events("missed", seed=9)
    for event in a_events:
        event["Body"]["Id"] = b_call.external_id
    post(hook, acme, a_events)
    state = calls_state(inline_app)["calls"]
    assert state[(globex.account_id, b_call.external_id)][4] == "answered"
    assert state[(acme.account_id, b_call.external_id)][4] == "voicemail"


def test_a_number_assigned_later_is_processed_by_a_replay_of_unmatched_events(hook, acme, inline_app):
    from tests.factories import assign, make_number
    from vsync.services.webhooks import replay_events
    from vsync.tenancy import tenant

    with inline_app.app_context():
        make_number("+14155550100")
    events = acme.events("answered", business_number="+14155550100")
    post(hook, acme, events)
    assert {r.status for r in stored_events(inline_app)} == {"unmatched"}
    with inline_app.app_context():
        assign("acme", "+14155550100")
        with tenant(acme.org_id):
            assert replay_events(acme.org_id, failed_only=True) == 4
    assert {r.status for r in stored_events(inline_app)} == {"processed"}
    assert one_call(inline_app, events[0]["Body"]["Id"]).status == "answered"


def _huge_string_event(tenant_):
    event = tenant_.events("answered")[0]
    event["Guid"] = "g" * 100_000
    return event


def _missing_body_id(tenant_):
    event = tenant_.events("answered")[0]
    del event["Body"]["Id"]
    return event


def _wrong_type(tenant_):
    return tenant_.events("answered")[0] | {"Timestamp": 1700000000}


BAD = {
    "oversize": (lambda t: (b'{"x": "' + b"a" * MAX_BODY + b'"}', "application/json"), 413, "payload_too_large"),
    "wrong content type": (
        lambda t: (json.dumps(t.events("answered")[0]).encode(), "text/plain"),
        415,
        "unsupported_media_type",
    ),
    "form post": (
        lambda t: (b"EventType=IncomingCall", "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    ),
    "malformed json": (lambda t: (b'{"EventType": "IncomingCall",', "application/json"), 400, "malformed_json"),
    "not utf-8": (lambda t: (b'{"a": "\xff\xfe"}', "application/json"), 400, "malformed_json"),
    "deep nesting": (lambda t: (b"[" * 100_000 + b"]" * 100_000, "application/json"), 400, "malformed_json"),
    "empty list": (lambda t: (b"[]", "application/json"), 400, "no_events"),
    "ten thousand events": (lambda t: (json.dumps([{}] * 10_000).encode(), "application/json"), 413, "too_many_events"),
    "a string": (lambda t: (b'"hello"', "application/json"), 400, "invalid_event"),
    "missing field": (lambda t: (json.dumps(_missing_body_id(t)).encode(), "application/json"), 400, "invalid_event"),
    "wrong type": (lambda t: (json.dumps(_wrong_type(t)).encode(), "application/json"), 400, "invalid_event"),
    "huge string": (lambda t: (json.dumps(_huge_string_event(t)).encode(), "application/json"), 400, "invalid_event"),
    "deep nesting inside Body": (
        lambda t: (
            json.dumps(t.events("answered")[0] | {"Body": json.loads("[" * 500 + "]" * 500)}).encode(),
            "application/json",
        ),
        400,
        "invalid_event",
    ),
    "deep nesting in a field vsync does not read": (
        lambda t: (
            json.dumps(t.events("answered")[0] | {"Extra": json.loads("[" * 700 + "]" * 700)}).encode(),
            "application/json",
        ),
        400,
        "malformed_json",
    ),
    "missing api key": (
        lambda t: (json.dumps({"EventType": "IncomingCall"}).encode(), "application/json"),
        401,
        "bad_api_key",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gets_a_clear_4xx_is_kept_as_rejected_and_the_receiver_keeps_serving(hook, acme, inline_app, case):
    make, status, code = BAD[case]
    body, content_type = make(acme)
    response = post(hook, acme, None, raw=body, content_type=content_type)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    [row] = stored_events(inline_app)
    assert row.status == "rejected" and row.error.startswith(f"{status} {code}")
    assert 0 < len(row.body) <= MAX_BODY + 10
    assert post(hook, acme, acme.events("answered")[0]).status_code == 200


def test_a_list_with_one_bad_event_stores_none_of_its_events(hook, acme, inline_app):
    events = acme.events("answered")
    del events[2]["Guid"]
    response = post(hook, acme, events)
    assert response.status_code == 400 and response.get_json()["error"]["details"] == {"index": 2, "field": "Guid"}
    assert [r.status for r in stored_events(inline_app)] == ["rejected"]
    assert calls_state(inline_app)["calls"] == {}


def test_the_largest_accepted_list_is_stored_whole(hook, acme, inline_app):
    events = [e for seed in range(MAX_EVENTS // 4) for e in acme.events("answered", seed=seed)]
    response = post(hook, acme, events)
    assert response.status_code == 200 and response.get_json()["received"] == len(events)


def test_bad_input_with_an_unknown_token_stores_nothing(hook, acme, inline_app):
    response = post(hook, "/webhooks/mightycall/nope", None, raw=b"{", content_type="text/plain")
    assert response.status_code == 404 and stored_events(inline_app) == []
