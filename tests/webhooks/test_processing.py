"""Processing: what each event does to a call, any order and any repetition giving the same result,
and the merge with the sync's row of the same call."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from tests.webhooks.helpers import NOW, calls_state, one_call, post, stored_events
from vsync.extensions import db
from vsync.mightycall.parsing import parse_call
from vsync.models import CallEvent
from vsync.redaction import API_KEY_MATCHED
from vsync.services.sync.ingest import NumberBook, write_calls
from vsync.tenancy import platform_bypass, tenant

S = timedelta(seconds=1)


def test_answered_call_has_its_answer_time_agent_wait_and_end_from_events(hook, acme, inline_app):
    events = acme.events("answered", extension="104")
    assert post(hook, acme, events).status_code == 200
    call = one_call(inline_app, events[0]["Body"]["Id"])
    assert (call.direction, call.status, call.agent_extension) == ("inbound", "answered", "104")
    assert call.started_at == NOW and call.answered_at == NOW + 9 * S == call.wait_ended_at
    assert call.ended_at == NOW + 190 * S and call.events_at == NOW + 190 * S and call.synced_at is None
    assert (call.from_number, call.to_number) == ("+17185550123", acme.number)


def test_unanswered_inbound_call_is_voicemail_with_its_missed_ring_recorded(hook, acme, inline_app):
    events = acme.events("missed", extension="105")
    post(hook, acme, events)
    call = one_call(inline_app, events[0]["Body"]["Id"])
    assert call.status == "voicemail" and call.answered_at is None and call.agent_extension is None
    assert call.wait_ended_at == call.ended_at == NOW + 32 * S
    assert call.ring_ms == 30_000  # Ringing at +1 s, StopRinging at +31 s
    with inline_app.app_context(), tenant(acme.org_id):
        kinds = db.session.execute(select(CallEvent.kind, CallEvent.extension).order_by(CallEvent.occurred_at)).all()
    assert [tuple(k) for k in kinds] == [
        ("call", None),
        ("ringing", "105"),
        ("stop_ringing", "105"),
        ("completed", None),
    ]


def test_outbound_call_is_answered_by_the_calling_agent(hook, acme, inline_app):
    events = acme.events("outbound", extension="107")
    post(hook, acme, events)
    call = one_call(inline_app, events[0]["Body"]["Id"])
    assert (call.direction, call.status, call.agent_extension, call.from_number) == (
        "outbound",
        "answered",
        "107",
        acme.number,
    )


def test_a_call_known_only_from_events_lasts_from_connected_to_completed(hook, acme, inline_app):
    events = acme.events("answered")
    post(hook, acme, events)
    call = one_call(inline_app, events[0]["Body"]["Id"])
    assert call.synced_at is None and call.duration_ms == 181_000  # Connected +9 s, Completed +190 s


def test_an_unanswered_call_known_only_from_events_lasts_zero_and_an_open_one_has_no_duration(hook, acme, inline_app):
    missed, open_ = acme.events("missed"), acme.events("answered", seed=2)
    post(hook, acme, missed + open_[:3])
    assert one_call(inline_app, missed[0]["Body"]["Id"]).duration_ms == 0
    assert one_call(inline_app, open_[0]["Body"]["Id"]).duration_ms is None  # connected, not completed


def test_an_unanswered_outbound_call_keeps_the_extension_that_placed_it(hook, acme, inline_app):
    events = [e for e in acme.events("outbound", extension="107") if "Connected" not in e["EventType"]]
    post(hook, acme, events)
    call_id = events[0]["Body"]["Id"]
    call = one_call(inline_app, call_id)
    assert (call.direction, call.status, call.agent_extension, call.duration_ms) == ("outbound", "missed", "107", 0)
    unanswered = _provider_call(acme, call_id) | {
        "caller": {"phone": acme.number},
        "called": [{"phone": "+17185550123"}],
        "direction": "Outgoing",
        "callStatus": "Missed",
        "duration": "0",
    }
    _sync(inline_app, acme, unanswered)  # MightyCall's item names no extension: the events' stays
    assert one_call(inline_app, call_id).agent_extension == "107"


def test_a_call_still_ringing_is_open_with_no_outcome_yet(hook, acme, inline_app):
    events = acme.events("answered")
    post(hook, acme, events[:2])
    call = one_call(inline_app, events[0]["Body"]["Id"])
    assert call.status == "other" and call.ended_at is None and call.wait_ended_at is None
    assert call.ring_ms is None


def test_a_caller_who_hangs_up_while_ringing_rang_until_the_call_completed(hook, acme, inline_app):
    events = [e for e in acme.events("missed") if "StopRinging" not in e["EventType"]]
    post(hook, acme, list(reversed(events)))
    assert one_call(inline_app, events[0]["Body"]["Id"]).ring_ms == 31_000  # Ringing +1 s, Completed +32 s


def test_agent_level_event_names_are_understood_case_insensitively(hook, acme, inline_app):
    events = acme.events("answered")
    events[2]["EventType"] = "incomingcallAGENTCONNECTED"
    post(hook, acme, events)
    assert one_call(inline_app, events[0]["Body"]["Id"]).answered_at == NOW + 9 * S


def test_an_unknown_event_type_is_kept_raw_and_marked_without_a_call(hook, acme, inline_app):
    event = acme.events("answered")[0] | {"EventType": "IncomingCallTransferredToMars"}
    assert post(hook, acme, event).status_code == 200
    [row] = stored_events(inline_app)
    assert row.status == "ignored" and "IncomingCallTransferredToMars" in row.error
    assert json.loads(row.body) == event | {"ApiKey": API_KEY_MATCHED}
    assert calls_state(inline_app) == {"calls": {}, "events": []}


def _reset_traffic(app) -> None:
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("TRUNCATE webhook_events, call_events, calls, audit_events RESTART IDENTITY"))


lifecycles = st.lists(
    st.tuples(st.sampled_from(["answered", "missed", "voicemail", "outbound"]), st.integers(0, 10_000)),
    min_size=1,
    max_size=4,
    unique_by=lambda c: c[1],
)


def _events_of(acme, calls) -> list[dict]:
    """The events of the drawn calls (`lifecycles`), one call's after another."""
    return [
        e
        for lifecycle, seed in calls
        for e in acme.events(lifecycle, seed=seed, started_at=NOW + seed * S, extension=f"1{seed % 7}")
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=lifecycles, data=st.data())
def test_any_order_and_any_repetition_of_events_gives_the_in_order_result(hook, acme, inline_app, calls, data):
    events = _events_of(acme, calls)
    _reset_traffic(inline_app)
    for event in events:
        post(hook, acme, event)
    in_order = calls_state(inline_app)
    assert len(in_order["calls"]) == len(calls) and len(in_order["events"]) == len(events)

    repeated = events + data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="duplicates")
    shuffled = data.draw(st.permutations(repeated), label="order")
    batch = data.draw(st.integers(1, 4), label="events per request")
    _reset_traffic(inline_app)
    for start in range(0, len(shuffled), batch):
        assert post(hook, acme, shuffled[start : start + batch]).status_code == 200
    assert calls_state(inline_app) == in_order
    assert all(r.status == "processed" and r.attempts == 1 for r in stored_events(inline_app))


def _rollups(app) -> list[tuple]:
    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM call_rollups")).mappings()
        return sorted(tuple(sorted((k, str(v)) for k, v in row.items() if k != "id")) for row in rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=lifecycles, data=st.data())
def test_a_backlog_drained_in_one_batch_gives_what_one_event_at_a_time_gives(hook, acme, inline_app, calls, data):
    events = _events_of(acme, calls)
    for event in data.draw(st.lists(st.sampled_from(events), unique_by=lambda e: e["Guid"]), label="no start"):
        del event["Body"]["DateTimeUtc"]  # the call starts at its earliest event: a late one moves it
    repeated = events + data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="duplicates")
    shuffled = data.draw(st.permutations(repeated), label="order")

    def reset():
        _reset_traffic(inline_app)
        with inline_app.app_context(), db.engine.begin() as conn:
            conn.execute(text("TRUNCATE call_rollups, rollup_dirty"))

    reset()
    for event in shuffled:
        post(hook, acme, event)
    one_at_a_time = calls_state(inline_app), _rollups(inline_app)
    reset()
    assert post(hook, acme, shuffled).status_code == 200  # one delivery: one drain, one batch
    assert (calls_state(inline_app), _rollups(inline_app)) == one_at_a_time
    assert all(r.status == "processed" and r.attempts == 1 for r in stored_events(inline_app))


def _provider_call(tenant_, call_id: str, *, extension: str = "102") -> dict:
    """The sync's view of the answered call the emitter plays (MightyCall's call list item)."""
    return {
        "id": call_id,
        "caller": {"name": "", "phone": "+17185550123"},
        "called": [{"isConnected": True, "name": "Ann Agent", "extension": extension}],
        "businessNumber": tenant_.number,
        "dateTimeUtc": "2026-11-02T12:00:00.5Z",
        "duration": "181500",
        "direction": "Incoming",
        "callStatus": "Connected",
        "callRecord": None,
    }


def _sync(app, tenant_, raw: dict) -> None:
    with app.app_context(), tenant(tenant_.org_id):
        write_calls(tenant_.integration_id, [parse_call(raw)], NumberBook(tenant_.org_id, tenant_.integration_id))
        db.session.commit()


ORDERS = {
    "events_then_sync": ["events", "sync"],
    "sync_then_events": ["sync", "events"],
    "events_between_two_syncs": ["sync", "events", "sync"],
    "sync_between_events": ["first_events", "sync", "other_events"],
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_sync_and_events_merge_into_one_call_with_each_sources_best_fields(hook, acme, inline_app, order):
    events = acme.events("answered", extension="101")
    call_id = events[0]["Body"]["Id"]
    steps = {
        "events": lambda: post(hook, acme, events),
        "first_events": lambda: post(hook, acme, events[:2]),
        "other_events": lambda: post(hook, acme, events[2:]),
        "sync": lambda: _sync(inline_app, acme, _provider_call(acme, call_id)),
    }
    for step in ORDERS[order]:
        steps[step]()
    call = one_call(inline_app, call_id)
    started = NOW + timedelta(milliseconds=500)
    # the sync's: start, status, duration and end, raw item
    assert (call.status, call.duration_ms, call.started_at) == ("answered", 181_500, started)
    assert call.ended_at == started + timedelta(milliseconds=181_500) and call.raw["id"] == call_id
    # the events': answer time, wait, the extension that answered (the sync's item names another)
    assert call.answered_at == NOW + 9 * S == call.wait_ended_at and call.agent_extension == "101"
    assert call.synced_at is not None and call.events_at == NOW + 190 * S


@pytest.mark.parametrize("order", ["events_then_sync", "sync_then_events"])
def test_a_missed_call_keeps_its_ring_time_from_events_and_its_status_from_the_sync(hook, acme, inline_app, order):
    events = acme.events("missed")
    call_id = events[0]["Body"]["Id"]
    missed = _provider_call(acme, call_id) | {"called": [], "duration": "0", "callStatus": "Missed"}
    steps = {"events": lambda: post(hook, acme, events), "sync": lambda: _sync(inline_app, acme, missed)}
    for step in ORDERS[order]:
        steps[step]()
    call = one_call(inline_app, call_id)
    assert (call.status, call.ring_ms, call.answered_at) == ("missed", 30_000, None)


def test_a_synced_call_without_events_keeps_the_syncs_agent(acme, inline_app):
    _sync(inline_app, acme, _provider_call(acme, "c-1", extension="102"))
    call = one_call(inline_app, "c-1")
    assert call.agent_extension == "102" and call.answered_at is None and call.events_at is None
    assert call.ring_ms is None


def test_call_events_are_visible_to_the_org_and_not_to_another(hook, acme, globex, inline_app):
    post(hook, acme, acme.events("answered"))
    with inline_app.app_context():
        with tenant(acme.org_id):
            assert len(db.session.scalars(select(CallEvent)).all()) == 4
        with tenant(globex.org_id):
            assert db.session.scalars(select(CallEvent)).all() == []
        with platform_bypass("test"):
            assert len(db.session.scalars(select(CallEvent)).all()) == 4
