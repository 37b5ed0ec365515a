"""The live floor: each agent extension's state now, the calls waiting and the calls in progress.

Read from webhook events only (the sync reads finished calls, minutes later), over the last `window`
of calls, in four indexed queries whatever the org's history: open calls (`ix_calls_open_started`,
a partial index on calls known from events and not ended), their events (`ix_call_events_call`),
the org's agents, and each extension's latest event (`ix_call_events_extension_occurred`).

Anything not heard of for longer than `staleness` is not trusted: an open call whose latest event is
older is counted in `stale_calls` (its Completed event was probably lost) rather than shown waiting
or in progress, and an extension with no event that recent and no live call is `unknown` rather
than `available`; an agent of the org with no event at all in the window is `offline` (MightyCall
sends no presence, so "offline" means "not heard of this shift"). Runs in the caller's tenant scope of
the org, like any org read.

The org's agents are the extensions of its own MightyCall accounts (`vsync.query.own_account`):
on a number shared with another organisation, that organisation's extensions are not on this floor.
An agent's floor is their own: their own state, the calls they are on, and the org's queue as two
figures (`calls_waiting`, `longest_wait_seconds`), never a colleague's state or a waiting caller's
number. The queue figures are the one reviewed read across the agent's narrowing (`_queue`): counts
only, under the org's criterion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from vsync.extensions import db
from vsync.models import Agent, Call, CallEvent
from vsync.models.types import utcnow
from vsync.query import own_account
from vsync.tenancy import Scope, TenancyError, current_scope, reviewed_sql, tenant_criterion_sql
from vsync.timeutil import isoformat_z

DEFAULT_STALENESS = timedelta(minutes=30)
DEFAULT_WINDOW = timedelta(hours=8)
AVAILABLE, RINGING, ON_CALL, OFFLINE, UNKNOWN = "available", "ringing", "on_call", "offline", "unknown"
STATES = (AVAILABLE, RINGING, ON_CALL, OFFLINE, UNKNOWN)


@dataclass(frozen=True)
class AgentState:
    extension: str
    name: str | None
    state: str
    since: datetime | None  # when the state began (for `unknown`: the extension's last event; `offline`: None)
    call_id: str | None = None
    number: str | None = None  # the other party of the call it is ringing for or on


@dataclass(frozen=True)
class LiveCall:
    call_id: str
    direction: str
    from_number: str | None
    to_number: str | None
    started_at: datetime
    answered_at: datetime | None
    agent_extension: str | None
    seconds: float  # waiting so far for a waiting call, talking so far for one in progress


@dataclass(frozen=True)
class FloorState:
    as_of: datetime
    agents: list[AgentState] = field(default_factory=list)
    waiting: list[LiveCall] = field(default_factory=list)
    in_progress: list[LiveCall] = field(default_factory=list)
    stale_calls: int = 0
    calls_waiting: int = 0
    longest_wait_seconds: float | None = None

    def state_counts(self) -> dict[str, int]:
        """How many agents are in each state, every state named (0 when none is)."""
        return {state: sum(agent.state == state for agent in self.agents) for state in STATES}

    def as_dict(self) -> dict:
        """JSON-ready: times ISO-8601 UTC with `Z`, seconds with one decimal."""

        def clean(value: Any) -> Any:
            if isinstance(value, datetime):
                return isoformat_z(value)
            if isinstance(value, float):
                return round(value, 1)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return clean(asdict(self))


def _other_party(call: Call) -> str | None:
    return call.from_number if call.direction == "inbound" else call.to_number


def floor_state(
    org_id: int, *, now: datetime, staleness: timedelta = DEFAULT_STALENESS, window: timedelta = DEFAULT_WINDOW
) -> FloorState:
    """The org's floor at `now`; see the module docstring for what each part means."""
    scope = current_scope()
    if scope is None or scope.org_id != org_id:
        raise TenancyError(f"Read the live floor of org {org_id} inside that org's tenant scope.")
    fresh_after = now - staleness
    open_calls = db.session.execute(
        select(Call, own_account(Call)).where(*_open(Call, now, window)).order_by(Call.started_at)
    ).all()
    own = {call.id for call, of_own_account in open_calls if of_own_account}
    live = [call for call, _ in open_calls if call.events_at >= fresh_after]

    ringing: dict[str, tuple[datetime, Call]] = {}
    unanswered = {(c.account_id, c.external_id): c for c in live if c.answered_at is None and c.id in own}
    if unanswered:
        rows = db.session.execute(
            select(
                CallEvent.account_id,
                CallEvent.call_external_id,
                CallEvent.extension,
                CallEvent.kind,
                CallEvent.occurred_at,
            )
            .where(
                CallEvent.account_id.in_({key[0] for key in unanswered}),
                CallEvent.call_external_id.in_({key[1] for key in unanswered}),
                CallEvent.kind.in_(("ringing", "stop_ringing")),
                CallEvent.extension.is_not(None),
            )
            .order_by(CallEvent.occurred_at, CallEvent.guid)
        ).all()
        latest: dict[tuple[int, str, str], tuple[str, datetime]] = {}
        for account_id, call_id, extension, kind, at in rows:
            if (account_id, call_id) in unanswered:
                latest[(account_id, call_id, extension)] = (kind, at)
        for (account_id, call_id, extension), (kind, at) in latest.items():
            if kind == "ringing" and (extension not in ringing or at < ringing[extension][0]):
                ringing[extension] = (at, unanswered[(account_id, call_id)])

    on_call = {c.agent_extension: c for c in live if c.answered_at is not None and c.agent_extension and c.id in own}
    names = dict(db.session.execute(select(Agent.extension, Agent.display_name)).tuples().all())
    last_seen = {
        extension: at
        for extension, at in db.session.execute(
            select(CallEvent.extension, func.max(CallEvent.occurred_at))
            .where(
                CallEvent.extension.is_not(None),
                CallEvent.occurred_at >= now - window,
                CallEvent.occurred_at <= now,
                own_account(CallEvent),
            )
            .group_by(CallEvent.extension)
        ).tuples()
        if extension is not None
    }
    roster = set(names) | set(last_seen)
    if scope.own_traffic_only:
        roster &= {scope.extension}

    agents = []
    for extension in sorted(roster):
        seen = last_seen.get(extension)
        if extension in on_call:
            call = on_call[extension]
            agents.append(
                AgentState(
                    extension, names.get(extension), ON_CALL, call.answered_at, call.external_id, _other_party(call)
                )
            )
        elif extension in ringing:
            at, call = ringing[extension]
            agents.append(
                AgentState(extension, names.get(extension), RINGING, at, call.external_id, _other_party(call))
            )
        elif seen is not None and seen >= fresh_after:
            agents.append(AgentState(extension, names.get(extension), AVAILABLE, seen))
        elif seen is None:
            agents.append(AgentState(extension, names.get(extension), OFFLINE, None))
        else:
            agents.append(AgentState(extension, names.get(extension), UNKNOWN, seen))

    def as_live(call: Call, since: datetime) -> LiveCall:
        return LiveCall(
            call.external_id,
            call.direction,
            call.from_number,
            call.to_number,
            call.started_at,
            call.answered_at,
            call.agent_extension,
            max((now - since).total_seconds(), 0.0),
        )

    waiting = [as_live(c, c.started_at) for c in live if c.answered_at is None and c.direction == "inbound"]
    in_progress = [as_live(c, c.answered_at) for c in live if c.answered_at is not None]
    if scope.own_traffic_only:
        calls_waiting, longest = _queue(org_id, now, window, fresh_after)
        return FloorState(
            as_of=now, agents=agents, in_progress=in_progress, calls_waiting=calls_waiting, longest_wait_seconds=longest
        )
    return FloorState(
        as_of=now,
        agents=agents,
        waiting=waiting,
        in_progress=in_progress,
        stale_calls=len(open_calls) - len(live),
        calls_waiting=len(waiting),
        longest_wait_seconds=max((c.seconds for c in waiting), default=None),
    )


def live_staleness() -> timedelta:
    """How long a state stands without news: `VSYNC_LIVE_STALE_MINUTES`."""
    return timedelta(minutes=current_app.config["VSYNC_LIVE_STALE_MINUTES"])


def floor_now(org_id: int) -> FloorState:
    """The org's floor at this moment, under the configured staleness: what the API and the consoles show."""
    return floor_state(org_id, now=utcnow(), staleness=live_staleness())


def in_progress(call: Call, now: datetime, staleness: timedelta) -> bool:
    """Whether a call is in progress at `now` as the floor counts it: known from events, not ended,
    started within the floor's window and heard of within `staleness` (an older one probably lost
    its Completed event and is not claimed to be going on)."""
    return (
        call.ended_at is None
        and call.events_at is not None
        and call.events_at >= now - staleness
        and now - DEFAULT_WINDOW <= call.started_at <= now
    )


def _open(calls, now: datetime, window: timedelta) -> list:
    """Calls (the model, or its table's columns) known from events and not ended, started in the window
    before `now`."""
    return [
        calls.ended_at.is_(None),
        calls.events_at.is_not(None),
        calls.started_at >= now - window,
        calls.started_at <= now,
    ]


def _queue(org_id: int, now: datetime, window: timedelta, fresh_after: datetime) -> tuple[int, float | None]:
    """How many inbound calls wait in the org's queue now, and the longest wait, for an agent's floor:
    a reviewed aggregate over the org's calls under the org's own criterion (not the agent's), which
    returns two numbers and nothing of the calls themselves."""
    calls = Call.__table__
    count, first = (
        db.session.connection()
        .execute(
            reviewed_sql(
                select(func.count(), func.min(calls.c.started_at)).where(
                    *_open(calls.c, now, window),
                    calls.c.events_at >= fresh_after,
                    calls.c.answered_at.is_(None),
                    calls.c.direction == "inbound",
                    tenant_criterion_sql(calls, Scope(org_id=org_id)),
                )
            )
        )
        .one()
    )
    return count, (max((now - first).total_seconds(), 0.0) if first is not None else None)
