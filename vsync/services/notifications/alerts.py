"""Alert rules: evaluated every minute within the org's business hours; a firing is kept, emailed once
when its condition starts and once when it ends, and POSTed to the org's outbound webhook, if it has
one (`alert_webhooks`).

Conditions. Each rule has a window of W minutes (`window_minutes`) and, where it says so, a threshold
T (`threshold`). "The calls of the window" are the calls the org sees that started in
[now - W, now); rates are `vsync.metrics`' figures over them, so an alert and the dashboard agree.

- `service_level`: the service level of the calls of the window is below T (a fraction, 0 < T <= 1).
  It resolves when it is at least T + `RESOLVE_MARGIN` (at most 1). With no call in its sample it is
  unknown, and nothing changes.
- `abandon_rate`: the abandon rate of the calls of the window is above T (a fraction, 0 <= T < 1).
  It resolves when it is at most T - `RESOLVE_MARGIN` (at least 0). Unknown without a sample: no change.
- `missed_calls`: more than T (a whole number, 0 or more) of the calls of the window are inbound calls
  missed or dropped (`missed_calls`, the KPI). It resolves when at most T - 1 are (0 when T is 0): a
  count that stays at T neither fires nor resolves. W is an hour by default in the console.
- `silence`: no call (any direction) started in the last W minutes, while all of those W minutes lie
  in business hours (so opening time after a quiet night does not fire). It resolves at the next call.
- `sync_failing`: a sync of the org's active integrations has been failing for at least W minutes:
  for some (integration, kind), runs have finished since its latest successful run (or ever, with
  none), all of them failed, and the first of them finished at least W minutes before now. The value
  is the longest such time, in minutes. It resolves when no kind has been failing that long, which
  only a successful run (or the integration being paused) brings about. T is unused.
- `webhook_silence`: the window saw calls MightyCall reported through the sync (calls read by a sync
  run, `synced_at` set, started in the window) but no webhook event was received for the org's
  integrations (`webhook_events.received_at` in the window, any status but `rejected`). The value is
  the number of those calls. It resolves once an event is received within the window; a window with
  neither calls nor events says nothing, and nothing changes. T is unused.

Outside business hours org rules are not evaluated: nothing fires and nothing resolves. Business
hours are a weekly schedule in the org's time zone (`BusinessHours`, or `DEFAULT_BUSINESS_HOURS`).

Platform staff: `sync_failing` and `webhook_silence` are also checked for every org, with or without
rules of its own, around the clock, with the windows `VSYNC_PLATFORM_SYNC_FAILING_MINUTES` and
`VSYNC_PLATFORM_WEBHOOK_SILENCE_MINUTES` (0 turns one off); such a firing (audience `platform`) is
emailed to every platform admin and listed in the platform console's *Alerts*, not the org's.

Once: an open firing is unique per (org, audience, kind) (a partial unique index) and its resolution
is a conditional update, so two cron processes evaluating the same minute fire and resolve it once;
each email of it has an outbox key per (firing, fired or resolved, person), each webhook POST a row
unique per (firing, fired or resolved).
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
from vsync.models import (
    AlertEvent,
    AlertRule,
    BusinessHours,
    Call,
    Integration,
    Membership,
    Organization,
    SyncRun,
    User,
    WebhookEvent,
)
from vsync.models.integrations import ACTIVE
from vsync.models.notifications import (
    ABANDON_RATE,
    ALERT_DESCRIPTIONS,
    ALERT_KINDS,
    DEFAULT_BUSINESS_HOURS,
    MISSED_CALLS,
    ORG_AUDIENCE,
    PLATFORM_AUDIENCE,
    SERVICE_LEVEL,
    SILENCE,
    SYNC_FAILING,
    WEBHOOK_SILENCE,
)
from vsync.models.operations import FAILED, REJECTED, SUCCEEDED
from vsync.models.orgs import PLATFORM_ADMIN
from vsync.query import Window, org_zone
from vsync.services import audit
from vsync.services.notifications import alert_webhooks, mail, preferences

RESOLVE_MARGIN = 0.05
MAX_WINDOW_MINUTES = 24 * 60
PREFERENCE_OF = {
    SERVICE_LEVEL: preferences.ALERT_SERVICE_LEVEL,
    SILENCE: preferences.ALERT_SILENCE,
    ABANDON_RATE: preferences.ALERT_ABANDON_RATE,
    MISSED_CALLS: preferences.ALERT_MISSED_CALLS,
    SYNC_FAILING: preferences.ALERT_SYNC_FAILING,
    WEBHOOK_SILENCE: preferences.ALERT_WEBHOOK_SILENCE,
}
DESCRIPTIONS = ALERT_DESCRIPTIONS
PLATFORM_KINDS = {
    SYNC_FAILING: "VSYNC_PLATFORM_SYNC_FAILING_MINUTES",
    WEBHOOK_SILENCE: "VSYNC_PLATFORM_WEBHOOK_SILENCE_MINUTES",
}


# --- rules and hours ------------------------------------------------------------------------------


def save_rule(
    org: Organization, kind: str, *, window_minutes: int, threshold: float = 0.0, enabled: bool = True
) -> AlertRule:
    """Create or change the org's rule of `kind`; audited. The threshold is checked against what the
    kind reads (a fraction, a count) and kept as 0 for the kinds without one."""
    if kind not in ALERT_KINDS:
        raise ValidationError(f"An alert is one of {', '.join(ALERT_KINDS)}.", field="kind")
    if not isinstance(window_minutes, int) or not 1 <= window_minutes <= MAX_WINDOW_MINUTES:
        raise ValidationError(f"The window is 1 to {MAX_WINDOW_MINUTES} minutes.", field="window_minutes")
    if threshold is None or threshold != threshold or threshold < 0:
        raise ValidationError("The threshold may not be negative.", field="threshold")
    if kind == SERVICE_LEVEL and not 0 < threshold <= 1:
        raise ValidationError("The threshold is a fraction above 0 and at most 1 (0.8 is 80 %).", field="threshold")
    if kind == ABANDON_RATE and not threshold < 1:
        raise ValidationError("The threshold is a fraction below 1 (0.1 is 10 %).", field="threshold")
    if kind == MISSED_CALLS and threshold != int(threshold):
        raise ValidationError("The threshold is a whole number of missed calls.", field="threshold")
    rule = db.session.scalar(select(AlertRule).where(AlertRule.org_id == org.id, AlertRule.kind == kind))
    if rule is None:
        rule = AlertRule(org_id=org.id, kind=kind)
        db.session.add(rule)
    rule.window_minutes, rule.enabled = window_minutes, enabled
    rule.threshold = float(threshold) if kind in (SERVICE_LEVEL, ABANDON_RATE, MISSED_CALLS) else 0.0
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
class Check:
    """What is evaluated: an org's rule, or a platform check (no rule)."""

    kind: str
    window_minutes: int
    threshold: float = 0.0
    audience: str = ORG_AUDIENCE
    rule_id: int | None = None


@dataclass(frozen=True)
class Change:
    event_id: int
    state: str  # fired | resolved


def _calls_between(start: datetime, end: datetime, *criteria) -> int:
    return db.session.execute(
        select(func.count()).select_from(Call).where(Call.started_at >= start, Call.started_at < end, *criteria)
    ).scalar_one()


def _failing_minutes(now: datetime) -> float:
    """The longest time, in minutes, that a sync (integration, kind) of the org's active integrations
    has been failing: since the first failed run that finished after its latest successful one."""
    active = select(Integration.id).where(Integration.status == ACTIVE)
    finished = (SyncRun.finished_at.is_not(None), SyncRun.finished_at <= now, SyncRun.integration_id.in_(active))
    succeeded = (
        select(SyncRun.integration_id, SyncRun.kind, func.max(SyncRun.finished_at).label("last_success"))
        .where(*finished, SyncRun.status == SUCCEEDED)
        .group_by(SyncRun.integration_id, SyncRun.kind)
        .subquery()
    )
    first_failures = db.session.execute(
        select(func.min(SyncRun.finished_at))
        .outerjoin(
            succeeded, (succeeded.c.integration_id == SyncRun.integration_id) & (succeeded.c.kind == SyncRun.kind)
        )
        .where(
            *finished,
            SyncRun.status == FAILED,
            succeeded.c.last_success.is_(None) | (SyncRun.finished_at > succeeded.c.last_success),
        )
        .group_by(SyncRun.integration_id, SyncRun.kind)
    ).scalars()
    return max(((now - first).total_seconds() / 60 for first in first_failures if first is not None), default=0.0)


def _measure(org: Organization, check: Check, now: datetime, is_open: bool) -> tuple[bool | None, float | None]:
    """Whether the check's condition holds at `now` (None: unknown, so no change), with hysteresis for
    an open firing, and the value it is about."""
    start = now - timedelta(minutes=check.window_minutes)
    t = check.threshold
    if check.kind in (SERVICE_LEVEL, ABANDON_RATE, MISSED_CALLS):
        value = metrics.summary(org, Window(start, now, org_zone(org)))[check.kind]
        if value is None:
            return None, None
        value = float(value)
        if check.kind == SERVICE_LEVEL:
            return value < (min(t + RESOLVE_MARGIN, 1.0) if is_open else t), value
        if check.kind == ABANDON_RATE:
            return value > (max(t - RESOLVE_MARGIN, 0.0) if is_open else t), value
        return value > (max(t - 1, 0.0) if is_open else t), value
    if check.kind == SILENCE:
        value = float(_calls_between(start, now))
        return value == 0, value
    if check.kind == SYNC_FAILING:
        value = round(_failing_minutes(now), 1)
        return value >= check.window_minutes, value
    synced = float(_calls_between(start, now, Call.synced_at.is_not(None)))
    events = db.session.execute(
        select(func.count())
        .select_from(WebhookEvent)
        .where(WebhookEvent.received_at >= start, WebhookEvent.received_at < now, WebhookEvent.status != REJECTED)
    ).scalar_one()
    if events:
        return False, synced
    return (True, synced) if synced else (None, None)


def orgs_with_rules() -> list[int]:
    """Ids of the orgs with an enabled rule (platform-wide, in a bypass)."""
    return list(
        db.session.scalars(
            select(AlertRule.org_id).where(AlertRule.enabled.is_(True)).distinct().order_by(AlertRule.org_id)
        )
    )


def every_org() -> list[int]:
    """Ids of every org, for the platform checks (platform-wide, in a bypass)."""
    return list(db.session.scalars(select(Organization.id).order_by(Organization.id)))


def platform_recipients() -> list[tuple[int, str]]:
    """(user id, email) of every active platform admin (platform-wide, in a bypass)."""
    rows = db.session.execute(
        select(User.id, User.email).where(User.role == PLATFORM_ADMIN, User.active.is_(True)).order_by(User.id)
    )
    return [(user_id, email) for user_id, email in rows.tuples()]


def evaluate(org: Organization, now: datetime) -> list[Change]:
    """Evaluate the org's enabled rules at `now`, in its tenant scope: fire and resolve, decide the
    emails and webhook POSTs. The caller commits (which sends them)."""
    changes = []
    for rule in db.session.scalars(
        select(AlertRule).where(AlertRule.org_id == org.id, AlertRule.enabled.is_(True)).order_by(AlertRule.id)
    ):
        window_open = open_for(org, now - timedelta(minutes=rule.window_minutes if rule.kind == SILENCE else 0), now)
        if not window_open:
            continue
        check = Check(rule.kind, rule.window_minutes, rule.threshold, ORG_AUDIENCE, rule.id)
        change, value = _apply(org, check, now)
        if change is not None:
            _notify(org, rule, change, value)
            alert_webhooks.queue_delivery(org, change.event_id, change.state)
            changes.append(change)
    return changes


def platform_checks(config) -> list[Check]:
    """The platform's checks of every org: the kinds of `PLATFORM_KINDS` whose window is set."""
    return [
        Check(kind, int(config[setting]), audience=PLATFORM_AUDIENCE)
        for kind, setting in PLATFORM_KINDS.items()
        if int(config[setting]) > 0
    ]


def evaluate_platform(
    org: Organization, now: datetime, checks: list[Check], recipients: list[tuple[int, str]]
) -> list[Change]:
    """Evaluate the platform checks of the org at `now`, in its tenant scope, at any hour: fire and
    resolve, and email every platform admin (`recipients`). The caller commits."""
    changes = []
    for check in checks:
        change, value = _apply(org, check, now)
        if change is not None:
            context = _context(org, check, change, value)
            context["history_url"] = f"{mail.public_url()}/admin/platform/alerts/"
            for user_id, email in recipients:
                mail.queue_email(
                    org.id,
                    kind="alert",
                    key=f"platform-alert:{change.event_id}:{change.state}:{user_id}",
                    to=email,
                    template="alert",
                    context=context,
                    user_id=user_id,
                )
            changes.append(change)
    return changes


def _apply(org: Organization, check: Check, now: datetime) -> tuple[Change | None, float | None]:
    firing = db.session.scalar(
        select(AlertEvent).where(
            AlertEvent.org_id == org.id,
            AlertEvent.audience == check.audience,
            AlertEvent.kind == check.kind,
            AlertEvent.resolved_at.is_(None),
        )
    )
    holds, value = _measure(org, check, now, firing is not None)
    if holds and firing is None:
        return _fire(org, check, value, now), value
    if holds is False and firing is not None:
        return _resolve(firing, value, now), value
    return None, value


def _fire(org: Organization, check: Check, value: float | None, now: datetime) -> Change | None:
    event = AlertEvent(
        org_id=org.id,
        rule_id=check.rule_id,
        kind=check.kind,
        audience=check.audience,
        fired_at=now,
        fired_value=value,
    )
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


def shown(kind: str, value: float | None) -> str:
    """An alert's value as people read it."""
    if value is None:
        return "unknown"
    if kind in (SERVICE_LEVEL, ABANDON_RATE):
        return f"{value * 100:.1f} %"
    if kind == SYNC_FAILING:
        return f"failing for {value:.0f} minutes"
    if kind == MISSED_CALLS:
        return f"{int(value)} missed calls"
    if kind == WEBHOOK_SILENCE:
        return f"{int(value)} synced calls"
    return f"{int(value)} calls"


def condition(kind: str, window_minutes: int, threshold: float) -> str:
    """A rule's condition in words (emails and the console)."""
    w = window_minutes
    return {
        SERVICE_LEVEL: f"below {threshold * 100:.1f} % over the last {w} minutes",
        ABANDON_RATE: f"above {threshold * 100:.1f} % over the last {w} minutes",
        MISSED_CALLS: f"more than {int(threshold)} missed calls in the last {w} minutes",
        SILENCE: f"no call for {w} minutes in business hours",
        SYNC_FAILING: f"alerting after {w} minutes of failed runs",
        WEBHOOK_SILENCE: f"synced calls but no webhook event in the last {w} minutes",
    }[kind]


def _context(org: Organization, check: Check, change: Change, value: float | None) -> dict:
    return {
        "state": change.state,
        "what": DESCRIPTIONS[check.kind],
        "condition": condition(check.kind, check.window_minutes, check.threshold),
        "value": shown(check.kind, value),
        "history_url": f"{mail.public_url()}/admin/orgs/{org.slug}/alerts/",
    }


def _notify(org: Organization, rule: AlertRule, change: Change, value: float | None) -> None:
    """One email per member whose preference for this kind of alert is on."""
    key = PREFERENCE_OF[rule.kind]
    members = db.session.scalars(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org.id, User.active.is_(True))
    )
    context = _context(org, Check(rule.kind, rule.window_minutes, rule.threshold), change, value)
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
    """The latest firings of the org's rules, newest first: those that fired within `window` when given, and
    after `after` (the (fired_at, id) of the last one of a previous page) when given."""
    query = select(AlertEvent).where(AlertEvent.org_id == org.id, AlertEvent.audience == ORG_AUDIENCE)
    if window is not None:
        query = query.where(AlertEvent.fired_at >= window.start, AlertEvent.fired_at < window.end)
    if after is not None:
        moment, event_id = after
        query = query.where(
            tuple_(AlertEvent.fired_at, AlertEvent.id)
            < tuple_(literal(moment, AlertEvent.fired_at.type), literal(event_id, AlertEvent.id.type))
        )
    return list(db.session.scalars(query.order_by(AlertEvent.fired_at.desc(), AlertEvent.id.desc()).limit(limit)))


def platform_history(limit: int = 200) -> list[tuple[AlertEvent, str]]:
    """Every org's latest firings, of its rules and of the platform checks, newest first, with the
    org's slug (platform-wide, in a bypass)."""
    rows = db.session.execute(
        select(AlertEvent, Organization.slug)
        .join(Organization, Organization.id == AlertEvent.org_id)
        .order_by(AlertEvent.fired_at.desc(), AlertEvent.id.desc())
        .limit(limit)
    )
    return [(event, slug) for event, slug in rows.tuples()]
