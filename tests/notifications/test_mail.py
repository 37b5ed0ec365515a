"""Email really leaves: over SMTP to a server on loopback, multipart, retried and recorded; at most once
per outbox row; and, in the embedded default, as `.eml` files under the outbox folder."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import select

from tests import factories
from tests.helpers import app_config
from vsync import create_app
from vsync.extensions import db
from vsync.jobs.notifications import send_email
from vsync.models import Organization, OutboundEmail
from vsync.services.notifications import mail
from vsync.tenancy import tenant


def send_test(app, org_id: int, to: str = "ops@example.com") -> int:
    """Decide a test message in the org's scope and commit, which dispatches it; its outbox id."""
    with app.app_context(), tenant(org_id):
        email_id = mail.send_test_email(db.session.get(Organization, org_id), to).id
        db.session.commit()
        return email_id


def outbox_row(app, org_id: int, email_id: int) -> OutboundEmail | None:
    with app.app_context(), tenant(org_id):
        row = db.session.get(OutboundEmail, email_id)
        if row is not None:
            db.session.expunge(row)
        return row


def test_a_message_leaves_over_smtp_as_text_and_html_in_the_orgs_name(mail_app, inbox):
    with mail_app.app_context():
        org_id = factories.make_org("acme")
    email_id = send_test(mail_app, org_id)
    [message] = inbox.wait_for(1)
    assert message["To"] == "ops@example.com"
    assert "Acme" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Acme" in text and "<strong>Acme</strong>" in html and "<" not in text
    row = outbox_row(mail_app, org_id, email_id)
    assert (row.status, row.attempts, row.error) == ("sent", 1, None)
    assert row.message_id == message["Message-ID"]


def test_a_refused_send_is_retried_and_each_failure_recorded(mail_app, inbox):
    with mail_app.app_context():
        org_id = factories.make_org("acme")
    inbox.refuse = 1
    email_id = send_test(mail_app, org_id)
    assert len(inbox.wait_for(1)) == 1
    row = outbox_row(mail_app, org_id, email_id)
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_server_refusing_every_attempt_leaves_a_failed_row_with_its_error_and_sends_nothing(mail_app, inbox):
    with mail_app.app_context():
        org_id = factories.make_org("acme")
    inbox.refuse = 3
    email_id = send_test(mail_app, org_id)
    row = outbox_row(mail_app, org_id, email_id)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "451" in row.error
    assert inbox.messages == []


def test_a_server_that_stalls_times_out_and_the_send_is_retried(mail_app, inbox):
    with mail_app.app_context():
        org_id = factories.make_org("acme")
    inbox.stall, inbox.stall_seconds = 1, 3  # over MAIL_TIMEOUT (2 s)
    email_id = send_test(mail_app, org_id)
    assert len(inbox.wait_for(1)) == 1
    row = outbox_row(mail_app, org_id, email_id)
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_message_is_sent_once_however_often_its_job_runs(mail_app, inbox):
    with mail_app.app_context():
        org_id = factories.make_org("acme")
    email_id = send_test(mail_app, org_id)
    with mail_app.app_context():
        assert send_email(org_id, email_id) == "skipped"
        assert send_email(org_id, email_id) == "skipped"
    assert len(inbox.wait_for(1)) == 1
    assert outbox_row(mail_app, org_id, email_id).attempts == 1


def test_another_orgs_job_neither_sees_nor_sends_a_message(mail_app, inbox):
    with mail_app.app_context():
        org_a, org_b = factories.make_org("acme"), factories.make_org("globex")
    inbox.refuse = 3
    email_id = send_test(mail_app, org_a)  # fails: stays failed, not queued; make a queued one instead
    with mail_app.app_context(), tenant(org_a):
        row = db.session.get(OutboundEmail, email_id)
        row.status = "queued"
        db.session.commit()
    with mail_app.app_context():
        assert send_email(org_b, email_id) == "skipped"
        with tenant(org_b):
            assert db.session.scalars(select(OutboundEmail)).all() == []
    assert outbox_row(mail_app, org_a, email_id).status == "queued"
    assert outbox_row(mail_app, org_b, email_id) is None


def test_the_embedded_default_writes_each_message_as_an_eml_file(app, tmp_path):
    embedded = create_app(
        app_config(
            REDIS_URL=None,
            MAIL_FILE_PATH=str(tmp_path / "outbox"),
            MAIL_BACKEND="vsync.services.notifications.mail.OutboxFilesEmailBackend",
        )
    )
    with embedded.app_context():
        org_id = factories.make_org("acme")
        assert mail.outbox_folder() == str(tmp_path / "outbox")
    first, second = send_test(embedded, org_id, "a@example.com"), send_test(embedded, org_id, "b@example.com")
    files = sorted(Path(tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    messages = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(m["To"] for m in messages) == ["a@example.com", "b@example.com"]
    assert all(m.get_body(("html",)) is not None for m in messages)
    assert {outbox_row(embedded, org_id, i).status for i in (first, second)} == {"sent"}


def test_no_smtp_host_means_the_outbox_folder_under_instance(tmp_path):
    from vsync.config import load_config

    config = load_config(str(tmp_path), environ={})
    assert config["MAIL_BACKEND"].endswith("OutboxFilesEmailBackend")
    assert config["MAIL_FILE_PATH"] == str(tmp_path / "outbox")
    smtp = load_config(
        str(tmp_path),
        environ={
            "VSYNC_SMTP_HOST": "smtp.example.com",
            "VSYNC_SMTP_USER": "u",
            "VSYNC_SMTP_PASSWORD": "p",
            "VSYNC_MAIL_SENDER": "ops@example.com",
        },
    )
    assert (smtp["MAIL_BACKEND"], smtp["MAIL_PORT"], smtp["MAIL_USE_TLS"], smtp["MAIL_USE_SSL"]) == (
        "smtp",
        587,
        True,
        False,
    )
    assert smtp["MAIL_TIMEOUT"] == 10
    tls = load_config(str(tmp_path), environ={"VSYNC_SMTP_HOST": "h", "VSYNC_SMTP_SECURITY": "tls"})
    assert (tls["MAIL_PORT"], tls["MAIL_USE_SSL"], tls["MAIL_USE_TLS"]) == (465, True, False)
