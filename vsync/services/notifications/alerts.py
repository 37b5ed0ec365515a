"""Alert rules: evaluated every minute within the org's business hours; a firing is kept, and sent by
email once when its condition starts and once when it ends.

Conditions (each rule has a `window_minutes` W, and the service-level rule a `threshold` T):

- `service_level`: the service level (`vsync.metrics`) of the calls started in the last W minutes is
  below T. It resolves when it is at least T + `RESOLVE_MARGIN` (capped at 100 %), so a level moving
  around T does not fire and resolve every minute. With no calls in its sample it is unknown, and
  nothing changes.
- `silence`: no call (any direction) started in the last W minutes, while all of those W minutes lie
  in business hours (so opening time after a quiet night does not fire). It resolves at the next call.

Outside business hours rules are not evaluated: nothing fires and nothing resolves. Business hours are
a weekly schedule in the org's time zone (`BusinessHours`, or `DEFAULT_BUSINESS_HOURS`).

Once: an open firing is unique per rule (a partial unique index) and its resolution is a conditional
update, so two cron processes evaluating the same minute fire and resolve it once; each email of it
has an outbox key per (firing, fired or resolved, person).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, func, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from vsync import metrics
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import AlertEvent, AlertRule, BusinessHours, Call, Membership, Organization, User
from vsync.models.notifications import ALERT_KINDS, DEFAULT_BUSINESS_HOURS, SERVICE_LEVEL, SILENCE
from vsync.query import Window, org_zone
from vsync.services import audit
from vsync.services.notifications import mail, preferences

RESOLVE_MARGIN = 0.05
MAX_WINDOW_MINUTES = 24 * 60
PREFERENCE_OF = {SERVICE_LEVEL: preferences.ALERT_SERVICE_LEVEL, SILENCE: preferences.ALERT_SILENCE}
DESCRIPTIONS = {SERVICE_LEVEL: "Service level below target", SILENCE: "No calls"}


# --- rules and hours ------------------------------------------------------------------------------


def save_rule(
    org: Organization, kind: str, *, window_minutes: int, threshold: float = 0.0, enabled: bool = True
) -> AlertRule:
    """Create or change the org's rule of `kind`; audited."""
    if kind not in ALERT_KINDS:
        raise ValidationError(f"An alert is one of {', '.join(ALERT_KINDS)}.", field="kind")
    if not isinstance(window_minutes, int) or not 1 <= window_minutes <= MAX_WINDOW_MINUTES:
        raise ValidationError(f"The window is 1 to {MAX_WINDOW_MINUTES} minutes.", field="window_minutes")
    if kind == SERVICE_LEVEL and not 0 < threshold <= 1:
        raise ValidationError("The threshold is a fraction above 0 and at most 1 (0.8 is 80 %).", field="threshold")
    rule = db.session.scalar(select(AlertRule).where(AlertRule.org_id == org.id, AlertRule.kind == kind))
    if rule is None:
        rule = AlertRule(org_id=org.id, kind=kind)
        db.session.add(rule)
    rule.window_minutes, rule.enabled = window_minutes, enabled
    rule.threshold = threshold if kind == SERVICE_LEVEL else 0.0
    db.session.flush()
    audit.record(
        "alerts.rule_saved",
        org_id=org.id,
        target=rule,
        summary=f"{kind}: window {window_minutes} min, threshold {rule.threshold}, {'on' if enabled else 'off'}",
    )
    return rule


def business_hours(org: Organization) -> dict[int, tuple[int, int]]:
    """Local weekday (0 Monday) → (opens, closes), minutes after midnight; days without are closed."""
    rows = db.session.scalars(select(BusinessHours).where(BusinessHours.org_id == org.id)).all()
    return {row.weekday: (row.opens, row.closes) for row in rows} if rows else dict(DEFAULT_BUSINESS_HOURS)


def set_business_hours(org: Organization, hours: dict[int, tuple[int, int] | None]) -> None:
    """Replace the org's weekly schedule (a day mapped to None is closed); audited."""
    for weekday, span in hours.items():
        if weekday not in range(7):
            raise ValidationError("A weekday is 0 (Monday) to 6 (Sunday).", field="weekday")
        if span is not None and not 0 <= span[0] < span[1] <= 1440:
            raise ValidationError("Hours open before they close, within the day.", field="hours")
    for row in db.session.scalars(select(BusinessHours).where(BusinessHours.org_id == org.id)):
        db.session.delete(row)
    db.session.flush()
    for weekday, span in sorted(hours.items()):
        if span is not None:
            db.session.add(BusinessHours(org_id=org.id, weekday=weekday, opens=span[0], closes=span[1]))
    db.session.flush()
    audit.record(
        "alerts.business_hours_saved",
        org_id=org.id,
        summary=", ".join(
            f"{weekday}: {format_span(span)}" for weekday, span in sorted(hours.items()) if span is not None
        )
        or "closed every day",
    )


def parse_span(text: str | None, *, field: str) -> tuple[int, int] | None:
    """`HH:MM-HH:MM` (24:00 allowed as the end) as minutes after midnight; empty is closed."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        opens, closes = (_minutes(part) for part in text.split("-"))
    except ValueError:
        raise ValidationError(f"{text!r} is not hours like 09:00-17:00.", field=field) from None
    if not opens < closes:
        raise ValidationError(f"{text!r}: hours open before they close, within the day.", field=field)
    return opens, closes


def _minutes(part: str) -> int:
    hours, minutes = (int(x) for x in part.strip().split(":"))
    if not (0 <= minutes < 60 and 0 <= hours * 60 + minutes <= 1440):
        raise ValueError(part)
    return hours * 60 + minutes


def format_span(span: tuple[int, int] | None) -> str:
    return "" if span is None else "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in span)


def open_for(org: Organization, start: datetime, end: datetime) -> bool:
    """Whether the whole of [start, end] lies in one business-hours span of one local day."""
    tz, hours = org_zone(org), business_hours(org)
    first, last = start.astimezone(tz), end.astimezone(tz)
    span = hours.get(first.weekday())
    return (
        span is not None
        and first.date() == last.date()
        and span[0] <= _minute_of_day(first)
        and _minute_of_day(last) < span[1]
    )


def _minute_of_day(local: datetime) -> int:
    return local.hour * 60 + local.minute


# --- evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    event_id: int
    state: str  # fired | resolved


def _measure(org: Organization, rule: AlertRule, now: datetime) -> float | None:
    start = now - timedelta(minutes=rule.window_minutes)
    if rule.kind == SERVICE_LEVEL:
        return metrics.summary(org, Window(start, now, org_zone(org)))["service_level"]
    return float(
        db.session.execute(
            select(func.count()).select_from(Call).where(Call.started_at >= start, Call.started_at < now)
        ).scalar_one()
    )


def _condition(rule: AlertRule, value: float | None, is_open: bool) -> bool | None:
    """Whether the rule's condition holds (None: unknown, so no change), with the resolve margin."""
    if value is None:
        return None
    if rule.kind == SILENCE:
        return value == 0
    if is_open:
        return value < min(rule.threshold + RESOLVE_MARGIN, 1.0)
    return value < rule.threshold


def orgs_with_rules() -> list[int]:
    """Ids of the orgs with an enabled rule (platform-wide, in a bypass)."""
    return list(
        db.session.scalars(
            select(AlertRule.org_id).where(AlertRule.enabled.is_(True)).distinct().order_by(AlertRule.org_id)
        )
    )


def evaluate(org: Organization, now: datetime) -> list[Change]:
    """Evaluate the org's enabled rules at `now`, in its tenant scope: fire and resolve, decide the
    emails. The caller commits (which sends them)."""
    changes = []
    for rule in db.session.scalars(
        select(AlertRule).where(AlertRule.org_id == org.id, AlertRule.enabled.is_(True)).order_by(AlertRule.id)
    ):
        window_open = open_for(org, now - timedelta(minutes=rule.window_minutes if rule.kind == SILENCE else 0), now)
        if not window_open:
            continue
        firing = db.session.scalar(
            select(AlertEvent).where(AlertEvent.rule_id == rule.id, AlertEvent.resolved_at.is_(None))
        )
        value = _measure(org, rule, now)
        holds = _condition(rule, value, firing is not None)
        if holds and firing is None:
            change = _fire(org, rule, value, now)
        elif holds is False and firing is not None:
            change = _resolve(firing, value, now)
        else:
            change = None
        if change is not None:
            _notify(org, rule, change, value)
            changes.append(change)
    return changes


def _fire(org: Organization, rule: AlertRule, value: float | None, now: datetime) -> Change | None:
    event = AlertEvent(org_id=org.id, rule_id=rule.id, fired_at=now, fired_value=value)
    try:
        with db.session.begin_nested():
            db.session.add(event)
    except IntegrityError:
        return None  # another evaluation of this minute fired it
    return Change(event.id, "fired")


def _resolve(firing: AlertEvent, value: float | None, now: datetime) -> Change | None:
    resolved = cast(
        CursorResult,
        db.session.execute(
            update(AlertEvent)
            .where(AlertEvent.id == firing.id, AlertEvent.resolved_at.is_(None))
            .values(resolved_at=now, resolved_value=value)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    return Change(firing.id, "resolved") if resolved == 1 else None


def _shown(rule: AlertRule, value: float | None) -> str:
    if rule.kind == SERVICE_LEVEL:
        return "unknown" if value is None else f"{value * 100:.1f} %"
    return f"{int(value or 0)} calls"


def _notify(org: Organization, rule: AlertRule, change: Change, value: float | None) -> None:
    """One email per member whose preference for this kind of alert is on."""
    key = PREFERENCE_OF[rule.kind]
    members = db.session.scalars(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org.id, User.active.is_(True))
    )
    condition = (
        f"below {rule.threshold * 100:.0f} % over the last {rule.window_minutes} minutes"
        if rule.kind == SERVICE_LEVEL
        else f"for {rule.window_minutes} minutes in business hours"
    )
    context = {
        "state": change.state,
        "what": DESCRIPTIONS[rule.kind],
        "condition": condition,
        "value": _shown(rule, value),
        "history_url": f"{mail.public_url()}/admin/orgs/{org.slug}/alerts/",
    }
    for membership in members:
        if preferences.preferences_of(membership)[key] == preferences.ON:
            mail.queue_email(
                org.id,
                kind="alert",
                key=f"alert:{change.event_id}:{change.state}:{membership.user_id}",
                to=membership.user.email,
                template="alert",
                context=context,
                user_id=membership.user_id,
            )


def rules(org: Organization) -> dict[str, AlertRule]:
    """The org's rules by kind."""
    return {rule.kind: rule for rule in db.session.scalars(select(AlertRule).where(AlertRule.org_id == org.id))}


def history(
    org: Organization, limit: int = 50, *, window: Window | None = None, after: tuple[datetime, int] | None = None
) -> list[AlertEvent]:
    """The org's latest firings, newest first: those that fired within `window` when given, and
    after `after` (the (fired_at, id) of the last one of a previous page) when given."""
    query = select(AlertEvent).where(AlertEvent.org_id == org.id)
    if window is not None:
        query = query.where(AlertEvent.fired_at >= window.start, AlertEvent.fired_at < window.end)
    if after is not None:
        moment, event_id = after
        query = query.where(
            tuple_(AlertEvent.fired_at, AlertEvent.id)
            < tuple_(literal(moment, AlertEvent.fired_at.type), literal(event_id, AlertEvent.id.type))
        )
    return list(db.session.scalars(query.order_by(AlertEvent.fired_at.desc(), AlertEvent.id.desc()).limit(limit)))
