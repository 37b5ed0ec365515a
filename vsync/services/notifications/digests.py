"""Daily and weekly digests: the previous local day or week of an org, against the period before.

When. A person's digest is due once the org's local clock has reached their chosen hour (`digest_hour`)
on the day it is for (weekly: Mondays), and it is for the period that just ended: the previous local
day, or the previous Monday-to-Sunday week. "Reached" rather than "is": on a DST day the chosen local
hour may not exist (the clocks jump past it: the digest goes at the first minute after the jump) or
may happen twice (the second time finds it sent). Either way, and whatever happens to the workers and
cron processes, the outbox key `digest:<org>:<user>:<daily|weekly>:<period>` makes it one message.

What. The KPI tiles of `vsync.metrics.summary` for the period and the one before, the busiest local
hour, the top numbers and agents, and the callers whose missed calls (missed or dropped inbound
calls) in the period have had no outbound call to their number since, with how many times they
tried and when last, each linked into the console. Every figure is computed in the person's own
tenant scope, so an agent's digest holds only the agent's own calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select

from vsync import metrics
from vsync.extensions import db
from vsync.models import Call, Integration, Membership, Organization, OutboundEmail, User
from vsync.models.traffic import CALLBACK, DROPPED, INBOUND, MISSED, OUTBOUND
from vsync.query import Window, org_zone
from vsync.services.notifications import mail, preferences
from vsync.services.notifications.preferences import DAILY, DIGEST, DIGEST_HOUR, OFF, WEEKLY
from vsync.tenancy import AGENT, Scope

TOP = 5
MISSED_CALLERS = 20
TILES = (  # (KPI, label, how it is shown)
    ("total_calls", "Calls", "count"),
    ("answered_calls", "Answered", "count"),
    ("missed_calls", "Missed", "count"),
    ("answer_rate", "Answer rate", "rate"),
    ("service_level", "Service level", "rate"),
    ("abandon_rate", "Abandon rate", "rate"),
    ("avg_speed_of_answer_seconds", "Average speed of answer", "seconds"),
)


@dataclass(frozen=True)
class Period:
    kind: str  # daily | weekly
    first: date  # local dates, both included
    last: date

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.first.isoformat()}"

    @property
    def label(self) -> str:
        if self.kind == DAILY:
            return f"{self.first:%A} {self.first.day} {self.first:%B %Y}"
        return f"the week of {self.first.day} {self.first:%B %Y}"

    def window(self, tz) -> Window:
        return Window.local_days(tz, self.first, self.last)

    def before(self) -> Period:
        length = (self.last - self.first).days + 1
        return Period(self.kind, self.first - timedelta(days=length), self.first - timedelta(days=1))


def due_period(kind: str, hour: int, now: datetime, tz) -> Period | None:
    """The period a digest of `kind` at local `hour` is due for at `now`, or None (see the module
    docstring: due once the local clock has reached the hour, on the day the digest is for)."""
    local = now.astimezone(tz)
    if kind == OFF or local.hour < hour or (kind == WEEKLY and local.weekday() != 0):
        return None
    today = local.date()
    if kind == DAILY:
        return Period(DAILY, today - timedelta(days=1), today - timedelta(days=1))
    return Period(WEEKLY, today - timedelta(days=7), today - timedelta(days=1))


def digest_key(org_id: int, user_id: int, period: Period) -> str:
    return f"digest:{org_id}:{user_id}:{period.key}"


@dataclass(frozen=True)
class DueDigest:
    org_id: int
    membership_id: int
    scope: Scope
    period: Period


def due_digests(now: datetime) -> list[DueDigest]:
    """Every digest due at `now` and not yet decided, across all orgs (in a platform bypass), each
    with the tenant scope its figures are computed in (the person's role; an agent's extension)."""
    due = []
    for org in db.session.scalars(select(Organization).order_by(Organization.id)):
        tz = org_zone(org)
        accounts = tuple(
            sorted(set(db.session.scalars(select(Integration.account_id).where(Integration.org_id == org.id))))
        )
        memberships = db.session.scalars(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == org.id, User.active.is_(True))
            .order_by(Membership.id)
        )
        for membership in memberships:
            prefs = preferences.preferences_of(membership)
            period = due_period(prefs[DIGEST], int(prefs[DIGEST_HOUR]), now, tz)
            if period is None or _decided(digest_key(org.id, membership.user_id, period)):
                continue
            scope = Scope(
                org_id=org.id,
                role=membership.role,
                extension=membership.extension,
                accounts=accounts if membership.role == AGENT else (),
            )
            due.append(DueDigest(org.id, membership.id, scope, period))
    return due


def _decided(key: str) -> bool:
    return db.session.scalar(select(OutboundEmail.id).where(OutboundEmail.dedupe_key == key)) is not None


def queue_digest(membership_id: int, period: Period, now: datetime) -> OutboundEmail | None:
    """Decide one person's digest, in their own tenant scope; None when it was decided already.
    The caller commits, which sends it."""
    membership = db.session.get_one(Membership, membership_id)  # due_digests found it
    org = db.session.get_one(Organization, membership.org_id)
    context = digest_context(org, period, now)
    context["role"] = membership.role
    row = mail.queue_email(
        org.id,
        kind="digest",
        key=digest_key(org.id, membership.user_id, period),
        to=membership.user.email,
        template="digest",
        context=context,
        user_id=membership.user_id,
    )
    if row is not None:
        url = f"{mail.public_url()}/unsubscribe/{preferences.unsubscribe_token(org.id, row.id, DIGEST)}"
        row.context = {
            **context,
            "unsubscribe_url": url,
            "headers": {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        }
        db.session.flush()
    return row


def _shown(value, how: str) -> str:
    if value is None:
        return "–"
    if how == "rate":
        return f"{value * 100:.1f} %"
    if how == "seconds":
        return f"{value:.1f} s"
    return str(value)


def _tiles(now_kpis: dict, before_kpis: dict) -> list[dict]:
    tiles = []
    for key, label, how in TILES:
        value, before = now_kpis[key], before_kpis[key]
        change = None if value is None or before is None else (value > before) - (value < before)
        tiles.append(
            {
                "label": label,
                "value": _shown(value, how),
                "before": _shown(before, how),
                "change": {1: "up", -1: "down", 0: "same", None: ""}[change],
            }
        )
    return tiles


def _console(org: Organization, path: str = "", **query) -> str:
    return f"{mail.public_url()}/admin/orgs/{org.slug}/{path}" + (f"?{urlencode(query)}" if query else "")


def missed_callers(window: Window, now: datetime) -> list[dict]:
    """Callers with missed or dropped inbound calls in the window and no outbound call to their number
    from their last missed call until `now`: number, tries, last try (UTC), most recent first."""
    tried = db.session.execute(
        select(Call.from_number, func.count(), func.max(Call.started_at))
        .where(
            Call.started_at >= window.start,
            Call.started_at < window.end,
            Call.direction == INBOUND,
            Call.status.in_((MISSED, DROPPED)),
            Call.from_number.is_not(None),
        )
        .group_by(Call.from_number)
    ).all()
    if not tried:
        return []
    called_back = dict(
        db.session.execute(
            select(Call.to_number, func.max(Call.started_at))
            .where(
                Call.direction.in_((OUTBOUND, CALLBACK)),
                Call.to_number.in_([number for number, *_ in tried]),
                Call.started_at >= window.start,
                Call.started_at < now,
            )
            .group_by(Call.to_number)
        )
        .tuples()
        .all()
    )
    waiting = [
        {"number": number, "tries": tries, "last": last}
        for number, tries, last in tried
        if called_back.get(number) is None or called_back[number] < last
    ]
    return sorted(waiting, key=lambda caller: caller["last"], reverse=True)[:MISSED_CALLERS]


def digest_context(org: Organization, period: Period, now: datetime) -> dict:
    """What the digest template shows (JSON, kept with the message), computed in the current scope."""
    tz = org_zone(org)
    window, before = period.window(tz), period.before().window(tz)
    summary = metrics.summary(org, window)
    busiest = summary["busiest_hour"]
    numbers = sorted(metrics.by_number(org, window), key=lambda row: (-row["total_calls"], row["e164"]))[:TOP]
    agents = sorted(metrics.by_agent(org, window), key=lambda row: (-row["calls_handled"], row["extension"]))[:TOP]
    days = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    return {
        "kind": period.kind,
        "period": period.label,
        "timezone": org.timezone,
        "tiles": _tiles(summary, metrics.summary(org, before)),
        "busiest_hour": None if busiest is None else f"{busiest:02d}:00–{(busiest + 1) % 24:02d}:00",
        "top_numbers": [
            {
                "number": row["e164"],
                "label": row["label"],
                "calls": row["total_calls"],
                "missed": row["missed_calls"],
                "url": _console(org, "calls/", number=row["e164"], **days),
            }
            for row in numbers
        ],
        "top_agents": [
            {
                "name": row["display_name"] or f"Extension {row['extension']}",
                "calls": row["calls_handled"],
                "answered": row["answered_calls"],
                "url": _console(org, "calls/", agent=row["extension"], **days),
            }
            for row in agents
        ],
        "missed_callers": [
            {
                "number": caller["number"],
                "tries": caller["tries"],
                "last": f"{caller['last'].astimezone(tz):%a %d %b %H:%M}",
                "url": _console(org, "calls/", q=caller["number"], **days),
            }
            for caller in missed_callers(window, now)
        ],
        "dashboard_url": _console(org),
        "calls_url": _console(org, "calls/", **days),
        "preferences_url": _console(org, "notifications/"),
    }
