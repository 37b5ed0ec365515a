"""Support ticket emails over real SMTP: each event reaches the people concerned and nobody else, in
one org only, following their preference, once however often it is told, and never with an internal
note in it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import T0, make_user
from tests.helpers import login
from tests.world import BOTH, INTERNAL_NOTE, ROOT
from vsync.auth.principals import UserPrincipal
from vsync.extensions import db
from vsync.models import Membership
from vsync.models.support import Ticket
from vsync.services import support
from vsync.services.notifications import preferences
from vsync.tenancy import platform_bypass, tenant

STAFF2 = "staff2@platform.test"
LATER = T0 + timedelta(days=2)


@pytest.fixture
def root(world) -> UserPrincipal:
    return UserPrincipal(id=world.users["root"], email=ROOT, role="platform_admin")


@pytest.fixture
def staff2(mail_app, world) -> UserPrincipal:
    with mail_app.app_context():
        return UserPrincipal(id=make_user(STAFF2, platform_admin=True), email=STAFF2, role="platform_admin")


def member(world, name: str, email: str) -> UserPrincipal:
    return UserPrincipal(id=world.users[name], email=email, role="user")


def delivered(inbox, count: int) -> dict[str, list]:
    """The messages sent, by recipient, once `count` have arrived (and no more)."""
    messages = inbox.wait_for(count)
    assert len(messages) == count, [m["To"] for m in messages]
    found: dict[str, list] = {}
    for message in messages:
        found.setdefault(message["To"], []).append(message)
    return found


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content() + message.get_body(("html",)).get_content()


def staff_act(app, ticket_id: int, act) -> None:
    with app.app_context(), platform_bypass("test"):
        act(db.session.get_one(Ticket, ticket_id))
        db.session.commit()


def org_act(app, org_id: int, ticket_id: int, act) -> None:
    with app.app_context(), tenant(org_id):
        act(db.session.get_one(Ticket, ticket_id))
        db.session.commit()


def test_a_new_ticket_goes_to_every_platform_admin_and_nobody_in_the_org(mail_app, inbox, world, staff2):
    agent = member(world, "agent_a", "agent@a.test")
    with mail_app.app_context(), tenant(world.a):
        ticket = support.open_ticket(world.a, agent, subject="Phones down", category="problem", message="all of them")
        db.session.commit()
        ticket_id = ticket.id
    sent = delivered(inbox, 2)
    assert set(sent) == {ROOT, STAFF2}
    body = text_of(sent[ROOT][0])
    assert "all of them" in body and f"/admin/platform/tickets/details/?id={ticket_id}" in body
    assert "Phones down" in sent[ROOT][0]["Subject"] and sent[ROOT][0]["List-Unsubscribe"] is None


def test_an_org_reply_goes_to_the_assignee_only(mail_app, inbox, world, root, staff2):
    ticket_id = world.tickets["a"]
    staff_act(mail_app, ticket_id, lambda t: support.assign_ticket(t, root, staff2.id))
    agent = member(world, "agent_a", "agent@a.test")
    org_act(mail_app, world.a, ticket_id, lambda t: support.reply(t, agent, "still broken", now=LATER))
    sent = delivered(inbox, 1)
    assert set(sent) == {STAFF2} and "still broken" in text_of(sent[STAFF2][0])


def test_a_staff_reply_goes_to_the_opener_and_the_org_admins_of_that_org_only(mail_app, inbox, world, root):
    staff_act(mail_app, world.tickets["a"], lambda t: support.reply(t, root, "try turning it off", now=LATER))
    sent = delivered(inbox, 2)
    assert set(sent) == {"agent@a.test", "admin@a.test"}  # not the manager, nor anyone of org B
    for (message,) in sent.values():
        body = text_of(message)
        assert "try turning it off" in body and "/admin/orgs/org-a/tickets/details/?id=" in body
        assert INTERNAL_NOTE not in body
        unsubscribe = str(message["List-Unsubscribe"]).strip()
        assert unsubscribe.startswith("<http") and "/unsubscribe/" in unsubscribe
    inbox.clear()
    staff_act(mail_app, world.tickets["b"], lambda t: support.reply(t, root, "for b", now=LATER))
    assert set(delivered(inbox, 2)) == {"agent@b.test", "admin@b.test"}


def test_a_status_change_is_told_to_the_opener_and_org_admins(mail_app, inbox, world, root):
    staff_act(mail_app, world.tickets["b"], lambda t: support.set_status(t, root, "resolved", now=LATER))
    sent = delivered(inbox, 2)
    assert set(sent) == {"agent@b.test", "admin@b.test"}
    assert all("now resolved" in message["Subject"] for (message,) in sent.values())


def test_a_decision_goes_to_the_requester_and_the_org_admins(mail_app, inbox, world, root):
    with mail_app.app_context(), platform_bypass("test"):
        support.refuse_number_request(world.number_requests["a"], root, "none left in 212", now=LATER)
        db.session.commit()
    sent = delivered(inbox, 1)  # the requester is org A's admin
    assert set(sent) == {"admin@a.test"} and "Refused: none left in 212" in text_of(sent["admin@a.test"][0])


def test_a_person_who_turned_support_emails_off_gets_none(mail_app, inbox, world, root):
    with mail_app.app_context(), tenant(world.a):
        agent = db.session.scalar(select(Membership).where(Membership.user_id == world.users["agent_a"]))
        preferences.set_preferences(agent, {preferences.SUPPORT: "off"}, actor="test")
        db.session.commit()
    staff_act(mail_app, world.tickets["a"], lambda t: support.reply(t, root, "hello", now=LATER))
    assert set(delivered(inbox, 1)) == {"admin@a.test"}


def test_an_internal_note_sends_nothing_and_is_in_no_email(mail_app, inbox, world, root):
    staff_act(mail_app, world.tickets["a"], lambda t: support.add_internal_note(t, root, "secret plan"))
    staff_act(mail_app, world.tickets["a"], lambda t: support.set_status(t, root, "resolved", now=LATER))
    agent = member(world, "agent_a", "agent@a.test")
    org_act(mail_app, world.a, world.tickets["a"], lambda t: support.reply(t, agent, "thanks", now=LATER))
    messages = inbox.wait_for(3)
    assert len(messages) == 3  # the status change (2) and the org reply (1): the note told nobody
    assert not any("secret plan" in text_of(m) or INTERNAL_NOTE in text_of(m) for m in messages)


def test_the_same_event_told_again_sends_once(mail_app, inbox, world, root):
    staff_act(mail_app, world.tickets["a"], lambda t: support.reply(t, root, "once", now=LATER))
    staff_act(mail_app, world.tickets["a"], lambda t: support.ticket_event_for_notification(t, "replied"))
    staff_act(mail_app, world.tickets["b"], lambda t: support.set_status(t, root, "closed", now=LATER))
    staff_act(mail_app, world.tickets["b"], lambda t: support.ticket_event_for_notification(t, "status_changed"))
    sent = delivered(inbox, 4)
    assert {to: len(messages) for to, messages in sent.items()} == {
        "agent@a.test": 1,
        "admin@a.test": 1,
        "agent@b.test": 1,
        "admin@b.test": 1,
    }


def test_the_preference_is_on_the_notifications_page_and_its_link_turns_it_off(mail_app, inbox, world, root):
    client = mail_app.test_client()
    login(client, BOTH)
    assert "Support tickets" in client.get("/admin/orgs/org-a/notifications/").get_data(as_text=True)
    staff_act(mail_app, world.tickets["a"], lambda t: support.reply(t, root, "hi", now=LATER))
    link = delivered(inbox, 2)["admin@a.test"][0]["List-Unsubscribe"].strip().strip("<>")
    path = link[link.index("/unsubscribe/") :]
    assert mail_app.test_client().post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with mail_app.app_context(), tenant(world.a):
        admin = db.session.scalar(select(Membership).where(Membership.user_id == world.users["admin_a"]))
        assert preferences.preferences_of(admin)[preferences.SUPPORT] == "off"
