"""The live floor, built from webhook events in the org's scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from tests.webhooks.helpers import NOW, post
from vsync.extensions import db
from vsync.mightycall.parsing import parse_datetime
from vsync.services.live import floor_state
from vsync.tenancy import TenancyError, tenant

S = timedelta(seconds=1)


def play_until(client, tenant_, events, until):
    """Deliver the events that have happened by `until`, as a live floor would receive them."""
    due = [e for e in events if parse_datetime(e["Timestamp"]) <= until]
    if due:
        assert post(client, tenant_, due).status_code == 200


def floor(app, tenant_, at, **options):
    with app.app_context(), tenant(tenant_.org_id):
        return floor_state(tenant_.org_id, now=at, **options)


def states(state) -> dict:
    return {a.extension: (a.state, a.since, a.call_id) for a in state.agents}


def test_a_call_rings_is_answered_and_ends_on_the_floor(hook, acme, inline_app):
    events = acme.events("answered", extension="101")
    call_id = events[0]["Body"]["Id"]
    play_until(hook, acme, events, NOW + 5 * S)
    ringing = floor(inline_app, acme, NOW + 5 * S)
    assert states(ringing) == {"101": ("ringing", NOW + S, call_id)}
    assert [(c.call_id, c.seconds) for c in ringing.waiting] == [(call_id, 5.0)]
    assert ringing.longest_wait_seconds == 5.0 and ringing.in_progress == []

    play_until(hook, acme, events, NOW + 60 * S)
    talking = floor(inline_app, acme, NOW + 60 * S)
    assert states(talking) == {"101": ("on_call", NOW + 9 * S, call_id)}
    assert talking.agents[0].number == "+17185550123"
    assert [(c.call_id, c.seconds) for c in talking.in_progress] == [(call_id, 51.0)]
    assert talking.waiting == [] and talking.longest_wait_seconds is None

    play_until(hook, acme, events, NOW + 200 * S)
    after = floor(inline_app, acme, NOW + 200 * S)
    assert states(after) == {"101": ("available", NOW + 190 * S, None)}
    assert after.waiting == after.in_progress == []


def test_an_extension_that_stopped_ringing_is_available_while_the_caller_still_waits(hook, acme, inline_app):
    events = acme.events("voicemail", extension="102")
    play_until(hook, acme, events, NOW + 40 * S)
    state = floor(inline_app, acme, NOW + 40 * S)
    assert states(state)["102"][0] == "available"
    assert [c.seconds for c in state.waiting] == [40.0]


def test_several_calls_make_a_floor_with_the_longest_wait(hook, acme, inline_app):
    first = acme.events("answered", seed=1, extension="101")
    second = acme.events("missed", seed=2, extension="102", started_at=NOW + 20 * S)
    third = acme.events("outbound", seed=3, extension="103", started_at=NOW + 5 * S)
    for events in (first, second, third):
        play_until(hook, acme, events, NOW + 25 * S)
    state = floor(inline_app, acme, NOW + 25 * S)
    assert {a.extension: a.state for a in state.agents} == {"101": "on_call", "102": "ringing", "103": "on_call"}
    assert [c.seconds for c in state.waiting] == [5.0] and state.longest_wait_seconds == 5.0
    assert sorted(c.agent_extension for c in state.in_progress) == ["101", "103"]


def test_states_older_than_the_staleness_are_unknown(hook, acme, inline_app):
    events = acme.events("answered", extension="101")
    play_until(hook, acme, events, NOW + 60 * S)
    later = NOW + timedelta(minutes=45)
    state = floor(inline_app, acme, later, staleness=timedelta(minutes=30))
    assert states(state) == {"101": ("unknown", NOW + 9 * S, None)}
    assert state.in_progress == [] and state.stale_calls == 1
    assert states(floor(inline_app, acme, later, staleness=timedelta(hours=1)))["101"][0] == "on_call"


def test_the_floor_shows_only_the_orgs_own_calls(hook, acme, globex, inline_app):
    play_until(hook, acme, acme.events("answered", extension="101"), NOW + 5 * S)
    assert floor(inline_app, globex, NOW + 5 * S).agents == []
    with inline_app.app_context(), tenant(globex.org_id), pytest.raises(TenancyError):
        floor_state(acme.org_id, now=NOW)


def test_the_floor_is_four_queries_whatever_the_number_of_calls(hook, acme, inline_app):
    for seed in range(30):
        play_until(hook, acme, acme.events("answered", seed=seed, extension=f"1{seed:02d}"), NOW + 5 * S)
    statements = []
    with inline_app.app_context():

        def listener(*args):
            statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            with tenant(acme.org_id):
                state = floor_state(acme.org_id, now=NOW + 5 * S)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    assert len(state.waiting) == 30 and len(statements) == 4


def test_the_floor_as_json_uses_utc_times_and_rounded_seconds(hook, acme, inline_app):
    play_until(hook, acme, acme.events("answered", extension="101"), NOW + 5 * S)
    data = floor(inline_app, acme, NOW + 5 * S + timedelta(milliseconds=250)).as_dict()
    assert data["as_of"] == "2026-11-02T12:00:05.250000Z" and data["longest_wait_seconds"] == 5.2
    assert data["agents"][0]["state"] == "ringing" and data["waiting"][0]["started_at"] == "2026-11-02T12:00:00Z"


def _key(app, org_id: int) -> str:
    from vsync.services.keys import create_api_key
    from vsync.tenancy import platform_bypass

    with app.app_context(), platform_bypass("test key"):
        plaintext = create_api_key(org_id=org_id, name="floor", scopes="read")[1]
        db.session.commit()
    return plaintext


def test_the_live_route_shows_an_orgs_own_floor_now_and_another_orgs_is_a_404(hook, acme, globex, inline_app):
    from vsync.models.types import utcnow

    started = utcnow().replace(microsecond=0) - 30 * S
    events = acme.events("answered", extension="101", started_at=started)
    play_until(hook, acme, events, started + 12 * S)  # answered at +9 s: on a call now
    acme_key, globex_key = _key(inline_app, acme.org_id), _key(inline_app, globex.org_id)

    mine = hook.get("/api/v1/orgs/acme/live", headers={"Authorization": f"Bearer {acme_key}"})
    assert mine.status_code == 200
    body = mine.get_json()
    assert [(a["extension"], a["state"]) for a in body["agents"]] == [("101", "on_call")]
    assert [c["call_id"] for c in body["in_progress"]] == [events[0]["Body"]["Id"]]
    assert body["waiting"] == [] and body["longest_wait_seconds"] is None

    theirs = hook.get("/api/v1/orgs/acme/live", headers={"Authorization": f"Bearer {globex_key}"})
    assert theirs.status_code == 404
    own = hook.get("/api/v1/orgs/globex/live", headers={"Authorization": f"Bearer {globex_key}"}).get_json()
    assert own["agents"] == [] and own["in_progress"] == []
