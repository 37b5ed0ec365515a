"""Two orgs on one MightyCall account (one simulator, one API key): a shared number, a number that
moves from A to B mid-window, and numbers of each alone. Each call is stored once for the account,
and each org counts exactly the account's calls on its numbers in its periods."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from tests.jobs.helpers import W0, W1, connect, sync
from vsync.extensions import db
from vsync.metrics import Window, summary
from vsync.mightycall.parsing import parse_call
from vsync.models import Call, Integration, Organization, Recording
from vsync.phones import try_e164
from vsync.services import numbers, orgs
from vsync.services.traffic import calls_statement
from vsync.tenancy import platform_bypass, tenant

MOVED_AT = W0 + (W1 - W0) / 2


def _periods(app, server) -> dict[str, list[tuple[str, object, object]]]:
    """Assign the account's numbers: 0 to A, 1 to both, 2 to A then B at MOVED_AT, the rest to B."""
    e164s = [try_e164(n) for n in server.simulator.phone_numbers()]
    since = W0 - timedelta(days=30)
    plan = {e164s[0]: [("alpha", since, None)], e164s[1]: [("alpha", since, None), ("bravo", since, None)],
            e164s[2]: [("alpha", since, MOVED_AT), ("bravo", MOVED_AT, None)],
            **{e: [("bravo", since, None)] for e in e164s[3:]}}
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


def _expected(server, plan, slug: str) -> set[str]:
    """The account's calls of the window on the org's numbers, in the org's periods."""
    ids = set()
    for raw in server.simulator.calls_between(W0, W1):
        call = parse_call(raw)
        for who, start, end in plan.get(try_e164(call.business_number), ()):
            if who == slug and start <= call.started_at and (end is None or call.started_at < end):
                ids.add(call.external_id)
    return ids


def test_two_orgs_on_one_account_store_each_call_once_and_each_counts_its_own_periods(inline_app, sim_server):
    a, a_integration = connect(inline_app, "alpha", sim_server)
    b, b_integration = connect(inline_app, "bravo", sim_server)
    plan = _periods(inline_app, sim_server)
    for org_id, integration_id in ((a, a_integration), (b, b_integration), (a, a_integration)):
        assert sync(inline_app, org_id, integration_id).status == "succeeded"
    truth = sim_server.simulator.calls_between(W0, W1)
    with inline_app.app_context(), platform_bypass("test"):
        accounts = set(db.session.scalars(select(Integration.account_id)))
        stored = Counter(db.session.scalars(select(Call.external_id)))
        recordings = Counter(db.session.scalars(select(Recording.call_external_id)))
    assert len(accounts) == 1, "one MightyCall account, however many orgs connect to it"
    assert set(stored) == {raw["id"] for raw in truth} and max(stored.values()) == 1
    assert max(recordings.values()) == 1
    for org_id, slug in ((a, "alpha"), (b, "bravo")):
        expected = _expected(sim_server, plan, slug)
        with inline_app.app_context(), tenant(org_id):
            org = db.session.get(Organization, org_id)
            window = Window(W0, W1, ZoneInfo(org.timezone))
            listed = [row.external_id for row in db.session.execute(calls_statement(window))]
            assert sorted(listed) == sorted(expected), slug
            assert summary(org, window)["total_calls"] == len(expected)
            assert db.session.scalar(select(func.count()).select_from(Recording).where(
                Recording.started_at >= W0, Recording.started_at < W1)) == sum(
                1 for raw in truth if raw["callRecord"] and raw["id"] in expected)
