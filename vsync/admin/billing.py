"""Billing in the consoles: the org's billing page (org admins) and the platform billing console.

The org page shows the plan in force today, this month's usage so far against the plan's
allowance, and the org's invoices with their CSV and PDF. The platform page holds every billing
operation platform staff perform: plans (a saved plan with an existing code is its next version),
subscriptions and plan changes, invoices (payments, adjustments, credit notes, voiding), billing
locks, and revenue per month across orgs. Every form calls one service function, which validates
and audits; a refusal names its field on the form and writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TypeVar

from flask import Response, flash, redirect, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from vsync.admin.access import OrgPage, PlatformPage, done, refused
from vsync.admin.forms import options
from vsync.errors import DomainError
from vsync.extensions import db
from vsync.models import BillingLock, Invoice, Organization, Plan, Subscription
from vsync.models.billing import ROUNDINGS
from vsync.models.orgs import ORG_ADMIN
from vsync.models.types import utcnow
from vsync.services.billing import documents, invoices, locks, plans
from vsync.services.billing.money import MINOR_UNITS
from vsync.services.billing.plans import plan_on
from vsync.services.billing.usage import local_today, month_span, usage


class OrgBillingView(OrgPage):
    least_role = ORG_ADMIN

    @expose("/")
    def index(self):
        org_id = self.org.id
        today = local_today(org_id, utcnow())
        start, end = month_span(today.year, today.month)
        plan = plan_on(org_id, today)
        used = usage(org_id, start, end, plan.rounding if plan else "second")
        listed = db.session.scalars(select(Invoice).order_by(Invoice.id.desc()).limit(100)).all()
        return self.render(
            "admin/console/billing.html",
            org=self.org,
            plan=plan,
            used=used,
            month=start,
            days=(end - start).days,
            invoices=listed,
        )

    @expose("/invoices/<int:invoice_id>/<kind>")
    def document(self, invoice_id: int, kind: str):
        render, mimetype = {
            "pdf": (documents.invoice_pdf, "application/pdf"),
            "csv": (documents.invoice_csv, "text/csv"),
        }.get(kind, (None, None))
        if render is None:
            return self.render("admin/forbidden.html", message="No such document."), 404
        try:
            invoice = invoices.get_invoice(invoice_id)
        except DomainError:
            return self.render("admin/forbidden.html", message="No such invoice."), 404
        response = Response(render(invoice, self.org), mimetype=mimetype)
        response.headers["Content-Disposition"] = f'attachment; filename="{invoice.number or invoice.id}.{kind}"'
        return response


T = TypeVar("T")


def _given(value: T | None) -> T:
    """A field the form requires, read after the form validated it."""
    assert value is not None, "the form's validators require this field"
    return value


def _org_choices() -> list:
    return options((o.id, o.slug) for o in db.session.scalars(select(Organization).order_by(Organization.slug)))


def _plan_choices() -> list:
    return options(
        (p.id, f"{p.code} v{p.version} ({p.currency})")
        for p in db.session.scalars(select(Plan).order_by(Plan.code, Plan.version))
    )


class PlanForm(FlaskForm):
    code = StringField(
        "Code",
        validators=[DataRequired(), Length(max=40)],
        description="An existing code makes the plan's next version.",
    )
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    currency = SelectField("Currency", choices=options((c, c) for c in sorted(MINOR_UNITS)))
    rounding = SelectField("Talk time per call, up to the started", choices=options((r, r) for r in ROUNDINGS))
    monthly_fee = StringField("Monthly fee", validators=[DataRequired()])
    included_minutes = IntegerField("Included minutes", validators=[InputRequired()], default=0)
    minute_price = StringField("Price per extra minute", validators=[DataRequired()], default="0")
    included_sms = IntegerField("Included SMS", validators=[InputRequired()], default=0)
    sms_price = StringField("Price per extra SMS", validators=[DataRequired()], default="0")
    included_numbers = IntegerField("Included numbers", validators=[InputRequired()], default=0)
    number_price = StringField("Price per extra number a month", validators=[DataRequired()], default="0")


class SubscribeForm(FlaskForm):
    org = SelectField("Organisation", coerce=int)
    plan = SelectField("Plan", coerce=int)
    starts_on = DateField("From (the org's local date)", validators=[DataRequired()])
    change = SelectField("As", choices=options((("new", "a new subscription"), ("change", "a plan change"))))


class PaymentForm(FlaskForm):
    amount = StringField("Amount", validators=[DataRequired()])
    received_on = DateField("Received on", validators=[DataRequired()])
    reference = StringField("Reference", validators=[Optional(), Length(max=200)])


class AdjustmentForm(FlaskForm):
    description = StringField("Description", validators=[DataRequired(), Length(max=300)])
    amount = StringField("Amount (negative for a discount)", validators=[DataRequired()])


class CreditForm(FlaskForm):
    net_amount = StringField("Net amount", validators=[DataRequired()])
    reason = StringField("Reason", validators=[DataRequired(), Length(max=500)])


class VoidForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(max=500)])


class LockForm(FlaskForm):
    org = SelectField("Organisation", coerce=int)
    reason = StringField("Reason", validators=[DataRequired(), Length(max=500)])
    ends_on = DateField("Ends on (UTC, optional)", validators=[Optional()])


class PlatformBillingView(PlatformPage):
    """Every billing operation of the platform, one form each."""

    def _page(self, status: int = 200, **forms):
        subscribe = forms.get("subscribe") or SubscribeForm(prefix="sub")
        subscribe.org.choices, subscribe.plan.choices = _org_choices(), _plan_choices()
        lock = forms.get("lock") or LockForm(prefix="lock")
        lock.org.choices = _org_choices()
        now = utcnow()
        page = self.render(
            "admin/platform/billing.html",
            revenue=invoices.revenue_by_month(),
            plans=db.session.scalars(select(Plan).order_by(Plan.code, Plan.version)).all(),
            subscriptions=db.session.scalars(
                select(Subscription).order_by(Subscription.org_id, Subscription.starts_on)
            ).all(),
            invoices=db.session.scalars(select(Invoice).order_by(Invoice.id.desc()).limit(200)).all(),
            locks=[
                lk
                for lk in db.session.scalars(select(BillingLock).order_by(BillingLock.id.desc()))
                if lk.lifted_at is None and (lk.ends_at is None or lk.ends_at > now)
            ],
            slugs=dict(db.session.execute(select(Organization.id, Organization.slug)).tuples().all()),
            plan_names={p.id: f"{p.code} v{p.version}" for p in db.session.scalars(select(Plan))},
            plan_form=forms.get("plan") or PlanForm(prefix="plan"),
            subscribe_form=subscribe,
            lock_form=lock,
            payment_form=PaymentForm(prefix="pay"),
            adjustment_form=AdjustmentForm(prefix="adj"),
            credit_form=CreditForm(prefix="cred"),
            void_form=VoidForm(prefix="void"),
            focus=forms.get("focus"),
        )
        return page, status

    def _act(self, form, action, message: str, key: str, **page_forms):
        if form.validate_on_submit():
            try:
                action()
                done(message)
                return redirect(url_for(".index"))
            except DomainError as exc:
                refused(form, exc)
        else:
            flash("; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()), "error")
        return self._page(400, **{key: form}, **page_forms)

    @expose("/")
    def index(self):
        return self._page()

    @expose("/plans", methods=["POST"])
    def save_plan(self):
        form = PlanForm(prefix="plan")
        terms = {name: getattr(form, name).data for name in (*plans.PRICES, *plans.ALLOWANCES)}
        return self._act(
            form,
            lambda: plans.save_plan(
                code=form.code.data or "",
                name=form.name.data or "",
                currency=form.currency.data,
                rounding=form.rounding.data,
                **terms,
            ),
            "Plan saved.",
            "plan",
        )

    @expose("/subscriptions", methods=["POST"])
    def subscribe(self):
        form = SubscribeForm(prefix="sub")
        form.org.choices, form.plan.choices = _org_choices(), _plan_choices()
        act = plans.change_plan if form.change.data == "change" else plans.subscribe
        return self._act(
            form,
            lambda: act(form.org.data, form.plan.data, _given(form.starts_on.data)),
            "Subscription saved.",
            "subscribe",
        )

    @expose("/invoices/<int:invoice_id>/payments", methods=["POST"])
    def pay(self, invoice_id: int):
        form = PaymentForm(prefix="pay")
        return self._act(
            form,
            lambda: invoices.record_payment(
                invoice_id, form.amount.data, _given(form.received_on.data), utcnow(), form.reference.data
            ),
            "Payment recorded.",
            "payment",
        )

    @expose("/invoices/<int:invoice_id>/adjustments", methods=["POST"])
    def adjust(self, invoice_id: int):
        form = AdjustmentForm(prefix="adj")
        return self._act(
            form,
            lambda: invoices.add_adjustment(invoice_id, form.description.data or "", form.amount.data),
            "Adjustment added.",
            "adjustment",
        )

    @expose("/invoices/<int:invoice_id>/credit-notes", methods=["POST"])
    def credit(self, invoice_id: int):
        form = CreditForm(prefix="cred")
        return self._act(
            form,
            lambda: invoices.credit_note(invoice_id, form.net_amount.data, form.reason.data or "", utcnow()),
            "Credit note issued.",
            "credit",
        )

    @expose("/invoices/<int:invoice_id>/void", methods=["POST"])
    def void(self, invoice_id: int):
        form = VoidForm(prefix="void")
        return self._act(
            form, lambda: invoices.void_invoice(invoice_id, form.reason.data or "", utcnow()), "Invoice voided.", "void"
        )

    @expose("/locks", methods=["POST"])
    def suspend(self):
        form = LockForm(prefix="lock")
        form.org.choices = _org_choices()
        until = datetime.combine(form.ends_on.data + timedelta(days=1), time(0), UTC) if form.ends_on.data else None
        return self._act(
            form,
            lambda: locks.suspend_org(form.org.data, form.reason.data or "", utcnow(), until),
            "Organisation suspended.",
            "lock",
        )

    @expose("/locks/<int:org_id>/lift", methods=["POST"])
    def lift(self, org_id: int):
        form = FlaskForm()
        return self._act(form, lambda: locks.lift_lock(org_id, utcnow()), "Lock lifted.", "lift")
