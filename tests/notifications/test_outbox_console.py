"""The platform console's outbox: every org's messages with their status, filtered; a message's text
with its links' tokens redacted; a failed one sent again once, audited; nobody else may open it."""

from __future__ import annotations

from sqlalchemy import select

from tests import factories
from tests.helpers import csrf_token, login
from vsync.extensions import db
from vsync.models import AuditEvent, OutboundEmail
from vsync.tenancy import platform_bypass

OUTBOX = "/admin/platform/outbox/"


def _rows() -> dict[str, OutboundEmail]:
    with platform_bypass("test"):
        rows = {row.to_address: row for row in db.session.scalars(select(OutboundEmail))}
        db.session.expunge_all()
        return rows


def test_platform_admins_read_every_orgs_outbox_redacted_and_send_a_failed_message_again_once(mail_app, inbox):
    with mail_app.app_context():
        factories.make_org("acme")
        factories.make_org("globex")
        factories.make_user("root@platform.test", platform_admin=True)
        inbox.refuse = 3  # every attempt of the next invitation (one and two retries) is refused
        factories.make_user("ana@acme.test", org_slug="acme", role="org_admin")
        factories.make_user("bob@globex.test", org_slug="globex", role="manager")
        rows = _rows()
    failed, sent = rows["ana@acme.test"], rows["bob@globex.test"]
    assert (failed.status, failed.attempts, sent.status) == ("failed", 3, "sent")
    token = failed.context["set_password_url"].rsplit("/", 1)[1]

    org_admin = mail_app.test_client()
    assert login(org_admin, "ana@acme.test").status_code == 302
    assert org_admin.get(OUTBOX).status_code == 403
    assert org_admin.get(f"{OUTBOX}details/?id={failed.id}").status_code == 403

    root = mail_app.test_client()
    assert login(root, "root@platform.test").status_code == 302
    page = root.get(OUTBOX).get_data(as_text=True)
    assert "ana@acme.test" in page and "bob@globex.test" in page and "451" in page
    only_failed = root.get(OUTBOX + "?flt0_0=failed").get_data(as_text=True)
    assert "ana@acme.test" in only_failed and "bob@globex.test" not in only_failed

    detail = root.get(f"{OUTBOX}details/?id={failed.id}").get_data(as_text=True)
    assert "/set-password/[redacted]" in detail and token not in detail and "Send again" in detail
    assert "Send again" not in root.get(f"{OUTBOX}details/?id={sent.id}").get_data(as_text=True)

    inbox.clear()
    form = {"csrf_token": csrf_token(root, OUTBOX), "retry-row_id": str(failed.id)}
    assert root.post(OUTBOX + "retry", data=form).status_code == 302
    again = root.post(OUTBOX + "retry", data=form, follow_redirects=True).get_data(as_text=True)
    assert "Only a failed message is sent again; this one is sent." in again
    assert [m["To"] for m in inbox.wait_for(1)] == ["ana@acme.test"]
    with mail_app.app_context():
        assert (_rows()["ana@acme.test"].status, _rows()["ana@acme.test"].attempts) == ("sent", 4)
        with platform_bypass("test"):
            (retried,) = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "email.retried"))
            assert retried.actor == "root@platform.test" and "invitation to ana@acme.test" in retried.summary
