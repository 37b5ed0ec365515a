"""Invoices worked out by hand to the cent; one invoice per org and month; gapless numbers; the
life of an invoice; the CSV and the PDF saying the same; bad input refused with the field named and
nothing written."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from pypdf import PdfReader
from sqlalchemy import func, select

from tests.billing.conftest import BORN
from tests.factories import make_org
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import AuditEvent, BillingLock, Invoice, Organization, Payment, Plan, Subscription
from vsync.services.billing import documents, invoices, locks, plans
from vsync.tenancy import platform_bypass, tenant

ISSUED = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)

# Basic (per started minute) 1-15 Nov, Pro (per second) 16-30 Nov; each half of the month's fee and
# allowances. Basic: 2 + 10 + 1 + 0 minutes = 13 over 5 included: 8 x 0.10; 3 SMS over 1: 2 x 0.05;
# 15 number-days of N1, 15 included. Pro: 91 s + 29 s = 2 minutes x 0.02; 1 SMS x 0.01; 30
# number-days (N1 and N2) over 15 included: 15 x 3.00 / 30. Tax 10 % of 62.45 = 6.245: half-up 6.25.
EXPECTED_LINES = [
    ("fee", Decimal("15.00")),
    ("minutes", Decimal("0.80")),
    ("sms", Decimal("0.10")),
    ("fee", Decimal("45.00")),
    ("minutes", Decimal("0.04")),
    ("sms", Decimal("0.01")),
    ("numbers", Decimal("1.50")),
]


def _invoice(app, billed, now=ISSUED) -> int:
    with app.app_context(), tenant(billed.org_id):
        invoice = invoices.make_month_invoice(billed.org_id, 2026, 11, now)
        db.session.commit()
        return invoice.id


def test_a_month_with_a_plan_change_adds_up_to_the_cent(app, billed):
    invoice_id = _invoice(app, billed)
    with app.app_context(), tenant(billed.org_id):
        invoice = db.session.get(Invoice, invoice_id)
        assert [(line.kind, line.amount) for line in invoice.lines] == EXPECTED_LINES
        assert "prorated 15/30 days" in invoice.lines[0].description
        assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("62.45"), Decimal("6.25"), Decimal("68.70"))
        assert (invoice.number, invoice.status, invoice.currency) == ("INV-2026-000001", "open", "USD")


def test_making_the_invoice_again_returns_the_same_one_and_takes_no_number(app, billed):
    first = _invoice(app, billed)
    assert _invoice(app, billed) == first
    with app.app_context(), platform_bypass("test"):
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def test_a_plan_change_never_rewrites_a_past_invoice(app, billed):
    invoice_id = _invoice(app, billed)
    with app.app_context(), platform_bypass("test"):
        newer = plans.save_plan(code="pro", name="Pro", currency="USD", rounding="second", monthly_fee="999")
        db.session.commit()
        assert newer.version == 2
        assert db.session.get(Plan, billed.pro_id).monthly_fee == Decimal("90.00")
        assert db.session.get(Invoice, invoice_id).total == Decimal("68.70")


def test_payments_credit_notes_and_statuses(app, billed):
    invoice_id = _invoice(app, billed)
    with app.app_context(), platform_bypass("test"):
        invoices.record_payment(invoice_id, "50.00", date(2026, 12, 3), ISSUED)
        note = invoices.credit_note(invoice_id, "10.00", "goodwill", ISSUED)
        assert (note.number, note.total) == ("CN-2026-000001", Decimal("-11.00"))
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.status, invoice.balance) == ("open", Decimal("7.70"))
        invoices.record_payment(invoice_id, "7.70", date(2026, 12, 4), ISSUED)
        assert invoice.status == "paid"
        db.session.commit()


def _counts() -> tuple:
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Plan, Subscription, Payment, BillingLock, AuditEvent, Invoice)
    )


def _refused(action, field: str) -> None:
    before = _counts()
    with pytest.raises(ValidationError) as refused:
        action()
    db.session.rollback()
    assert refused.value.field == field, refused.value.message
    assert field.split("_")[0] in refused.value.message or refused.value.details
    assert _counts() == before


def test_bad_input_is_refused_naming_the_field_and_writes_nothing(app, billed):
    invoice_id = _invoice(app, billed)
    with app.app_context(), platform_bypass("test"):
        _refused(
            lambda: plans.save_plan(code="x", name="X", currency="USD", rounding="minute", monthly_fee="-1"),
            "monthly_fee",
        )
        _refused(lambda: plans.save_plan(code="x", name="X", currency="XYZ", rounding="minute"), "currency")
        _refused(lambda: plans.subscribe(billed.org_id, billed.basic_id, date(2026, 9, 30)), "starts_on")
        _refused(lambda: plans.subscribe(billed.org_id, billed.basic_id, date(2026, 12, 1)), "starts_on")
        _refused(lambda: invoices.record_payment(invoice_id, "68.71", date(2026, 12, 3), ISSUED), "amount")
        invoices.record_payment(invoice_id, "68.70", date(2026, 12, 3), ISSUED)
        db.session.commit()
        _refused(lambda: invoices.add_adjustment(invoice_id, "late fee", "5.00"), "invoice_id")
        locks.suspend_org(billed.org_id, "unpaid", ISSUED)
        db.session.commit()
        _refused(lambda: locks.suspend_org(billed.org_id, "again", ISSUED), "org")


def test_a_void_invoice_cannot_be_paid(app, billed):
    invoice_id = _invoice(app, billed)
    with app.app_context(), platform_bypass("test"):
        invoices.void_invoice(invoice_id, "duplicate", ISSUED)
        db.session.commit()
        _refused(lambda: invoices.record_payment(invoice_id, "1.00", date(2026, 12, 3), ISSUED), "invoice_id")


def test_numbers_have_no_gaps_across_orgs_and_a_rolled_back_number_is_given_again(app, billed):
    _invoice(app, billed)
    with app.app_context(), platform_bypass("test"):
        invoice = db.session.scalar(select(Invoice))
        invoices.credit_note(invoice.id, "1.00", "rolled back", ISSUED)
        db.session.rollback()
        note = invoices.credit_note(invoice.id, "1.00", "kept", ISSUED)
        db.session.commit()
        assert note.number == "CN-2026-000001"


def test_the_pdf_carries_the_same_totals_as_the_csv(app, billed):
    invoice_id = _invoice(app, billed)
    with app.app_context(), tenant(billed.org_id):
        invoice = db.session.get(Invoice, invoice_id)
        org = db.session.get(Organization, billed.org_id)
        table = documents.invoice_csv(invoice, org)
        pdf = documents.invoice_pdf(invoice, org)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    rows = list(csv.reader(io.StringIO(table)))
    totals = rows[len(rows) - rows[::-1].index([]) :]
    assert [value for _, value in totals] == ["62.45 USD", "6.25 USD", "68.70 USD", "0.00 USD", "0.00 USD", "68.70 USD"]
    for label, value in totals:
        assert f"{label}: {value}" in text
    assert "INV-2026-000001" in table and "INV-2026-000001" in text
    for _, amount in EXPECTED_LINES:
        assert f"{amount} USD" in text and f",{amount}" in table


def test_an_org_without_a_subscription_gets_no_invoice(app):
    with app.app_context(), time_machine.travel(BORN, tick=False):
        org_id = make_org("bare")
    with app.app_context(), tenant(org_id):
        assert invoices.make_month_invoice(org_id, 2026, 11, ISSUED) is None
