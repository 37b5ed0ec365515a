"""Billing: plans (platform rows, versioned), each org's subscriptions, billing settings, invoices with
their lines and payments, the invoice number counters, and billing locks.

Money columns are `Numeric(14, 4)` (exact decimals, never floats); what an invoice says is rounded to
its currency's minor units by `vsync.services.billing.money` before it is stored. A plan version is
never changed once made (a change is a new version), and an invoice copies every price it uses into
its lines, so nothing done later rewrites a past invoice.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vsync.extensions import db
from vsync.models.types import UtcDateTime, one_of, utcnow
from vsync.tenancy import OrgOwned

Money = Numeric(14, 4)
PER_SECOND, PER_MINUTE = "second", "minute"
ROUNDINGS = (PER_SECOND, PER_MINUTE)
DRAFT, OPEN, PAID, VOID = "draft", "open", "paid", "void"
INVOICE_STATUSES = (DRAFT, OPEN, PAID, VOID)
INVOICE, CREDIT_NOTE = "invoice", "credit_note"
INVOICE_KINDS = (INVOICE, CREDIT_NOTE)
LINE_KINDS = ("fee", "minutes", "sms", "numbers", "adjustment", "credit")


class Plan(db.Model):
    """One version of a plan: a platform row every org may be subscribed to. `code` names the plan
    across its versions; a changed price is a new row with the next `version`."""

    __tablename__ = "billing_plans"
    __table_args__ = (
        UniqueConstraint("code", "version"),
        one_of("rounding", ROUNDINGS),
        CheckConstraint(
            "monthly_fee >= 0 AND minute_price >= 0 AND sms_price >= 0 AND number_price >= 0", name="prices"
        ),
        CheckConstraint("included_minutes >= 0 AND included_sms >= 0 AND included_numbers >= 0", name="allowances"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    monthly_fee: Mapped[Decimal] = mapped_column(Money)
    included_minutes: Mapped[int] = mapped_column(Integer, default=0)
    included_sms: Mapped[int] = mapped_column(Integer, default=0)
    included_numbers: Mapped[int] = mapped_column(Integer, default=0)
    minute_price: Mapped[Decimal] = mapped_column(Money)
    sms_price: Mapped[Decimal] = mapped_column(Money)
    number_price: Mapped[Decimal] = mapped_column(Money)  # a number held for a whole month
    rounding: Mapped[str] = mapped_column(String(10), default=PER_MINUTE)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Subscription(OrgOwned, db.Model):
    """The org is on `plan_id` from `starts_on` up to (not including) `ends_on`, local calendar dates.
    An org's subscriptions never overlap (`vsync.services.billing.plans`). Plans are platform rows, so
    no relationship leads from this org-owned row to one: the services read the plan by its id."""

    __tablename__ = "billing_subscriptions"
    __table_args__ = (CheckConstraint("ends_on IS NULL OR ends_on > starts_on", name="period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("billing_plans.id", ondelete="RESTRICT"))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BillingSettings(OrgOwned, db.Model):
    """An org's tax rate (a fraction: 0.2 is 20 %) and billing contacts (emails, one per line)."""

    __tablename__ = "billing_settings"
    __table_args__ = (UniqueConstraint("org_id"), CheckConstraint("tax_rate >= 0 AND tax_rate < 1", name="tax_rate"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4), default=Decimal(0))
    contacts: Mapped[str | None] = mapped_column(Text)


class InvoiceCounter(db.Model):
    """The last number given in a series (`INV` or `CN`) and year; locked while a number is taken, in
    the transaction that stores it, so numbers have no gaps whatever rolls back."""

    __tablename__ = "billing_invoice_counters"

    series: Mapped[str] = mapped_column(String(4), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(OrgOwned, db.Model):
    """An invoice of one local calendar month (`period_start`, the 1st), or a credit note against one.

    One invoice per org and month: a partial unique index, so however many workers make it, one row
    wins. `number` is given when it leaves draft. Paid and void invoices never change.
    """

    __tablename__ = "billing_invoices"
    __table_args__ = (
        one_of("status", INVOICE_STATUSES),
        one_of("kind", INVOICE_KINDS),
        Index(
            "uq_billing_invoices_org_month",
            "org_id",
            "period_start",
            unique=True,
            postgresql_where=text("kind = 'invoice'"),
            sqlite_where=text("kind = 'invoice'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), default=INVOICE)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # exclusive
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(8), default=DRAFT)
    subtotal: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4), default=Decimal(0))
    tax: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    paid: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    credited: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    credits_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoices.id", ondelete="RESTRICT"))
    note: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    lines: Mapped[list[InvoiceLine]] = relationship(order_by="InvoiceLine.position", cascade="all, delete-orphan")
    payments: Mapped[list[Payment]] = relationship(order_by="Payment.id")

    @property
    def balance(self) -> Decimal:
        return self.total - self.paid - self.credited


class InvoiceLine(OrgOwned, db.Model):
    __tablename__ = "billing_invoice_lines"
    __table_args__ = (one_of("kind", LINE_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    unit: Mapped[str] = mapped_column(String(20))
    unit_price: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)


class Payment(OrgOwned, db.Model):
    """A payment platform staff recorded against an invoice (vsync processes no payments itself)."""

    __tablename__ = "billing_payments"
    __table_args__ = (CheckConstraint("amount > 0", name="amount"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoices.id", ondelete="RESTRICT"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    received_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BillingLock(OrgOwned, db.Model):
    """An org suspended for billing from `starts_at` until it is lifted or `ends_at` passes.
    While one is in force its members and keys are refused (`vsync.services.billing.locks`)."""

    __tablename__ = "billing_locks"
    __table_args__ = (CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
