"""With email configured, an added member's set-password link goes to them by email (from the console,
the API and the CLI alike); without it (the suite's default app, the embedded default) the edges show
the link as before."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.helpers import csrf_token, login
from tests.world import USERS
from vsync.extensions import db
from vsync.models import AuditEvent, OutboundEmail
from vsync.tenancy import tenant


def link_in(message) -> str:
    return re.search(r"http://127\.0\.0\.1:5000(/set-password/\S+)", message.get_body(("plain",)).get_content())[1]


def test_a_member_added_in_the_console_gets_the_link_by_email_and_it_works(mail_app, world, inbox):
    client = mail_app.test_client()
    login(client, USERS["admin_a"][0])
    token = csrf_token(client, "/admin/orgs/org-a/members/")
    response = client.post(
        "/admin/orgs/org-a/members/add",
        follow_redirects=True,
        data={"add-email": "new@a.test", "add-role": "manager", "csrf_token": token},
    )
    page = response.get_data(as_text=True)
    assert "was emailed to new@a.test" in page and "/set-password/" not in page
    # The admin's sign-in from this new client is told to them too (`vsync.auth.devices`).
    told = inbox.wait_for(2)
    [message] = [each for each in told if each["To"] == "new@a.test"]
    assert message["To"] == "new@a.test" and message["Subject"] == "You are now manager of Org-A in vsync"
    assert "choose one here" in message.get_body(("html",)).get_content()
    assert "For <strong>new@a.test</strong>" in mail_app.test_client().get(link_in(message)).get_data(as_text=True)
    with mail_app.app_context(), tenant(world.a):
        assert db.session.scalars(select(OutboundEmail.status).where(OutboundEmail.kind == "invitation")).all() == [
            "sent"
        ]
        assert (
            "emailed"
            in db.session.scalars(
                select(AuditEvent.summary).where(AuditEvent.action == "member.added").order_by(AuditEvent.id.desc())
            ).first()
        )
    with mail_app.app_context(), tenant(world.b):
        assert db.session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "invitation")).all() == []


def test_the_cli_says_the_link_was_emailed(mail_app, world, inbox):
    result = mail_app.test_cli_runner().invoke(
        args=["add-member", "org-b", "new@b.test", "--role", "agent", "--extension", "205"]
    )
    assert result.exit_code == 0, result.output
    assert "emailed" in result.output and "/set-password/" not in result.output
    [message] = inbox.wait_for(1)
    assert message["To"] == "new@b.test" and "Org-B" in message["Subject"]


def test_without_email_configured_the_link_is_shown_and_nothing_is_sent(app, world, inbox):
    result = app.test_cli_runner().invoke(args=["add-member", "org-b", "new@b.test", "--role", "agent"])
    assert "/set-password/" in result.output
    with app.app_context(), tenant(world.b):
        assert db.session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "invitation")).all() == []
    assert inbox.messages == []
