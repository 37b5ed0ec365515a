"""A person's account emails belong to no org, and are sent whoever asks, even inline inside a request
with no principal (the embedded default sends jobs inline): a forgotten password's link arrives by SMTP
and works; the outbox row says it was sent, and no org's scope sees it."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.helpers import csrf_token
from tests.world import USERS
from vsync.extensions import db
from vsync.models import OutboundEmail
from vsync.tenancy import platform_bypass, tenant


def test_a_reset_link_arrives_by_smtp_sent_inline_and_sets_the_password(mail_app, world, inbox):
    email = USERS["agent_a"][0]
    client = mail_app.test_client()
    asked = client.post("/forgot-password", data={"email": email, "csrf_token": csrf_token(client, "/forgot-password")})
    assert asked.status_code == 200
    [message] = inbox.wait_for(1)
    assert message["To"] == email and message["Subject"] == "Reset your vsync password"
    link = re.search(r"http://127\.0\.0\.1:5000(/set-password/\S+)", message.get_body(("plain",)).get_content())[1]
    form = {"password": "a fresh long password", "confirm": "a fresh long password"}
    assert client.post(link, data={**form, "csrf_token": csrf_token(client, link)}).status_code == 302
    notice = inbox.wait_for(2)[1]
    assert notice["To"] == email and "A new password was set" in notice.get_body(("plain",)).get_content()
    with mail_app.app_context(), platform_bypass("test: read the outbox"):
        rows = db.session.execute(select(OutboundEmail.org_id, OutboundEmail.status)).all()
        assert [tuple(row) for row in rows if row.org_id is None] == [(None, "sent"), (None, "sent")]
    with mail_app.app_context(), tenant(world.a):
        assert db.session.scalars(select(OutboundEmail.id).where(OutboundEmail.org_id.is_(None))).all() == []
