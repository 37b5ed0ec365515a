"""Plans and subscriptions: platform operations (the platform console, the CLI, the demo).

A plan is versioned: `save_plan` with a code that exists makes its next version, and the old one
stays as it was, with the subscriptions and invoices that name it. A subscription ties an org to one
plan version from a local date; `change_plan` ends the current one on a day and starts the next
there, so a month with a change is billed in two prorated parts (`vsync.services.billing.invoices`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, or_, select

from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.models import Organization, Plan, Subscription
from vsync.models.billing import ROUNDINGS
from vsync.query import org_zone
from vsync.services import audit
from vsync.services.billing.money import decimal_places, validate_currency

PRICES = ("monthly_fee", "minute_price", "sms_price", "number_price")
ALLOWANCES = ("included_minutes", "included_sms", "included_numbers")


def _price(value, name: str) -> Decimal:
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"{name} must be a decimal amount.", field=name) from None
    if not price.is_finite() or price < 0:
        raise ValidationError(f"{name} must be zero or more.", field=name)
    if decimal_places(price) > 4:
        raise ValidationError(f"{name} has at most four decimal places.", field=name)
    return price


def _allowance(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{name} must be a whole number, zero or more.", field=name)
    return value


def save_plan(*, code: str, name: str, currency: str, rounding: str, **terms) -> Plan:
    """A new plan, or the next version of the plan `code`. Prices are decimals (strings or
    `Decimal`), allowances whole numbers; nothing is written unless all are valid. Audited."""
    if not code or len(code) > 40 or not code.replace("-", "").replace("_", "").isalnum():
        raise ValidationError("A plan code is 1-40 letters, digits, '-' or '_'.", field="code")
    if not name or len(name) > 200:
        raise ValidationError("A plan needs a name of at most 200 characters.", field="name")
    validate_currency(currency)
    if rounding not in ROUNDINGS:
        raise ValidationError(f"rounding is one of {', '.join(ROUNDINGS)}.", field="rounding")
    values = {p: _price(terms.get(p, 0), p) for p in PRICES} | {a: _allowance(terms.get(a, 0), a) for a in ALLOWANCES}
    version = (db.session.scalar(select(func.max(Plan.version)).where(Plan.code == code)) or 0) + 1
    plan = Plan(code=code, version=version, name=name, currency=currency, rounding=rounding, **values)
    db.session.add(plan)
    audit.record(
        "billing.plan_saved",
        target=plan,
        summary=f"{code} v{version}: {name}, {values['monthly_fee']} {currency} a month, per {rounding}",
    )
    return plan


def get_plan(plan_id: int) -> Plan:
    plan = db.session.get(Plan, plan_id)
    if plan is None:
        raise NotFound(f"No plan {plan_id}.", field="plan_id")
    return plan


def _overlapping(org_id: int, starts_on: date, ends_on: date | None):
    query = select(Subscription).where(
        Subscription.org_id == org_id, or_(Subscription.ends_on.is_(None), Subscription.ends_on > starts_on)
    )
    if ends_on is not None:
        query = query.where(Subscription.starts_on < ends_on)
    return db.session.scalars(query).first()


def subscribe(org_id: int, plan_id: int, starts_on: date, ends_on: date | None = None) -> Subscription:
    """Put the org on a plan version from `starts_on` (a local date, not before the org existed),
    overlapping none of its other subscriptions. Audited."""
    org = db.session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"No organisation {org_id}.", field="org")
    plan = get_plan(plan_id)
    created = org.created_at.astimezone(org_zone(org)).date()  # starts_on is a date in the org's zone
    if starts_on < created:
        raise ValidationError(f"starts_on is before the organisation existed ({created}).", field="starts_on")
    if ends_on is not None and ends_on <= starts_on:
        raise ValidationError("ends_on must be after starts_on.", field="ends_on")
    clash = _overlapping(org_id, starts_on, ends_on)
    if clash is not None:
        raise ValidationError(
            f"starts_on overlaps the subscription from {clash.starts_on} "
            f"({get_plan(clash.plan_id)}); change the plan instead.",
            field="starts_on",
        )
    subscription = Subscription(org_id=org_id, plan_id=plan.id, starts_on=starts_on, ends_on=ends_on)
    db.session.add(subscription)
    audit.record(
        "billing.subscribed",
        org_id=org_id,
        target=subscription,
        summary=f"{org.slug} on {plan} from {starts_on}" + (f" to {ends_on}" if ends_on else ""),
    )
    return subscription


def change_plan(org_id: int, plan_id: int, on: date) -> Subscription:
    """End the org's current subscription on `on` and start `plan_id` there (same currency). Audited."""
    current = db.session.scalars(
        select(Subscription).where(
            Subscription.org_id == org_id,
            Subscription.starts_on < on,
            or_(Subscription.ends_on.is_(None), Subscription.ends_on > on),
        )
    ).first()
    if current is None:
        raise ValidationError(f"The organisation has no subscription running on {on} to change.", field="on")
    if get_plan(plan_id).currency != get_plan(current.plan_id).currency:
        raise ValidationError(
            "A plan change keeps the currency; end the subscription and subscribe anew.", field="plan_id"
        )
    current.ends_on, later_end = on, current.ends_on
    db.session.flush()
    audit.record("billing.subscription_ended", org_id=org_id, target=current, summary=f"ends on {on}")
    return subscribe(org_id, plan_id, on, later_end)


@dataclass(frozen=True)
class Segment:
    """A part of a month on one plan version."""

    plan: Plan
    start: date
    end: date  # exclusive


def segments(org_id: int, start: date, end: date) -> list[Segment]:
    """The org's plan versions over local days `start`..`end`, in order, each clipped to the span."""
    found = db.session.scalars(
        select(Subscription)
        .where(
            Subscription.org_id == org_id,
            Subscription.starts_on < end,
            or_(Subscription.ends_on.is_(None), Subscription.ends_on > start),
        )
        .order_by(Subscription.starts_on)
    ).all()
    return [Segment(get_plan(s.plan_id), max(s.starts_on, start), min(s.ends_on or end, end)) for s in found]


def plan_on(org_id: int, day: date) -> Plan | None:
    found = segments(org_id, day, date.fromordinal(day.toordinal() + 1))
    return found[-1].plan if found else None
