"""Invoices and credit notes: made, numbered, adjusted, paid, voided.

`make_month_invoice` makes the invoice of one org's local calendar month, once: the unique index on
(org, month) lets one row win however many workers try, and a second try returns the first's.
Numbers are gapless per series and year (`INV-2026-000123`, credit notes `CN-2026-000007`): the
counter row is locked and moved in the transaction that stores the number, so a rollback returns
the number too. The caller commits (see `vsync.services`).

Arithmetic: every line is rounded once, half-up, to the currency's minor units; the subtotal is the
sum of the lines, the tax the subtotal times the org's tax rate (rounded once), the total their sum.
A month with a plan change has a part per plan version, each prorated by days (the line says so):
fee × days / days in month, allowances likewise; overage is what the part's usage exceeds its
prorated allowance by.

Statuses: draft → open (numbered, issued) → paid (balance settled) or void. Adjustments go on a draft
or open invoice; a paid or void invoice never changes again: a correction is a credit note.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.models import BillingSettings, Invoice, InvoiceCounter, InvoiceLine, Payment
from vsync.models.billing import CREDIT_NOTE, DRAFT, INVOICE, OPEN, PAID, VOID
from vsync.services import audit
from vsync.services.billing import documents
from vsync.services.billing.money import decimal_places, format_money, round_money
from vsync.services.billing.plans import Segment, segments
from vsync.services.billing.usage import Usage, month_span, usage
from vsync.services.notifications import mail
from vsync.services.orgs import normalize_email

log = logging.getLogger(__name__)

SERIES = {INVOICE: "INV", CREDIT_NOTE: "CN"}


@dataclass(frozen=True)
class Line:
    kind: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


def _days(part: Segment) -> int:
    return (part.end - part.start).days


def _span_text(part: Segment, month_days: int) -> str:
    days = _days(part)
    text = f"{part.start:%d %b} - {date.fromordinal(part.end.toordinal() - 1):%d %b %Y}"
    return text + (f", prorated {days}/{month_days} days" if days != month_days else "")


def _overage(
    kind: str, what: str, used: Decimal, allowed: Decimal, unit: str, price: Decimal, currency: str
) -> Line | None:
    over = used - allowed
    if over <= 0 or price == 0:
        return None
    return Line(
        kind,
        f"{what}: {used:f} used, {allowed.normalize():f} included",
        over.quantize(Decimal("0.0001")),
        unit,
        price,
        round_money(over * price, currency),
    )


def part_lines(part: Segment, used: Usage, month_days: int) -> list[Line]:
    """The fee and overage lines of one plan version's part of a month."""
    plan, days, currency = part.plan, Decimal(_days(part)), part.plan.currency
    share = days / month_days
    span = _span_text(part, month_days)
    lines = [
        Line(
            "fee",
            f"{plan} monthly fee, {span}",
            share.quantize(Decimal("0.0001")),
            "month",
            plan.monthly_fee,
            round_money(plan.monthly_fee * share, currency),
        )
    ]
    day_price = plan.number_price / month_days
    lines += filter(
        None,
        (
            _overage(
                "minutes",
                f"Talk minutes over allowance ({span}, per {plan.rounding})",
                used.talk_minutes,
                plan.included_minutes * share,
                "minute",
                plan.minute_price,
                currency,
            ),
            _overage(
                "sms",
                f"SMS over allowance ({span})",
                Decimal(used.sms),
                plan.included_sms * share,
                "sms",
                plan.sms_price,
                currency,
            ),
            _overage(
                "numbers",
                f"Number-days over allowance ({span})",
                Decimal(used.number_days),
                plan.included_numbers * days,
                "number-day",
                day_price,
                currency,
            ),
        ),
    )
    return lines


def month_lines(org_id: int, year: int, month: int) -> tuple[str, list[Line]] | None:
    """The currency and lines of the org's month, or None without a subscription in it. In its scope."""
    start, end = month_span(year, month)
    parts = segments(org_id, start, end)
    if not parts:
        return None
    month_days = (end - start).days
    lines = [
        line
        for part in parts
        for line in part_lines(part, usage(org_id, part.start, part.end, part.plan.rounding), month_days)
    ]
    return parts[-1].plan.currency, lines


def tax_rate_of(org_id: int) -> Decimal:
    rate = db.session.scalar(select(BillingSettings.tax_rate).where(BillingSettings.org_id == org_id))
    return rate if rate is not None else Decimal(0)


def _add_line(invoice: Invoice, line: Line) -> None:
    invoice.lines.append(
        InvoiceLine(
            org_id=invoice.org_id,
            position=len(invoice.lines) + 1,
            kind=line.kind,
            description=line.description[:300],
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            amount=line.amount,
        )
    )


def _total(invoice: Invoice) -> None:
    invoice.subtotal = sum((line.amount for line in invoice.lines), Decimal(0))
    invoice.tax = round_money(invoice.subtotal * invoice.tax_rate, invoice.currency)
    invoice.total = invoice.subtotal + invoice.tax


def _month_invoice(org_id: int, period_start: date) -> Invoice | None:
    return db.session.scalar(
        select(Invoice).where(Invoice.org_id == org_id, Invoice.kind == INVOICE, Invoice.period_start == period_start)
    )


def make_month_invoice(org_id: int, year: int, month: int, now: datetime) -> Invoice | None:
    """The org's invoice of a local month, made and issued if it does not exist yet (in the org's
    scope); None when the org had no subscription that month. Safe to run any number of times, at
    once on several workers."""
    start, end = month_span(year, month)
    existing = _month_invoice(org_id, start)
    if existing is not None:
        return existing
    made = month_lines(org_id, year, month)
    if made is None:
        return None
    currency, lines = made
    invoice = Invoice(
        org_id=org_id,
        kind=INVOICE,
        period_start=start,
        period_end=end,
        currency=currency,
        tax_rate=tax_rate_of(org_id),
        status=DRAFT,
    )
    for line in lines:
        _add_line(invoice, line)
    _total(invoice)
    try:
        with db.session.begin_nested():
            db.session.add(invoice)
    except IntegrityError:
        log.info("invoice of org %s for %s made by another worker", org_id, start)
        return _month_invoice(org_id, start)
    audit.record(
        "billing.invoice_made", org_id=org_id, target=invoice, summary=f"{start:%Y-%m}: {invoice.total} {currency}"
    )
    issue_invoice(invoice, now)
    return invoice


def _next_number(kind: str, year: int) -> str:
    """The next number of the series, under a lock on its counter held until the transaction ends."""
    series = SERIES[kind]
    counter = db.session.scalar(
        select(InvoiceCounter).where(InvoiceCounter.series == series, InvoiceCounter.year == year).with_for_update()
    )
    if counter is None:
        try:
            with db.session.begin_nested():
                db.session.add(InvoiceCounter(series=series, year=year, last=0))
        except IntegrityError:
            pass
        counter = db.session.scalars(
            select(InvoiceCounter).where(InvoiceCounter.series == series, InvoiceCounter.year == year).with_for_update()
        ).one()
    counter.last += 1
    return f"{series}-{year}-{counter.last:06d}"


def issue_invoice(invoice: Invoice, now: datetime) -> Invoice:
    """Draft → open: the invoice gets its number and is handed to `send_invoice`."""
    if invoice.status != DRAFT:
        raise ValidationError(f"Only a draft is issued; this invoice is {invoice.status}.", field="status")
    invoice.number = _next_number(invoice.kind, now.year)
    invoice.status, invoice.issued_at = OPEN, now
    audit.record("billing.invoice_issued", org_id=invoice.org_id, target=invoice, summary=invoice.number)
    send_invoice(invoice)
    return invoice


def send_invoice(invoice: Invoice) -> None:
    """Email an issued invoice or credit note, PDF and CSV attached, to each of the org's billing
    contacts (`BillingSettings.contacts`, one address a line), in the org's name. One message per
    invoice and address (its outbox key), so issuing again or re-running the invoice job sends
    nothing twice; it leaves when the caller commits, through SMTP or the outbox folder. A line that
    is not an address is skipped, logged: a bad contact never stops an invoice."""
    db.session.flush()  # a credit note gets its id here, for the messages' keys
    context = {
        "title": documents.title_of(invoice),
        "credit_note": invoice.kind == CREDIT_NOTE,
        "total": format_money(invoice.total, invoice.currency),
        "issued": f"{invoice.issued_at:%Y-%m-%d}" if invoice.issued_at else "",
        "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
    }
    for address in billing_contacts(invoice.org_id):
        mail.queue_email(
            invoice.org_id,
            kind="invoice",
            key=f"invoice:{invoice.id}:{address}"[:200],  # the key's column; longer addresses are vanishingly rare
            to=address,
            template="invoice",
            context=context,
            invoice_id=invoice.id,
        )


def billing_contacts(org_id: int) -> list[str]:
    """The org's billing contact addresses, normalised, each once, in the order given."""
    settings = db.session.scalar(select(BillingSettings).where(BillingSettings.org_id == org_id))
    addresses: list[str] = []
    for line in (settings.contacts or "").splitlines() if settings else []:
        if not line.strip():
            continue
        try:
            address = normalize_email(line)
        except ValidationError:
            log.warning("org %s: billing contact %r is not an address, skipped", org_id, line.strip())
            continue
        if address not in addresses:
            addresses.append(address)
    return addresses


def get_invoice(invoice_id: int, *, kind: str | None = None) -> Invoice:
    """An invoice the current scope sees; another org's is the same 404 as none."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or (kind is not None and invoice.kind != kind):
        raise NotFound(f"No invoice {invoice_id}.", field="invoice_id")
    return invoice


def _changeable(invoice: Invoice, what: str) -> None:
    if invoice.kind != INVOICE or invoice.status not in (DRAFT, OPEN):
        state = "a credit note" if invoice.kind != INVOICE else f"{invoice.status}"
        raise ValidationError(
            f"Cannot {what}: the invoice is {state}; a paid or void invoice never changes "
            "(issue a credit note instead).",
            field="invoice_id",
        )


def _amount(value, field: str = "amount", *, positive: bool = True) -> Decimal:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValidationError(f"{field} must be a decimal amount.", field=field) from None
    if not amount.is_finite() or (positive and amount <= 0) or amount == 0:
        raise ValidationError(f"{field} must be {'more than zero' if positive else 'non-zero'}.", field=field)
    return amount


def add_adjustment(invoice_id: int, description: str, amount) -> Invoice:
    """A manual line (a charge, or a discount when negative) on a draft or open invoice. Audited."""
    invoice = get_invoice(invoice_id)
    _changeable(invoice, "add an adjustment")
    if not description or len(description) > 300:
        raise ValidationError("An adjustment needs a description of at most 300 characters.", field="description")
    value = _amount(amount, positive=False)
    if decimal_places(value) > 4:
        raise ValidationError("amount has at most four decimal places.", field="amount")
    line = Line("adjustment", description, Decimal(1), "item", value, round_money(value, invoice.currency))
    previous = invoice.total
    _add_line(invoice, line)
    _total(invoice)
    if invoice.total < invoice.paid + invoice.credited:
        raise ValidationError("amount would take the total below what is paid and credited.", field="amount")
    audit.record(
        "billing.adjusted",
        org_id=invoice.org_id,
        target=invoice,
        summary=f"{description}: {line.amount}; total {previous} -> {invoice.total}",
    )
    return invoice


def _settle_if_done(invoice: Invoice, now: datetime) -> None:
    if invoice.status == OPEN and invoice.balance == 0:
        invoice.status, invoice.closed_at = PAID, now


def record_payment(invoice_id: int, amount, received_on: date, now: datetime, reference: str | None = None) -> Payment:
    """A payment received against an open invoice, at most its balance; the invoice is paid when the
    balance reaches zero. Audited."""
    invoice = get_invoice(invoice_id, kind=INVOICE)
    if invoice.status != OPEN:
        raise ValidationError(f"Only an open invoice takes payments; this one is {invoice.status}.", field="invoice_id")
    value = _amount(amount)
    if round_money(value, invoice.currency) != value:
        raise ValidationError(f"amount has more decimals than {invoice.currency} has.", field="amount")
    if value > invoice.balance:
        raise ValidationError(f"amount {value} is more than the balance {invoice.balance}.", field="amount")
    payment = Payment(
        org_id=invoice.org_id,
        invoice_id=invoice.id,
        amount=value,
        received_on=received_on,
        reference=(reference or None) and reference[:200],
    )
    db.session.add(payment)
    invoice.paid += value
    _settle_if_done(invoice, now)
    audit.record(
        "billing.payment_recorded",
        org_id=invoice.org_id,
        target=invoice,
        summary=f"{value} {invoice.currency} on {received_on}; balance {invoice.balance}",
    )
    return payment


def void_invoice(invoice_id: int, reason: str, now: datetime) -> Invoice:
    """Draft or open, nothing paid → void, kept with its number. Audited."""
    invoice = get_invoice(invoice_id, kind=INVOICE)
    _changeable(invoice, "void it")
    if invoice.paid or invoice.credited:
        raise ValidationError(
            "An invoice with payments or credit notes is corrected by a credit note, not voided.", field="invoice_id"
        )
    if not reason:
        raise ValidationError("Say why the invoice is void.", field="reason")
    invoice.status, invoice.closed_at, invoice.note = VOID, now, reason[:500]
    audit.record("billing.invoice_voided", org_id=invoice.org_id, target=invoice, summary=reason[:200])
    return invoice


def credit_note(invoice_id: int, net_amount, reason: str, now: datetime) -> Invoice:
    """A credit note against an open or paid invoice: `net_amount` before tax, taxed at the invoice's
    rate, at most what is left uncredited. It reduces the invoice's balance. Audited."""
    invoice = get_invoice(invoice_id, kind=INVOICE)
    if invoice.status not in (OPEN, PAID):
        raise ValidationError(
            f"Only an open or paid invoice is credited; this one is {invoice.status}.", field="invoice_id"
        )
    if not reason:
        raise ValidationError("Say why the credit is given.", field="reason")
    value = round_money(_amount(net_amount), invoice.currency)
    note = Invoice(
        org_id=invoice.org_id,
        kind=CREDIT_NOTE,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        currency=invoice.currency,
        tax_rate=invoice.tax_rate,
        credits_invoice_id=invoice.id,
        note=reason[:500],
        status=DRAFT,
    )
    _add_line(note, Line("credit", f"Credit on {invoice.number}: {reason}", Decimal(1), "item", -value, -value))
    _total(note)
    if -note.total > invoice.total - invoice.credited:
        raise ValidationError(
            f"net_amount credits more than is left uncredited "
            f"({invoice.total - invoice.credited} {invoice.currency} with tax).",
            field="net_amount",
        )
    if invoice.status == OPEN and -note.total > invoice.balance:
        raise ValidationError(f"net_amount credits more than the balance {invoice.balance}.", field="net_amount")
    db.session.add(note)
    issue_invoice(note, now)
    invoice.credited += -note.total
    _settle_if_done(invoice, now)
    audit.record("billing.credited", org_id=invoice.org_id, target=invoice, summary=f"{note.number}: {note.total}")
    return note


def revenue_by_month() -> list[tuple[date, str, Decimal, int]]:
    """(month, currency, invoiced less credited, invoices) of every org, newest month first: a
    platform read, in the platform bypass. Void invoices count nothing."""
    rows = db.session.execute(
        select(
            Invoice.period_start,
            Invoice.currency,
            func.sum(Invoice.total),
            func.count().filter(Invoice.kind == INVOICE),
        )
        .where(Invoice.status != VOID, Invoice.status != DRAFT)
        .group_by(Invoice.period_start, Invoice.currency)
        .order_by(Invoice.period_start.desc(), Invoice.currency)
    ).all()
    return [(start, currency, total, count) for start, currency, total, count in rows]
