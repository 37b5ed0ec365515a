"""Two orgs on one MightyCall account (one simulator, one API key): a shared number, a number that
moves from A to B mid-window, and numbers of each alone. Each call is stored once for the account,
and each org counts exactly the account's calls on its numbers in its periods."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from tests.factories import PASSWORD, make_user
from tests.helpers import login
from tests.jobs.helpers import W0, W1, connect, sync
from vsync.extensions import db
from vsync.metrics import summary
from vsync.mightycall.parsing import parse_call, parse_sms
from vsync.models import Call, Integration, Organization, Recording, SmsMessage
from vsync.phones import try_e164
from vsync.query import Window
from vsync.services import numbers, orgs
from vsync.services.traffic import calls_statement
from vsync.tenancy import platform_bypass, tenant

MOVED_AT = W0 + (W1 - W0) / 2


def _periods(app, server) -> dict[str, list[tuple[str, object, object]]]:
    """Assign the account's numbers: 0 to A, 1 to both, 2 to A then B at MOVED_AT, the rest to B."""
    e164s = [try_e164(n) for n in server.simulator.phone_numbers()]
    since = W0 - timedelta(days=30)
    plan = {
        e164s[0]: [("alpha", since, None)],
        e164s[1]: [("alpha", since, None), ("bravo", since, None)],
        e164s[2]: [("alpha", since, MOVED_AT), ("bravo", MOVED_AT, None)],
        **{e: [("bravo", since, None)] for e in e164s[3:]},
    }
    with app.app_context(), platform_bypass("test setup"):
        for e164, periods in plan.items():
            number = numbers.add_number(e164)
            for slug, start, end in periods:
                org = orgs.get_org_by_slug(slug)
                numbers.assign_number(org, number, at=start)
                if end is not None:
                    numbers.unassign_number(org, number, at=end)
        db.session.commit()
    return plan


def _holds(plan, slug: str, number: str | None, at) -> bool:
    return any(
        who == slug and start <= at and (end is None or at < end)
        for who, start, end in plan.get(try_e164(number or ""), ())
    )


def _expected(server, plan, slug: str) -> dict:
    """The account's calls of the window on the org's numbers, in the org's periods, by id."""
    calls = (parse_call(raw) for raw in server.simulator.calls_between(W0, W1))
    return {call.external_id: call for call in calls if _holds(plan, slug, call.business_number, call.started_at)}


def _counted(calls) -> dict:
    """The KPI counts a person gets by counting the calls (see the published definitions)."""
    inbound = [c for c in calls if c.direction == "inbound"]
    return {
        "total_calls": len(calls),
        "inbound_calls": len(inbound),
        "outbound_calls": sum(1 for c in calls if c.direction in ("outbound", "callback")),
        "answered_calls": sum(1 for c in inbound if c.status == "answered"),
        "missed_calls": sum(1 for c in inbound if c.status in ("missed", "dropped")),
        "voicemail_calls": sum(1 for c in inbound if c.status == "voicemail"),
    }


def test_two_orgs_on_one_account_store_each_call_once_and_each_counts_its_own_periods(inline_app, sim_server):
    a, a_integration = connect(inline_app, "alpha", sim_server)
    b, b_integration = connect(inline_app, "bravo", sim_server)
    plan = _periods(inline_app, sim_server)
    for org_id, integration_id in ((a, a_integration), (b, b_integration), (a, a_integration)):
        for kind in ("calls", "sms"):
            assert sync(inline_app, org_id, integration_id, kind=kind).status == "succeeded"
    truth = sim_server.simulator.calls_between(W0, W1)
    with inline_app.app_context(), platform_bypass("test"):
        accounts = set(db.session.scalars(select(Integration.account_id)))
        stored = Counter(db.session.scalars(select(Call.external_id)))
        recordings = Counter(db.session.scalars(select(Recording.call_external_id)))
    assert len(accounts) == 1, "one MightyCall account, however many orgs connect to it"
    assert set(stored) == {raw["id"] for raw in truth} and max(stored.values()) == 1
    assert max(recordings.values()) == 1
    sms_truth = [parse_sms(raw) for raw in sim_server.simulator.sms_between(W0, W1)]
    with inline_app.app_context(), platform_bypass("test"):
        sms = Counter(db.session.scalars(select(SmsMessage.external_id)))
    assert sms and max(sms.values()) == 1
    for org_id, slug in ((a, "alpha"), (b, "bravo")):
        expected = _expected(sim_server, plan, slug)
        with inline_app.app_context(), tenant(org_id):
            org = db.session.get(Organization, org_id)
            window = Window(W0, W1, ZoneInfo(org.timezone))
            listed = [row.external_id for row in db.session.execute(calls_statement(window))]
            assert sorted(listed) == sorted(expected), slug
            figures = summary(org, window)
            assert {name: figures[name] for name in _counted([])} == _counted(list(expected.values())), slug
            assert db.session.scalar(
                select(func.count()).select_from(Recording).where(Recording.started_at >= W0, Recording.started_at < W1)
            ) == sum(1 for raw in truth if raw["callRecord"] and raw["id"] in expected)
            assert sorted(db.session.scalars(select(SmsMessage.external_id))) == sorted(
                m.external_id for m in sms_truth if _holds(plan, slug, m.business_number, m.occurred_at)
            )
        with inline_app.app_context():
            make_user(f"owner@{slug}.test", org_slug=slug, role="org_admin")
        client = inline_app.test_client()
        assert login(client, f"owner@{slug}.test", PASSWORD).status_code == 302
        exported = client.get(
            f"/api/v1/orgs/{slug}/calls",
            query_string={"format": "csv", "from": f"{W0:%Y-%m-%d}", "to": f"{W1 - timedelta(days=1):%Y-%m-%d}"},
        )
        rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
        assert sorted(row["external_id"] for row in rows) == sorted(expected), slug
