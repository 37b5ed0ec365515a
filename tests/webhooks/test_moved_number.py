"""A number that moves from acme to globex at `MOVED_AT`: a call is filed under its start
(`Body.DateTimeUtc`), and only the org that holds the number then may file it, whatever the events'
own `Timestamp`s say."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.webhooks.helpers import NOW, post, stored_events
from vsync.extensions import db
from vsync.models import Call, CallEvent
from vsync.models.operations import PROCESSED, UNMATCHED
from vsync.services import numbers, orgs
from vsync.tenancy import platform_bypass, tenant

MOVED = "+14155550199"
MOVED_AT = NOW


def _move_number(app) -> None:
    with app.app_context(), platform_bypass("test setup"):
        number = numbers.add_number(MOVED)
        acme, globex = orgs.get_org_by_slug("acme"), orgs.get_org_by_slug("globex")
        numbers.assign_number(acme, number, at=MOVED_AT - timedelta(days=30))
        numbers.unassign_number(acme, number, at=MOVED_AT)
        numbers.assign_number(globex, number, at=MOVED_AT)
        db.session.commit()


def _events(tenant_, *, starts, happens, seed: int) -> list[dict]:
    """A call's events that say it started at `starts` while each event's Timestamp is around `happens`."""
    events = tenant_.events("answered", seed=seed, started_at=happens, business_number=MOVED)
    for event in events:
        event["Body"]["DateTimeUtc"] = starts.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return events


def _statuses(app, tenant_) -> set[str]:
    return {event.status for event in stored_events(app, tenant_.integration_id)}


def _calls_seen(app, org_id: int) -> list[str]:
    with app.app_context(), tenant(org_id):
        return list(db.session.scalars(select(Call.external_id)))


def test_the_earlier_owners_token_cannot_file_a_call_that_started_after_the_move(hook, acme, globex, inline_app):
    _move_number(inline_app)
    events = _events(acme, starts=MOVED_AT + timedelta(minutes=5), happens=MOVED_AT - timedelta(minutes=5), seed=1)
    assert post(hook, acme, events).status_code == 200
    assert _statuses(inline_app, acme) == {UNMATCHED}
    assert _calls_seen(inline_app, acme.org_id) == [] and _calls_seen(inline_app, globex.org_id) == []


def test_the_later_owners_token_cannot_file_a_call_that_started_before_the_move(hook, acme, globex, inline_app):
    _move_number(inline_app)
    events = _events(globex, starts=MOVED_AT - timedelta(minutes=5), happens=MOVED_AT + timedelta(minutes=5), seed=2)
    assert post(hook, globex, events).status_code == 200
    assert _statuses(inline_app, globex) == {UNMATCHED}
    assert _calls_seen(inline_app, acme.org_id) == [] and _calls_seen(inline_app, globex.org_id) == []


def test_a_call_is_filed_with_its_events_in_the_period_of_its_start(hook, acme, globex, inline_app):
    _move_number(inline_app)
    events = _events(globex, starts=MOVED_AT + timedelta(minutes=1), happens=MOVED_AT - timedelta(minutes=1), seed=3)
    assert post(hook, globex, events).status_code == 200
    assert _statuses(inline_app, globex) == {PROCESSED}
    call_id = events[0]["Body"]["Id"]
    assert _calls_seen(inline_app, globex.org_id) == [call_id] and _calls_seen(inline_app, acme.org_id) == []
    with inline_app.app_context(), tenant(acme.org_id):
        assert db.session.scalars(select(CallEvent)).all() == []
    with inline_app.app_context(), tenant(globex.org_id):
        assert len(db.session.scalars(select(CallEvent)).all()) == len(events)
