"""MightyCall webhook events: validate one as received, and derive a call from a set of them.

Pure functions, no I/O. A payload reads ``{"EventType", "Timestamp", "Guid", "ApiKey", "Body": {"Id",
"From", "To", "Extension", "DateTimeUtc"?, "Direction"?}}`` (see the MightyCall reference). `ApiKey` is not read
here: the receiver checks it and stores only whether it matched, so a stored event parses alike. Event
type names are matched case-insensitively by what they contain, so the legacy names
(``IncomingCallRinging``) and v4's agent-level ones (``…AgentRinging``) mean the same; a name that
matches nothing is kept raw by the caller and never crashes it.

`derive_call` depends only on the *set* of events, never on their order or on how often one was
delivered: that is what makes a call's final state the same whatever order its events arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, overload

from vsync.mightycall.parsing import ParseError, parse_datetime

__all__ = ["CallFacts", "EventFacts", "derive_call", "event_direction", "event_kind", "parse_event", "ring_ms"]

CALL, RINGING, STOP_RINGING, CONNECTED, COMPLETED = "call", "ringing", "stop_ringing", "connected", "completed"
KINDS = (CALL, RINGING, STOP_RINGING, CONNECTED, COMPLETED)

_LIMITS = {"Guid": 64, "EventType": 60, "Id": 64, "From": 40, "To": 40, "Extension": 20, "Direction": 20}
_DIRECTIONS = {"incoming": "inbound", "outgoing": "outbound", "callback": "callback"}


def event_kind(event_type: str) -> str | None:
    """What an event type means for its call, or None for a type vsync does not know."""
    name = event_type.lower()
    if "stopringing" in name:
        return STOP_RINGING
    if "ringing" in name:
        return RINGING
    if "connected" in name:
        return CONNECTED
    if "completed" in name:
        return COMPLETED
    if name in ("incomingcall", "outgoingcall", "callbackcall"):
        return CALL
    return None


def event_direction(event_type: str, body_direction: str | None) -> str:
    """`Body.Direction` when sent, else the event type's prefix (``IncomingCall…`` → inbound)."""
    for value in (body_direction or "", event_type):
        lowered = value.lower()
        for prefix, direction in _DIRECTIONS.items():
            if lowered.startswith(prefix):
                return direction
    return "other"


@dataclass(frozen=True)
class EventFacts:
    """One validated event. `raw` is the event object as sent."""

    guid: str
    event_type: str
    occurred_at: datetime
    call_id: str
    from_number: str | None
    to_number: str | None
    extension: str | None
    call_started_at: datetime | None
    direction: str
    raw: Mapping[str, Any]

    @property
    def kind(self) -> str | None:
        return event_kind(self.event_type)

    @property
    def business_number(self) -> str | None:
        """The org's number: the called one for inbound calls, the calling one otherwise."""
        return self.to_number if self.direction == "inbound" else self.from_number


@overload
def _string(container: Mapping[str, Any], key: str, where: str, *, required: Literal[True]) -> str: ...
@overload
def _string(container: Mapping[str, Any], key: str, where: str, *, required: Literal[False]) -> str | None: ...
def _string(container: Mapping[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = container.get(key)
    if value is None or value == "":
        if required:
            raise ParseError(f"{where}{key} is required.", field=f"{where}{key}")
        return None
    if not isinstance(value, str):
        raise ParseError(f"{where}{key} must be a string, not {type(value).__name__}.", field=f"{where}{key}")
    if len(value) > _LIMITS[key]:
        raise ParseError(f"{where}{key} is longer than {_LIMITS[key]} characters.", field=f"{where}{key}")
    return value


@overload
def _time(container: Mapping[str, Any], key: str, where: str, *, required: Literal[True]) -> datetime: ...
@overload
def _time(container: Mapping[str, Any], key: str, where: str, *, required: Literal[False]) -> datetime | None: ...
def _time(container: Mapping[str, Any], key: str, where: str, *, required: bool) -> datetime | None:
    value = container.get(key)
    if value is None or value == "":
        if required:
            raise ParseError(f"{where}{key} is required.", field=f"{where}{key}")
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ParseError(f"{where}{key} must be an ISO-8601 time string.", field=f"{where}{key}")
    try:
        return parse_datetime(value)
    except (ParseError, ValueError):
        raise ParseError(f"{where}{key} is not an ISO-8601 time: {value!r}.", field=f"{where}{key}") from None


def parse_event(item: Any) -> EventFacts:
    """Validate one event object; raises `ParseError` naming the first bad field."""
    if not isinstance(item, Mapping):
        raise ParseError(f"An event must be a JSON object, not {type(item).__name__}.")
    body = item.get("Body")
    if not isinstance(body, Mapping):
        raise ParseError("Body must be a JSON object.", field="Body")
    event_type = _string(item, "EventType", "", required=True)
    return EventFacts(
        guid=_string(item, "Guid", "", required=True),
        event_type=event_type,
        occurred_at=_time(item, "Timestamp", "", required=True),
        call_id=_string(body, "Id", "Body.", required=True),
        from_number=_string(body, "From", "Body.", required=False),
        to_number=_string(body, "To", "Body.", required=False),
        extension=_string(body, "Extension", "Body.", required=False),
        call_started_at=_time(body, "DateTimeUtc", "Body.", required=False),
        direction=event_direction(event_type, _string(body, "Direction", "Body.", required=False)),
        raw=item,
    )


@dataclass(frozen=True)
class CallFacts:
    """What a call's events say about it; see `derive_call`."""

    direction: str
    status: str
    from_number: str | None
    to_number: str | None
    started_at: datetime
    answered_at: datetime | None
    agent_extension: str | None
    wait_ended_at: datetime | None
    ended_at: datetime | None
    events_at: datetime
    ring_ms: int | None
    duration_ms: int | None


def _first(events: list[EventFacts], kind: str) -> EventFacts | None:
    matching = [e for e in events if e.kind == kind]
    return min(matching, key=lambda e: (e.occurred_at, e.guid)) if matching else None


def ring_ms(events: Iterable[tuple[str | None, datetime]]) -> int | None:
    """How long a call rang, in whole milliseconds, from its events' `(kind, occurred_at)`: from the
    first Ringing to the last StopRinging, or to the first Completed when no extension stopped ringing
    (the caller hung up while it rang). None without a Ringing or without such an end.

    Whatever the call's status: the sync may still change it, and the KPI engine applies the ring
    time to the calls whose final status is unanswered.
    """
    times: dict[str, list[datetime]] = {RINGING: [], STOP_RINGING: [], COMPLETED: []}
    for kind, at in events:
        if kind in times:
            times[kind].append(at)
    end = max(times[STOP_RINGING], default=None) or min(times[COMPLETED], default=None)
    if not times[RINGING] or end is None:
        return None
    return round((end - min(times[RINGING])) / timedelta(milliseconds=1))


def derive_call(events: Iterable[EventFacts]) -> CallFacts:
    """The call as its events tell it, from the set of its distinct events.

    - answered at the first Connected, by that event's extension; an outbound or callback call that
      nobody answered keeps the extension that placed it (the first event naming one);
    - started at the call's `DateTimeUtc` when an event carries it, else at its earliest event;
    - ended at the first Completed; the caller stopped waiting when answered, or when the call
      completed unanswered; it rang for `ring_ms`;
    - its duration, until a sync brings MightyCall's own: from Connected to Completed when answered,
      0 when it completed unanswered, none while it is open (`shared/reference/kpis.md`);
    - status: answered when connected, voicemail when completed inbound with no Connected (MightyCall
      sends the same events for a caller who hangs up; the sync's status tells them apart once it
      reads the call), missed when completed unanswered in any other direction, `other` while open.
    Ties at the same instant are broken by Guid, so the result never depends on arrival order.
    """
    distinct = sorted({e.guid: e for e in events}.values(), key=lambda e: (e.occurred_at, e.guid))
    if not distinct:
        raise ValueError("A call needs at least one event.")
    earliest = distinct[0]
    starts = [e.call_started_at for e in distinct if e.call_started_at is not None]
    connected, completed = _first(distinct, CONNECTED), _first(distinct, COMPLETED)
    direction = earliest.direction
    if connected is not None:
        status = "answered"
    elif completed is not None:
        status = "voicemail" if direction == "inbound" else "missed"
    else:
        status = "other"
    answered_at = connected.occurred_at if connected else None
    ended_at = completed.occurred_at if completed else None
    if connected is not None:
        agent_extension = connected.extension
    elif direction == "inbound":
        agent_extension = None
    else:
        agent_extension = next((e.extension for e in distinct if e.extension), None)
    duration_ms = None
    if ended_at is not None:
        talk = max(ended_at - answered_at, timedelta(0)) if answered_at is not None else timedelta(0)
        duration_ms = round(talk / timedelta(milliseconds=1))
    return CallFacts(
        direction=direction,
        status=status,
        from_number=next((e.from_number for e in distinct if e.from_number), None),
        to_number=next((e.to_number for e in distinct if e.to_number), None),
        started_at=min(starts) if starts else earliest.occurred_at,
        answered_at=answered_at,
        agent_extension=agent_extension,
        wait_ended_at=answered_at or ended_at,
        ended_at=ended_at,
        events_at=distinct[-1].occurred_at,
        ring_ms=ring_ms((e.kind, e.occurred_at) for e in distinct),
        duration_ms=duration_ms,
    )
