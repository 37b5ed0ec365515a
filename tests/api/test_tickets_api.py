"""The support tickets API: who sees which ticket, the thread without internal notes, the statuses
and times of a conversation with platform staff, and bad input refused with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.api.helpers import audit_rows
from tests.factories import T0
from tests.world import A_ONLY, B_ONLY, INTERNAL_NOTE, MOVED
from vsync.auth.principals import UserPrincipal
from vsync.extensions import db
from vsync.models import NumberRequest, Ticket, TicketMessage
from vsync.services import support
from vsync.tenancy import platform_bypass

TICKETS = "/api/v1/orgs/{org}/tickets"


def _open(client, org: str = "org-a", **body):
    return client.post(
        TICKETS.format(org=org),
        json={"subject": "Calls drop", "category": "problem", "priority": "high", "message": "Since Monday.", **body},
    )


def _subjects(client, org: str) -> list[str]:
    response = client.get(TICKETS.format(org=org))
    assert response.status_code == 200, response.get_json()
    return [ticket["subject"] for ticket in response.get_json()["data"]]


def _counts(app) -> tuple[int, int, int]:
    with app.app_context(), platform_bypass("test"):
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Ticket, TicketMessage, NumberRequest)
        )


def test_a_member_opens_a_ticket_with_its_first_message_and_it_is_audited(app, world, as_):
    response = _open(as_("manager_a"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["status"], body["kind"], body["priority"], body["opened_by"]) == (
        "open",
        "support",
        "high",
        "manager@a.test",
    )
    assert [m["body"] for m in body["messages"]] == ["Since Monday."]
    assert body["first_response_seconds"] is None and body["number_request"] is None
    assert audit_rows(app, world.a, "support.ticket_opened")[-1].summary == f"#{body['id']} Calls drop"


def test_agents_see_their_own_tickets_and_managers_and_admins_all_of_the_orgs(world, as_):
    _open(as_("manager_a"), subject="manager's")
    assert _subjects(as_("agent_a"), "org-a") == ["ticket of a"]
    everything = ["manager's", "New number in US", "ticket of a"]
    assert _subjects(as_("manager_a"), "org-a") == everything
    assert _subjects(as_("admin_a"), "org-a") == everything
    assert _subjects(as_("read_a"), "org-a") == everything
    agent = as_("agent_a")
    manager_ticket = as_("admin_a").get(TICKETS.format(org="org-a")).get_json()["data"][0]["id"]
    assert agent.get(f"/api/v1/orgs/org-a/tickets/{manager_ticket}").status_code == 404
    assert (
        agent.post(f"/api/v1/orgs/org-a/tickets/{manager_ticket}/messages", json={"message": "me too"}).status_code
        == 404
    )


def test_a_person_in_two_orgs_sees_each_orgs_tickets_by_their_role_there(world, as_):
    both = as_("both")  # manager of A, agent of B
    assert _subjects(both, "org-a") == ["New number in US", "ticket of a"]
    assert _subjects(both, "org-b") == []
    assert _open(both, org="org-b", subject="from both").status_code == 201
    assert _subjects(both, "org-b") == ["from both"]
    assert "from both" not in _subjects(both, "org-a")
    assert sorted(_subjects(as_("admin_b"), "org-b")) == ["New number in US", "from both", "ticket of b"]


def test_org_b_never_reaches_org_as_ticket_by_id_list_or_reply(app, world, as_):
    a_ticket = world.tickets["a"]
    for principal in ("admin_b", "write_b"):
        client = as_(principal)
        assert client.get(f"/api/v1/orgs/org-b/tickets/{a_ticket}").status_code == 404
        assert client.post(f"/api/v1/orgs/org-b/tickets/{a_ticket}/messages", json={"message": "x"}).status_code == 404
        assert client.get(f"/api/v1/orgs/org-a/tickets/{a_ticket}").status_code == 404
        assert "ticket of a" not in _subjects(client, "org-b")
    assert _counts(app)[1] == 6  # the world's first messages and internal notes, no more


@pytest.mark.parametrize("principal", ["admin_a", "manager_a", "agent_a", "read_a", "write_a", "root", "platform"])
def test_internal_notes_are_in_no_api_answer(world, as_, principal):
    client = as_(principal)
    for url in (TICKETS.format(org="org-a"), f"/api/v1/orgs/org-a/tickets/{world.tickets['a']}"):
        response = client.get(url)
        assert response.status_code == 200 and INTERNAL_NOTE not in response.get_data(as_text=True)
    thread = client.get(f"/api/v1/orgs/org-a/tickets/{world.tickets['a']}").get_json()["messages"]
    assert [m["body"] for m in thread] == ["help a"]


def test_a_conversation_moves_through_the_statuses_and_records_its_times(app, world, as_, time_machine):
    time_machine.move_to(T0, tick=False)
    org, staff = as_("manager_a"), as_("root")
    ticket = _open(org).get_json()["id"]
    url = f"/api/v1/orgs/org-a/tickets/{ticket}"

    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    answered = staff.post(f"{url}/messages", json={"message": "Which number?"}).get_json()
    assert (answered["status"], answered["first_response_seconds"]) == ("waiting_on_org", 3600)
    assert answered["messages"][-1]["from_platform"] is True

    time_machine.move_to(T0 + timedelta(hours=2), tick=False)
    assert org.post(f"{url}/messages", json={"message": "+12125550101"}).get_json()["status"] == "waiting_on_platform"

    with app.app_context(), platform_bypass("test"):
        root = UserPrincipal(id=world.users["root"], email="root@platform.test", role="platform_admin")
        support.set_status(support.get_any_ticket(ticket), root, "resolved", now=T0 + timedelta(hours=5))
        db.session.commit()
    resolved = org.get(url).get_json()
    assert (resolved["status"], resolved["resolution_seconds"], resolved["first_response_seconds"]) == (
        "resolved",
        5 * 3600,
        3600,
    )

    time_machine.move_to(T0 + timedelta(hours=6), tick=False)
    reopened = org.post(f"{url}/messages", json={"message": "It happened again."}).get_json()
    assert (reopened["status"], reopened["resolved_at"], reopened["resolution_seconds"]) == (
        "waiting_on_platform",
        None,
        None,
    )
    assert "(reopened)" in audit_rows(app, world.a, "support.ticket_replied")[-1].summary

    with app.app_context(), platform_bypass("test"):
        support.set_status(support.get_any_ticket(ticket), root, "closed", now=T0 + timedelta(hours=7))
        db.session.commit()
    before = _counts(app)
    refused = org.post(f"{url}/messages", json={"message": "Hello?"})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "ticket_closed"
    assert _counts(app) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "  "}, "subject"),
        ({"message": ""}, "message"),
        ({"message": "x" * (support.MAX_MESSAGE_CHARS + 1)}, "message"),
        ({"priority": "whenever"}, "priority"),
        ({"category": "gossip"}, "category"),
        ({"number_request": {"action": "new", "country": "ZZ"}}, "country"),
        ({"number_request": {"action": "new", "country": "US", "e164": "+1212"}}, "e164"),
        ({"number_request": {"action": "release", "e164": B_ONLY}}, "e164"),
        ({"number_request": {"action": "move", "e164": A_ONLY, "to_org": "org-b"}}, "to_org"),
        ({"number_request": {"action": "swap"}}, "action"),
    ],
)
def test_bad_tickets_are_a_400_naming_the_field_and_nothing_is_written(app, world, as_, body, field):
    before = _counts(app)
    response = _open(as_("admin_a"), **body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["message"] and field in str(error["details"]), error
    assert _counts(app) == before


def test_bad_replies_are_refused_and_nothing_is_written(app, world, as_):
    client, before = as_("agent_a"), _counts(app)
    url = f"/api/v1/orgs/org-a/tickets/{world.tickets['a']}/messages"
    for body in ({"message": " "}, {}, {"message": "x" * (support.MAX_MESSAGE_CHARS + 1)}):
        response = client.post(url, json=body)
        assert response.status_code == 400 and "message" in response.get_json()["error"]["details"]
    assert _counts(app) == before


def test_asking_for_a_number_the_org_has_is_a_409(app, world, as_):
    before = _counts(app)
    response = _open(as_("admin_a"), number_request={"action": "new", "country": "US", "e164": A_ONLY})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "already_held"
    assert _counts(app) == before


def test_a_number_request_is_a_ticket_with_its_fields_and_its_decision(world, as_):
    response = _open(
        as_("agent_a"),
        subject="",
        message="For the new branch.",
        number_request={"action": "new", "country": "us", "area_code": "212", "label": "Branch"},
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["kind"], body["subject"], body["category"]) == ("number_request", "New number in US (212)", "numbers")
    assert body["number_request"] == {
        "action": "new",
        "country": "US",
        "area_code": "212",
        "label": "Branch",
        "e164": None,
        "decision": "pending",
        "decided_at": None,
        "refusal_reason": None,
    }
    release = _open(as_("admin_a"), subject="", number_request={"action": "release", "e164": MOVED})
    assert release.status_code == 400  # MOVED passed to org B at T: org A no longer holds it
