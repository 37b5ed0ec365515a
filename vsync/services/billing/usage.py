"""What an org used in a span of local calendar days: calls and billable talk time by direction, SMS
sent and received, number-days and recordings.

Read in the org's tenant scope, which the caller has entered (a request's, or a job's `tenant(...)`):
the tenant filter decides which calls, SMS and recordings are the org's exactly as it does for the
KPIs and lists (a row counts for each org whose assignment period of its number covers the row's
time, so a shared number's calls count for every org holding it, a moved number's for each in its
own period). No org filter is written here.

Talk time is rounded per call, as the plan says: up to the started second (`second`) or the started
minute (`minute`, the telecom convention). Number-days: each local day on which one of the org's
assignment periods of a number holds any instant counts one day for that number.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, or_, select

from vsync.extensions import db
from vsync.models import Call, NumberAssignment, Organization, Recording, SmsMessage
from vsync.models.billing import PER_MINUTE, PER_SECOND
from vsync.models.traffic import CALLBACK, INBOUND, OUTBOUND
from vsync.tenancy import TenancyError, current_org_id

CALL_DIRECTIONS = (INBOUND, OUTBOUND, CALLBACK)
_UNIT_MS = {PER_SECOND: 1000, PER_MINUTE: 60_000}


@dataclass(frozen=True)
class Usage:
    start: date
    end: date  # exclusive
    rounding: str
    calls: dict[str, int] = field(default_factory=dict)  # by direction
    talk_seconds: dict[str, int] = field(default_factory=dict)  # billable, rounded per call, by direction
    sms_sent: int = 0
    sms_received: int = 0
    number_days: int = 0
    recordings: int = 0

    @property
    def talk_minutes(self) -> Decimal:
        return Decimal(sum(self.talk_seconds.values())) / 60

    @property
    def sms(self) -> int:
        return self.sms_sent + self.sms_received

    def as_dict(self) -> dict:
        return {
            "rounding": self.rounding,
            "calls": dict(self.calls),
            "talk_minutes": {d: str(Decimal(s) / 60) for d, s in self.talk_seconds.items()},
            "talk_minutes_total": str(self.talk_minutes),
            "sms_sent": self.sms_sent,
            "sms_received": self.sms_received,
            "number_days": self.number_days,
            "recordings": self.recordings,
        }


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day begins (a DST change makes some days 23 or 25 hours long)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def last_complete_month(now: datetime, timezone: str) -> tuple[int, int]:
    """(year, month) of the last month that is over at `now` in the zone `timezone`."""
    local = now.astimezone(ZoneInfo(timezone))
    return (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)


def month_span(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    return start, date(year + month // 12, month % 12 + 1, 1)


def _org_zone(org_id: int) -> ZoneInfo:
    if current_org_id() != org_id:
        raise TenancyError(f"Usage of org {org_id} is read in its own tenant scope.")
    return ZoneInfo(db.session.get_one(Organization, org_id).timezone)


def _calls(lo: datetime, hi: datetime, unit_ms: int) -> tuple[dict[str, int], dict[str, int]]:
    units = case((Call.duration_ms > 0, (Call.duration_ms + (unit_ms - 1)) // unit_ms), else_=0)
    billable = func.coalesce(func.sum(units), 0)
    rows = db.session.execute(
        select(Call.direction, func.count(), billable)
        .where(Call.started_at >= lo, Call.started_at < hi, Call.direction.in_(CALL_DIRECTIONS))
        .group_by(Call.direction)
    ).all()
    per_unit = unit_ms // 1000
    return (
        dict.fromkeys(CALL_DIRECTIONS, 0) | {d: n for d, n, _ in rows},
        dict.fromkeys(CALL_DIRECTIONS, 0) | {d: int(units) * per_unit for d, _, units in rows},
    )


def _sms(lo: datetime, hi: datetime) -> dict[str, int]:
    return dict(
        db.session.execute(
            select(SmsMessage.direction, func.count())
            .where(SmsMessage.sent_at >= lo, SmsMessage.sent_at < hi)
            .group_by(SmsMessage.direction)
        )
        .tuples()
        .all()
    )


def _number_days(start: date, end: date, zone: ZoneInfo) -> int:
    lo, hi = local_midnight(start, zone), local_midnight(end, zone)
    held = NumberAssignment
    periods = db.session.execute(
        select(held.phone_number_id, held.assigned_at, held.unassigned_at).where(
            held.assigned_at < hi, or_(held.unassigned_at.is_(None), held.unassigned_at > lo)
        )
    ).all()
    days: dict[int, set[date]] = defaultdict(set)
    for number_id, assigned, unassigned in periods:
        first = max(assigned, lo).astimezone(zone).date()
        last = (min(unassigned or hi, hi) - timedelta(microseconds=1)).astimezone(zone).date()
        days[number_id].update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return sum(len(held) for held in days.values())


def usage(org_id: int, start: date, end: date, rounding: str) -> Usage:
    """The org's usage over local days `start` up to (not including) `end`, in its tenant scope."""
    zone = _org_zone(org_id)
    lo, hi = local_midnight(start, zone), local_midnight(end, zone)
    calls, talk = _calls(lo, hi, _UNIT_MS[rounding])
    sms = _sms(lo, hi)
    recordings = db.session.execute(
        select(func.count()).select_from(Recording).where(Recording.started_at >= lo, Recording.started_at < hi)
    ).scalar_one()
    return Usage(
        start=start,
        end=end,
        rounding=rounding,
        calls=calls,
        talk_seconds=talk,
        sms_sent=sms.get(OUTBOUND, 0),
        sms_received=sms.get(INBOUND, 0),
        number_days=_number_days(start, end, zone),
        recordings=recordings,
    )


def local_today(org_id: int, now: datetime) -> date:
    return now.astimezone(_org_zone(org_id)).date()
