"""Support in the consoles: the org's ticket pages (agents see their own, internal notes never), and
the platform queue with its filters, replies, notes and number-request decisions."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from tests.helpers import csrf_token
from tests.world import A_ONLY, INTERNAL_NOTE, api_as
from vsync.extensions import db
from vsync.models import NumberAssignment, PhoneNumber, Ticket
from vsync.models.types import utcnow
from vsync.tenancy import platform_bypass, tenant

A = "/admin/orgs/org-a"
Q = "/admin/platform/tickets"
FREE = "+12125550188"


def _post(client, path: str, data: dict, token_page: str):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, token_page)})


def _ticket_ids(page: str) -> set[int]:
    return {int(found) for found in re.findall(r"details/\?id=(\d+)", page)}


def test_org_members_see_their_tickets_never_an_internal_note_and_agents_only_their_own(app, world):
    everything = {world.tickets["a"], world.number_requests["a"]}
    for principal, expected in (("admin_a", 200), ("manager_a", 200), ("agent_a", 200), ("both", 200)):
        client = api_as(app.test_client(), principal, world)
        listed = client.get(f"{A}/tickets/").get_data(as_text=True)
        assert _ticket_ids(listed) == ({world.tickets["a"]} if principal == "agent_a" else everything), principal
        page = client.get(f"{A}/tickets/details/?id={world.tickets['a']}")
        assert page.status_code == expected
        assert "help a" in page.get_data(as_text=True) and INTERNAL_NOTE not in page.get_data(as_text=True)
    admin = api_as(app.test_client(), "admin_a", world)
    _post(
        admin,
        f"{A}/tickets/open",
        {
            "ticket-subject": "Admin's own",
            "ticket-category": "question",
            "ticket-priority": "low",
            "ticket-message": "Hi",
        },
        f"{A}/tickets/",
    )
    agent = api_as(app.test_client(), "agent_a", world)
    assert _ticket_ids(agent.get(f"{A}/tickets/").get_data(as_text=True)) == {world.tickets["a"]}
    assert len(_ticket_ids(admin.get(f"{A}/tickets/").get_data(as_text=True))) == 3
    assert "Admin&#39;s own" not in agent.get(f"{A}/tickets/?search=own").get_data(as_text=True)


def test_another_orgs_ticket_is_a_404_in_the_org_console_and_its_search_finds_nothing(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    assert client.get(f"{A}/tickets/details/?id={world.tickets['b']}").status_code == 404
    assert "ticket of b" not in client.get(f"{A}/tickets/?search=ticket").get_data(as_text=True)
    reply = _post(
        client, f"{A}/tickets/reply", {"reply-ticket": world.tickets["b"], "reply-message": "x"}, f"{A}/tickets/"
    )
    assert reply.status_code == 404


def test_an_empty_ticket_is_refused_on_the_form_and_nothing_is_written(app, world, in_app):
    client = api_as(app.test_client(), "admin_a", world)
    _post(
        client,
        f"{A}/tickets/open",
        {"ticket-subject": "", "ticket-category": "question", "ticket-priority": "low", "ticket-message": "Hi"},
        f"{A}/tickets/",
    )
    assert "The subject may not be empty." in client.get(f"{A}/tickets/").get_data(as_text=True)
    with in_app(), tenant(world.a):
        assert len(db.session.scalars(select(Ticket)).all()) == 2


def test_the_platform_queue_lists_every_org_filters_and_shows_internal_notes(app, world):
    client = api_as(app.test_client(), "root", world)
    assert _ticket_ids(client.get(f"{Q}/").get_data(as_text=True)) == {
        *world.tickets.values(),
        *world.number_requests.values(),
    }
    page = client.get(f"{Q}/details/?id={world.tickets['b']}").get_data(as_text=True)
    assert INTERNAL_NOTE in page and "help b" in page
    filtered = client.get(f"{Q}/?flt0_0=org-b").get_data(as_text=True)  # Organisation equals org B
    assert _ticket_ids(filtered) == {world.tickets["b"], world.number_requests["b"]}
    before = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert _ticket_ids(client.get(f"{Q}/?flt0_4={before}").get_data(as_text=True)) == set()


def test_staff_answer_assign_and_approve_a_number_request_from_the_queue(app, world, in_app):
    org = api_as(app.test_client(), "admin_a", world)
    _post(
        org,
        f"{A}/tickets/request-number",
        {
            "request-action": "new",
            "request-country": "US",
            "request-e164": FREE,
            "request-message": "One more line",
            "request-to_org": "",
        },
        f"{A}/tickets/",
    )
    with in_app(), tenant(world.a):
        ticket_id = db.session.scalar(select(func.max(Ticket.id)).where(Ticket.kind == "number_request"))
    staff = api_as(app.test_client(), "root", world)
    page = f"{Q}/details/?id={ticket_id}"
    _post(staff, f"{Q}/assign", {"assign-ticket": ticket_id, "assign-assignee": world.users["root"]}, page)
    _post(staff, f"{Q}/note", {"note-ticket": ticket_id, "note-note": "check stock first"}, page)
    approved = _post(staff, f"{Q}/approve", {"approve-ticket": ticket_id, "approve-e164": ""}, page)
    assert approved.status_code == 302
    with in_app(), platform_bypass("test"):
        ticket = db.session.get(Ticket, ticket_id)
        assert (ticket.assignee_user_id, ticket.status, ticket.number_request.decision) == (
            world.users["root"],
            "resolved",
            "approved",
        )
        period = db.session.scalar(select(NumberAssignment).join(PhoneNumber).where(PhoneNumber.e164 == FREE))
        assert (period.org_id, period.id) == (world.a, ticket.number_request.assignment_id)
    seen = org.get(f"{A}/tickets/details/?id={ticket_id}").get_data(as_text=True)
    assert "approved" in seen and f"Approved: {FREE}" in seen and "check stock first" not in seen
    again = _post(staff, f"{Q}/approve", {"approve-ticket": ticket_id, "approve-e164": ""}, page)
    assert again.status_code == 302
    with in_app(), platform_bypass("test"):
        assert (
            len(db.session.scalars(select(NumberAssignment).join(PhoneNumber).where(PhoneNumber.e164 == FREE)).all())
            == 1
        )


def test_a_release_request_from_the_org_console_is_refused_with_a_reason(app, world, in_app):
    org = api_as(app.test_client(), "manager_a", world)
    _post(
        org,
        f"{A}/tickets/request-number",
        {"request-action": "release", "request-e164": A_ONLY, "request-message": "Not needed", "request-to_org": ""},
        f"{A}/tickets/",
    )
    with in_app(), tenant(world.a):
        ticket_id = db.session.scalar(select(func.max(Ticket.id)).where(Ticket.kind == "number_request"))
    staff = api_as(app.test_client(), "root", world)
    page = f"{Q}/details/?id={ticket_id}"
    _post(staff, f"{Q}/refuse", {"refuse-ticket": ticket_id, "refuse-reason": ""}, page)
    assert "The reason may not be empty." in staff.get(page).get_data(as_text=True)
    _post(staff, f"{Q}/refuse", {"refuse-ticket": ticket_id, "refuse-reason": "Under contract until March."}, page)
    assert "Under contract until March." in org.get(f"{A}/tickets/details/?id={ticket_id}").get_data(as_text=True)
