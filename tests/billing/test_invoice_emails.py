"""Issued invoices and credit notes are emailed to the org's billing contacts, PDF and CSV attached,
over a real SMTP server on loopback: once per contact however often the invoice job runs, never to
another org's contacts, and not at all without contacts."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
import time_machine
from pypdf import PdfReader
from sqlalchemy import select

from tests.billing.conftest import BORN
from tests.factories import make_org
from tests.notifications.conftest import inbox, smtp_config, smtp_server  # noqa: F401 (fixtures)
from vsync import create_app
from vsync.extensions import db
from vsync.jobs.billing import make_due_invoices
from vsync.models import BillingSettings, Invoice, OutboundEmail
from vsync.services.billing import invoices, plans
from vsync.services.billing.money import format_money
from vsync.tenancy import platform_bypass, tenant

MONTH_OVER = "2026-12-01T06:00:00Z"


@pytest.fixture(scope="session")
def mail_app(app, smtp_server):  # noqa: F811 (the imported fixture)
    """Jobs inline (no Redis), email to the loopback SMTP server."""
    return create_app(smtp_config(smtp_server, REDIS_URL=None))


def _set_contacts(org_id: int, contacts: str | None) -> None:
    with platform_bypass("test setup"):
        settings = db.session.scalar(select(BillingSettings).where(BillingSettings.org_id == org_id))
        if settings is None:
            settings = BillingSettings(org_id=org_id)
            db.session.add(settings)
        settings.contacts = contacts
        db.session.commit()


def _second_org(basic_id: int) -> int:
    with time_machine.travel(BORN, tick=False):
        org_id = make_org("globex")
    with platform_bypass("test setup"):
        plans.subscribe(org_id, basic_id, BORN.date())
        db.session.commit()
    _set_contacts(org_id, "ap@globex.test")
    return org_id


def _attachments(message) -> dict[str, bytes | str]:
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _invoice_of(org_id: int) -> Invoice:
    with tenant(org_id):
        return db.session.scalars(select(Invoice).where(Invoice.org_id == org_id)).one()


def test_each_contact_gets_the_invoice_once_and_no_other_orgs_contacts_do(mail_app, billed, inbox):  # noqa: F811
    with mail_app.app_context():
        _set_contacts(billed.org_id, "Pay@Acme.test\n\n  boss@acme.test \nnot an address\npay@acme.test")
        globex_id = _second_org(billed.basic_id)
        make_due_invoices(MONTH_OVER)
        make_due_invoices(MONTH_OVER)  # the cron job again: nothing is sent twice
        acme, globex = _invoice_of(billed.org_id), _invoice_of(globex_id)
        with platform_bypass("test"):
            rows = db.session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "invoice")).all()
            assert sorted((row.org_id, row.to_address, row.status) for row in rows) == sorted(
                [
                    (billed.org_id, "pay@acme.test", "sent"),
                    (billed.org_id, "boss@acme.test", "sent"),
                    (globex_id, "ap@globex.test", "sent"),
                ]
            )
    messages = inbox.wait_for(3)
    assert len(messages) == 3
    by_recipient = {message["To"]: message for message in messages}
    assert set(by_recipient) == {"pay@acme.test", "boss@acme.test", "ap@globex.test"}
    for to, invoice, org_name in [
        ("pay@acme.test", acme, "Acme"),
        ("boss@acme.test", acme, "Acme"),
        ("ap@globex.test", globex, "Globex"),
    ]:
        message = by_recipient[to]
        assert message["Subject"].lower() == f"{org_name}: Invoice {invoice.number}".lower()
        files = _attachments(message)
        assert set(files) == {f"{invoice.number}.pdf", f"{invoice.number}.csv"}
        pdf = _pdf_text(files[f"{invoice.number}.pdf"])
        assert f"Invoice {invoice.number}" in pdf
        assert f"Total: {format_money(invoice.total, invoice.currency)}" in pdf
        assert f"Total,{format_money(invoice.total, invoice.currency)}" in files[f"{invoice.number}.csv"]
    assert acme.number != globex.number
    assert acme.total != globex.total


def test_a_credit_note_is_emailed_too(mail_app, billed, inbox):  # noqa: F811
    with mail_app.app_context():
        _set_contacts(billed.org_id, "pay@acme.test")
        make_due_invoices(MONTH_OVER)
        invoice = _invoice_of(billed.org_id)
        with tenant(billed.org_id):
            note = invoices.credit_note(invoice.id, "5.00", "outage", datetime(2026, 12, 2, tzinfo=UTC))
            number, total = note.number, format_money(note.total, note.currency)
            db.session.commit()
    messages = inbox.wait_for(2)
    assert [m["Subject"] for m in messages][1].endswith(f"Credit note {number}")
    pdf = _pdf_text(_attachments(messages[1])[f"{number}.pdf"])
    assert f"Credit note {number}" in pdf and f"Total: {total}" in pdf


def test_without_contacts_nothing_is_queued(mail_app, billed, inbox):  # noqa: F811
    with mail_app.app_context():
        _set_contacts(billed.org_id, None)
        make_due_invoices(MONTH_OVER)
        assert _invoice_of(billed.org_id).number
        with platform_bypass("test"):
            assert db.session.scalars(select(OutboundEmail)).all() == []
    assert inbox.messages == []
