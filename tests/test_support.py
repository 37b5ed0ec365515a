"""Number requests decided by platform staff: approval performs the change through the numbers
service at the moment of approval and links it, exactly once even when two staff approve at once;
refusal needs a reason; a number another org took meanwhile is refused with nothing assigned."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import T0, make_number
from tests.world import A_ONLY, B_ONLY, ROOT, SHARED
from vsync.auth.principals import UserPrincipal
from vsync.errors import Conflict, ValidationError
from vsync.extensions import db
from vsync.models import AuditEvent, NumberAssignment, PhoneNumber
from vsync.models.support import NumberRequest, Ticket
from vsync.services import support
from vsync.tenancy import platform_bypass, tenant

FREE = "+12125550199"
APPROVED_AT = T0 + timedelta(days=3)


@pytest.fixture
def root(world) -> UserPrincipal:
    return UserPrincipal(id=world.users["root"], email=ROOT, role="platform_admin")


@pytest.fixture
def requester(world) -> UserPrincipal:
    return UserPrincipal(id=world.users["admin_a"], email="admin@a.test", role="user")


def _request(app, org_id: int, principal, **fields) -> int:
    with app.app_context(), tenant(org_id):
        ticket = support.open_number_request(org_id, principal, message="please", now=T0 + timedelta(days=1), **fields)
        db.session.commit()
        return ticket.id


def _periods(app, e164: str) -> list[tuple[int, object, object]]:
    with app.app_context(), platform_bypass("test"):
        return [
            (p.org_id, p.assigned_at, p.unassigned_at)
            for p in db.session.scalars(
                select(NumberAssignment).join(PhoneNumber).where(PhoneNumber.e164 == e164).order_by(NumberAssignment.id)
            )
        ]


def _approve(app, ticket_id: int, principal, **kwargs):
    with app.app_context(), platform_bypass("test"):
        request = support.approve_number_request(ticket_id, principal, now=APPROVED_AT, **kwargs)
        db.session.commit()
        return request.assignment_id


def test_approving_a_new_number_assigns_it_from_the_approval_and_links_the_assignment(app, world, root, requester):
    ticket_id = _request(app, world.a, requester, action="new", country="US", area_code="212", label="Branch")
    assignment_id = _approve(app, ticket_id, root, e164=FREE)
    assert _periods(app, FREE) == [(world.a, APPROVED_AT, None)]
    with app.app_context(), tenant(world.a):
        ticket = db.session.get(Ticket, ticket_id)
        request = ticket.number_request
        assert (request.decision, request.decided_by, request.decided_at, request.assignment_id) == (
            "approved",
            root.label,
            APPROVED_AT,
            assignment_id,
        )
        assert (ticket.status, ticket.resolved_at, ticket.first_response_at) == ("resolved", APPROVED_AT, APPROVED_AT)
        assert support.org_thread(ticket)[-1].body == f"Approved: {FREE} assigned to this organisation."
    with app.app_context(), platform_bypass("test"):
        actions = list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.org_id == world.a)))
    assert {"support.number_requested", "number.assigned", "support.number_request_approved"} <= set(actions)


def test_approving_a_release_ends_the_period_at_the_approval(app, world, root, requester):
    ticket_id = _request(app, world.a, requester, action="release", e164=A_ONLY)
    _approve(app, ticket_id, root)
    assert _periods(app, A_ONLY)[-1] == (world.a, T0 - timedelta(days=30), APPROVED_AT)


def test_approving_a_move_ends_one_orgs_period_and_starts_the_others_at_the_same_instant(app, world, root):
    both = UserPrincipal(id=world.users["both"], email="both@ab.test", role="user")
    ticket_id = _request(app, world.a, both, action="move", e164=A_ONLY, to_org_id=world.b)
    ended = _approve(app, ticket_id, root)
    assert _periods(app, A_ONLY)[-2:] == [(world.a, T0 - timedelta(days=30), APPROVED_AT), (world.b, APPROVED_AT, None)]
    with app.app_context(), platform_bypass("test"):
        assert db.session.get(NumberAssignment, ended).org_id == world.a  # the request links its own org's period


def test_approving_twice_is_a_409_and_assigns_once(app, world, root, requester):
    ticket_id = _request(app, world.a, requester, action="new", country="US", e164=FREE)
    _approve(app, ticket_id, root)
    with pytest.raises(Conflict) as refused:
        _approve(app, ticket_id, root)
    assert refused.value.code == "already_decided"
    assert len(_periods(app, FREE)) == 1


def test_a_number_another_org_took_meanwhile_is_refused_and_nothing_is_assigned(app, world, root, requester):
    ticket_id = _request(app, world.a, requester, action="new", country="US", e164=B_ONLY)
    before = _periods(app, B_ONLY)
    with pytest.raises(Conflict) as refused:
        _approve(app, ticket_id, root)
    assert refused.value.code == "number_taken"
    assert _periods(app, B_ONLY) == before
    with app.app_context(), tenant(world.a):
        request = db.session.scalar(select(NumberRequest).where(NumberRequest.ticket_id == ticket_id))
        assert request.decision == "pending"


def test_refusing_needs_a_reason_and_the_org_reads_it(app, world, root, requester):
    ticket_id = _request(app, world.a, requester, action="new", country="US")
    with app.app_context(), platform_bypass("test"):
        with pytest.raises(ValidationError):
            support.refuse_number_request(ticket_id, root, "  ")
        support.refuse_number_request(ticket_id, root, "No numbers left in 212.", now=APPROVED_AT)
        db.session.commit()
    with app.app_context(), tenant(world.a):
        ticket = db.session.get(Ticket, ticket_id)
        assert (ticket.number_request.decision, ticket.number_request.refusal_reason) == (
            "refused",
            "No numbers left in 212.",
        )
        assert support.org_thread(ticket)[-1].body == "Refused: No numbers left in 212."
    with pytest.raises(Conflict):
        _approve(app, ticket_id, root, e164=FREE)
    assert _periods(app, FREE) == []


def test_org_members_cannot_decide_or_write_internal_notes(app, world, requester):
    ticket_id = _request(app, world.a, requester, action="new", country="US", e164=FREE)
    with app.app_context(), tenant(world.a):
        ticket = db.session.get(Ticket, ticket_id)
        for act in (
            lambda: support.add_internal_note(ticket, requester, "x"),
            lambda: support.set_status(ticket, requester, "closed"),
            lambda: support.approve_number_request(ticket_id, requester),
        ):
            with pytest.raises(ValidationError):
                act()


def test_two_staff_approving_at_once_make_exactly_one_assignment(app, world, root, requester):
    """Two real connections: the first holds the request's row lock while it waits; the second blocks on
    it, then finds the request decided."""
    with app.app_context():
        make_number(FREE)
    ticket_id = _request(app, world.a, requester, action="new", country="US", e164=FREE)
    locked, outcomes = threading.Event(), {}

    def first():
        with app.app_context(), platform_bypass("test"):
            support.approve_number_request(ticket_id, root, now=APPROVED_AT)
            locked.set()
            time.sleep(1.0)
            db.session.commit()
            outcomes["first"] = "approved"

    def second():
        locked.wait(10)
        started = time.monotonic()
        with app.app_context(), platform_bypass("test"):
            try:
                support.approve_number_request(ticket_id, root, now=APPROVED_AT)
                db.session.commit()
                outcomes["second"] = "approved"
            except Conflict as exc:
                db.session.rollback()
                outcomes["second"] = exc.code
        outcomes["waited"] = time.monotonic() - started

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert (outcomes["first"], outcomes["second"]) == ("approved", "already_decided")
    assert outcomes["waited"] > 0.5  # it really waited for the first one's lock
    assert _periods(app, FREE) == [(world.a, APPROVED_AT, None)]
    with app.app_context(), platform_bypass("test"):
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "support.number_request_approved")
            )
            == 1
        )


def test_a_shared_number_cannot_be_released_by_an_org_that_does_not_hold_it(app, world, requester):
    agent_b = UserPrincipal(id=world.users["agent_b"], email="agent@b.test", role="user")
    with app.app_context(), tenant(world.b):
        with pytest.raises(ValidationError):
            support.open_number_request(world.b, agent_b, action="release", e164=A_ONLY, message="x")
        assert support.open_number_request(world.b, agent_b, action="release", e164=SHARED, message="x").id
