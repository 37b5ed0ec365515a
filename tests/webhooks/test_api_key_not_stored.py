"""MightyCall's `ApiKey` never reaches the database: every stored delivery, accepted or refused, and
its kept headers hold only whether the key matched, and the stored events are processed and
replayed without it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.webhooks.helpers import calls_state, one_call, post, stored_events
from vsync.extensions import db
from vsync.models import CallEvent, Integration
from vsync.redaction import API_KEY_MATCHED, API_KEY_NOT_MATCHED
from vsync.services import webhooks as service
from vsync.services.webhooks import replay_events
from vsync.tenancy import platform_bypass, tenant
from vsync.webhooks import MAX_BODY, MAX_EVENTS


def _stored_text(app) -> str:
    """Everything stored of the deliveries and of the calls' events, as one text to search."""
    rows = [(r.body, json.dumps(r.headers)) for r in stored_events(app)]
    with app.app_context(), platform_bypass("test"):
        rows += [json.dumps(raw) for raw in db.session.scalars(select(CallEvent.raw))]
    return json.dumps(rows)


def _assert_no_key(app, *keys: str) -> None:
    stored = _stored_text(app)
    assert not [key for key in keys if key in stored]


def test_an_accepted_event_is_stored_with_whether_its_key_matched_and_becomes_a_call(hook, acme, inline_app):
    events = acme.events("answered")
    assert post(hook, acme, events[0]).status_code == 200  # one event alone
    assert post(hook, acme, events[1:]).status_code == 200  # a list
    rows = stored_events(inline_app)
    assert [json.loads(r.body) for r in rows] == [e | {"ApiKey": API_KEY_MATCHED} for e in events]
    assert {r.status for r in rows} == {"processed"}
    assert one_call(inline_app, events[0]["Body"]["Id"]).status == "answered"
    _assert_no_key(inline_app, acme.api_key)


def test_stored_events_replay_to_the_same_calls_without_the_key(hook, acme, inline_app):
    events = acme.events("answered") + acme.events("missed", seed=2)
    post(hook, acme, events)
    before = calls_state(inline_app)
    with inline_app.app_context(), platform_bypass("test: the events' effects are lost"):
        db.session.execute(CallEvent.__table__.delete())
        db.session.commit()
    with inline_app.app_context(), tenant(acme.org_id):
        assert replay_events(acme.org_id) == len(events)
    assert calls_state(inline_app) == before
    assert {r.status for r in stored_events(inline_app)} == {"processed"}
    _assert_no_key(inline_app, acme.api_key)


def _with_signatures(app, tenant_) -> str:
    with app.app_context(), tenant(tenant_.org_id):
        secret = service.add_signing_secret(db.session.get(Integration, tenant_.integration_id))
        db.session.commit()
    return secret


def _bodies(acme, globex) -> dict:
    """Refused requests, each carrying a real key: the integration's own (matching) or another
    account's (not matching, which makes it no less secret)."""
    event, other = acme.events("answered")[0], acme.events("answered")[0] | {"ApiKey": globex.api_key}
    mine, theirs = json.dumps(event), json.dumps(other)
    return {
        "another account's key": (theirs.encode(), "application/json", 401, [API_KEY_NOT_MATCHED]),
        "the second event's key is another account's": (
            json.dumps([event, other | {"Guid": "g2"}]).encode(),
            "application/json",
            401,
            [API_KEY_MATCHED, API_KEY_NOT_MATCHED],
        ),
        "malformed JSON": (mine[:-1].encode(), "application/json", 400, [API_KEY_MATCHED]),
        "malformed JSON, another account's key": (theirs[:-1].encode(), "application/json", 400, [API_KEY_NOT_MATCHED]),
        "a bad event": (json.dumps(event | {"Timestamp": "soon"}).encode(), "application/json", 400, [API_KEY_MATCHED]),
        "not JSON": (
            f"ApiKey={globex.api_key}&EventType=IncomingCall".encode(),
            "application/x-www-form-urlencoded",
            415,
            [API_KEY_NOT_MATCHED],
        ),
        "too many events": (
            json.dumps([other] * (MAX_EVENTS + 1)).encode(),
            "application/json",
            413,
            [API_KEY_NOT_MATCHED],
        ),
        "too large, cut inside the key": (_cut_inside(globex.api_key), "application/json", 413, [API_KEY_NOT_MATCHED]),
    }


def _cut_inside(key: str) -> bytes:
    """A body over the size limit whose first MAX_BODY bytes, the part kept, end inside `key`."""
    start = '{"Guid": "g", "ApiKey": "'
    return (" " * (MAX_BODY - len(start) - len(key) // 2) + start + key + '"}').encode()


@pytest.mark.parametrize(
    "case",
    [
        "another account's key",
        "the second event's key is another account's",
        "malformed JSON",
        "malformed JSON, another account's key",
        "a bad event",
        "not JSON",
        "too many events",
        "too large, cut inside the key",
    ],
)
def test_a_refused_request_is_kept_without_any_key_it_carried(hook, acme, globex, inline_app, case):
    body, content_type, status, markers = _bodies(acme, globex)[case]
    assert post(hook, acme, None, raw=body, content_type=content_type).status_code == status
    [row] = stored_events(inline_app)
    assert row.status == "rejected"
    for marker in markers:
        assert marker in row.body
    _assert_no_key(inline_app, acme.api_key[: len(acme.api_key) // 2], globex.api_key[: len(globex.api_key) // 2])


def test_a_request_with_the_right_key_and_a_bad_signature_is_kept_without_the_key(hook, acme, inline_app):
    _with_signatures(inline_app, acme)
    event = acme.events("answered")[0]
    assert post(hook, acme, event, headers={service.SIGNATURE_HEADER: "t=1,v1=00"}).status_code == 401
    [row] = stored_events(inline_app)
    assert json.loads(row.body) == event | {"ApiKey": API_KEY_MATCHED}
    assert row.headers[service.SIGNATURE_HEADER] == "t=1,v1=00"
    _assert_no_key(inline_app, acme.api_key)


def test_a_key_in_a_kept_header_is_not_stored(hook, acme, globex, inline_app):
    event = acme.events("answered")[0]
    agent = f"relay/1.0; ApiKey={globex.api_key}; linux"
    assert post(hook, acme, event, headers={"User-Agent": agent}).status_code == 200
    [row] = stored_events(inline_app)
    assert row.headers["User-Agent"] == f"relay/1.0; ApiKey={API_KEY_NOT_MATCHED}; linux"
    _assert_no_key(inline_app, acme.api_key, globex.api_key)
