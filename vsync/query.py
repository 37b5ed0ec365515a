"""The query vocabulary every edge speaks: which calls a question is about.

A question about an org's traffic names a `Window` (calls started in `[start, end)`, seen in the org's
time zone) and optional `Filters` (a number, an agent, a direction). The API's metrics and list routes,
the console's calls list and dashboard, the KPI engine (`vsync.metrics`) and the traffic lists
(`vsync.services.traffic`) all take them from here, so a figure and the list it drills into count the
same calls, and every edge takes the same windows and refuses the same ones.

`Window.parse` is the one window parser: each edge reads `from`/`to` through it, with its cap
(`MAX_WINDOW`) and its `ValidationError`s naming the field, and shows the error in its own voice (the
API in its error envelope, the console as a flashed form error on a 400 page).

Local days: a day starts at the first instant of its local date (`local_day_start`), midnight or, when
a daylight saving gap swallows midnight, the end of the gap; a "to" date includes its whole day.

Presets (`PRESETS`, `Window.preset`) name the windows people ask for most, relative to the local
today; `Window.previous` is the period of the same length just before a window, the one a figure is
compared with.

Neutral by design: this module imports models and the time helpers, never services, edges or jobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, or_, select

from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import Agent, Call, Integration, Membership, Organization, PhoneNumber
from vsync.models.traffic import CALL_STATUSES, CALLBACK, INBOUND, OUTBOUND
from vsync.phones import normalize_e164
from vsync.timeutil import parse_utc

FILTER_DIRECTIONS = (INBOUND, OUTBOUND, CALLBACK)
# `direction=outbound` and the outbound figures count callbacks too.
OUTBOUND_DIRECTIONS = (OUTBOUND, CALLBACK)

# Named windows, relative to the org's local today (included where the window reaches it).
PRESETS = ("today", "yesterday", "last_7_days", "last_30_days", "this_month", "last_month")

# The longest window any edge may ask about: what a question costs follows its window, so no request
# scans a table's whole history.
MAX_WINDOW = timedelta(days=400)


# Local days


def org_zone(org: Organization) -> ZoneInfo:
    return ZoneInfo(org.timezone)


def local_day_start(day: date, zone: ZoneInfo, *, end: bool = False) -> datetime:
    """The first instant (UTC) of local `day`, or with `end` of the day after (a "to" date includes its
    day): midnight, or the end of a DST gap that swallowed midnight (`fold=0` reads a missing wall time
    with the offset before the gap)."""
    return datetime.combine(day + timedelta(days=1) if end else day, time(), zone).astimezone(UTC)


# The window


@dataclass(frozen=True)
class Window:
    """Calls started in `[start, end)` (aware datetimes, kept in UTC), seen in the local time of `tz`."""

    start: datetime
    end: datetime
    tz: ZoneInfo

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ValidationError(f"The window's {name} has no time zone.", field=name)
            object.__setattr__(self, name, value.astimezone(UTC))
        if self.start >= self.end:
            raise ValidationError("The window must start before it ends.", field="from")

    @classmethod
    def local_days(cls, tz: ZoneInfo, first: date, last: date) -> Window:
        """The local days `first` to `last`, both included."""
        return cls(local_day_start(first, tz), local_day_start(last, tz, end=True), tz)

    @classmethod
    def today(cls, tz: ZoneInfo, now: datetime | None = None) -> Window:
        """The org's local day that contains `now` (default: now)."""
        day = (now or datetime.now(UTC)).astimezone(tz).date()
        return cls.local_days(tz, day, day)

    @classmethod
    def parse(
        cls, tz: ZoneInfo, from_text: str | None = None, to_text: str | None = None, now: datetime | None = None
    ) -> Window:
        """A window from query text: each bound a local date (`YYYY-MM-DD`; `to` includes that day)
        or an ISO-8601 time with an offset. A missing `from` is the start of today, a missing `to`
        the end of today (local). At most `MAX_WINDOW` long, counted in local days.

        The one window parser: the API, the console's calls list and the dashboard all read `from`/`to`
        here, so they take the same windows and refuse the same ones with the same message, naming
        the field."""
        today = cls.today(tz, now)
        start = _parse_bound(from_text, tz, field="from", inclusive_day=False) if from_text else today.start
        end = _parse_bound(to_text, tz, field="to", inclusive_day=True) if to_text else today.end
        if start >= end:
            raise ValidationError("`from` must come before `to`.", field="from")
        if end > start.astimezone(tz) + MAX_WINDOW:  # local days: a daylight saving change adds no hour
            raise ValidationError(f"A window is at most {MAX_WINDOW.days} days.", field="from")
        return cls(start, end, tz)

    @classmethod
    def preset(cls, tz: ZoneInfo, name: str, now: datetime | None = None) -> Window:
        """A named window (`PRESETS`) of whole local days: today, yesterday, the last 7 or 30 days
        (today included), this month to today, or the whole previous month."""
        today = (now or datetime.now(UTC)).astimezone(tz).date()
        first_of_month = today.replace(day=1)
        days = {
            "today": (today, today),
            "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
            "last_7_days": (today - timedelta(days=6), today),
            "last_30_days": (today - timedelta(days=29), today),
            "this_month": (first_of_month, today),
            "last_month": ((first_of_month - timedelta(days=1)).replace(day=1), first_of_month - timedelta(days=1)),
        }
        if name not in days:
            raise ValidationError(f"range is one of {', '.join(PRESETS)}.", field="range")
        return cls.local_days(tz, *days[name])

    def local_day_span(self) -> tuple[date, date] | None:
        """The first and last local day of a window of whole local days, else None."""
        first, after = self.start_local.date(), self.end_local.date()
        if self.start != local_day_start(first, self.tz) or self.end != local_day_start(after, self.tz):
            return None
        return first, after - timedelta(days=1)

    def previous(self, now: datetime | None = None) -> Window:
        """The period of the same length just before this window, that a figure is compared with:
        as many local days before a window of whole local days (so a DST day is compared with a day,
        not with 24 hours), the same duration before any other window.

        While `now` is inside the window (today, this month), no call has started after it yet, so
        the previous period is cut at the same point: today until 10:00 is compared with yesterday
        until 10:00 (local wall time), not with the whole of yesterday."""
        now = now or datetime.now(UTC)
        running = self.start < now < self.end
        span = self.local_day_span()
        if span is None:
            length = self.end - self.start
            return Window(self.start - length, self.start - length + (now - self.start if running else length), self.tz)
        first, last = span
        shift = timedelta(days=(last - first).days + 1)
        previous = Window.local_days(self.tz, first - shift, last - shift)
        if not running:
            return previous
        local_now = now.astimezone(self.tz)
        cut = datetime.combine(local_now.date() - shift, local_now.time(), self.tz).astimezone(UTC)
        # A day whose midnight a DST gap swallowed starts later than its 00:xx: never cut before the start.
        return Window(previous.start, max(min(cut, previous.end), previous.start + timedelta(seconds=1)), self.tz)

    @property
    def start_local(self) -> datetime:
        return self.start.astimezone(self.tz)

    @property
    def end_local(self) -> datetime:
        return self.end.astimezone(self.tz)


def _parse_bound(text: str, tz: ZoneInfo, *, field: str, inclusive_day: bool) -> datetime:
    value = text.strip()
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"{text!r} is not a date (YYYY-MM-DD).", field=field) from None
        return local_day_start(day, tz, end=inclusive_day)
    return parse_utc(value, field=field)


# The filters


def number_ref(text: str | None) -> str | int | None:
    """A `number` filter as a caller types it: a phone number id when it is all digits, else E.164."""
    return int(text) if text and text.isdigit() else text


def own_account(model) -> Any:
    """`model`'s row is of one of the MightyCall accounts the org's integrations connect to: an agent
    is (account, extension), and the org's agents are the extensions of its own accounts, not those of
    another account whose calls it sees on a shared number. Narrowed to the org by the tenant scope."""
    return model.account_id.in_(select(Integration.account_id).scalar_subquery())


@dataclass(frozen=True)
class Filters:
    """Optional narrowing of the calls: a number (E.164 or id), an agent extension, a direction."""

    number: str | int | None = None
    agent: str | None = None
    direction: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.number, str):
            object.__setattr__(self, "number", normalize_e164(self.number, field="number"))
        elif self.number is not None and (isinstance(self.number, bool) or not isinstance(self.number, int)):
            raise ValidationError("A number is an E.164 string or a phone number id.", field="number")
        if self.agent is not None:
            agent = self.agent.strip()
            if not agent:
                raise ValidationError("An agent filter needs an extension.", field="agent")
            object.__setattr__(self, "agent", agent)
        if self.direction is not None and self.direction not in FILTER_DIRECTIONS:
            raise ValidationError(f"direction is one of {', '.join(FILTER_DIRECTIONS)}.", field="direction")

    def criteria(self) -> list:
        """WHERE clauses on `Call` for these filters; the KPI engine and the calls list use the same ones."""
        clauses = []
        if isinstance(self.number, str):
            clauses.append(Call.phone_number_id.in_(select(PhoneNumber.id).where(PhoneNumber.e164 == self.number)))
        elif self.number is not None:
            clauses.append(Call.phone_number_id == self.number)
        if self.agent is not None:
            clauses += [Call.agent_extension == self.agent, own_account(Call)]
        if self.direction == OUTBOUND:
            clauses.append(Call.direction.in_(OUTBOUND_DIRECTIONS))
        elif self.direction is not None:
            clauses.append(Call.direction == self.direction)
        return clauses

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


NO_FILTERS = Filters()

UNKNOWN_NUMBER = "number is one of this organisation's numbers, in E.164 (+14155550100) or as its id."
UNKNOWN_AGENT = "agent is the extension of one of this organisation's agents."


def parse_filters(number: str | None = None, agent: str | None = None, direction: str | None = None) -> Filters:
    """The filters of a query as typed (the API's, the CSV export's, the console's), each value checked
    against what the current scope sees: a value that cannot match anything of its kind (`agent=Alice`,
    `number=12345`, a direction vsync does not know) is a `ValidationError` naming its field, never an
    empty answer. Another org's number or agent is refused with the same message as one that exists
    nowhere, so the answer tells nothing about other orgs. Runs inside the org's tenant scope.

    A number is the org's when the scope sees it (an assignment of it to the org, past or present);
    an agent when its extension is an agent of the org's own accounts, a member's extension, or the
    extension that handled one of the org's calls on its own accounts."""
    filters = Filters(number=number_ref(number), agent=agent, direction=direction)
    if filters.number is not None:
        column = PhoneNumber.e164 if isinstance(filters.number, str) else PhoneNumber.id
        if not db.session.scalar(select(exists().where(column == filters.number))):
            raise ValidationError(UNKNOWN_NUMBER, field="number")
    if filters.agent is not None:
        known = or_(
            exists().where(Agent.extension == filters.agent),
            exists().where(Membership.extension == filters.agent),
            exists().where(Call.agent_extension == filters.agent, own_account(Call)),
        )
        if not db.session.scalar(select(known)):
            raise ValidationError(UNKNOWN_AGENT, field="agent")
    return filters


def parse_status(text: str | None) -> str | None:
    """A `status` filter as typed: one of the stored statuses, or none; anything else names the field."""
    value = (text or "").strip()
    if not value:
        return None
    if value not in CALL_STATUSES:
        raise ValidationError(f"status is one of {', '.join(CALL_STATUSES)}.", field="status")
    return value
