"""Pure parsers that turn MightyCall JSON items into typed records.

Nothing here does I/O. Each record keeps the item it came from in ``raw`` so the app can store the
payload as received and re-derive fields later if MightyCall's meaning turns out to differ.

The envelopes of list answers (calls pages, journal pages, numbers, team) are read here too: an
answer without the expected list raises :class:`~vsync.mightycall.errors.ProtocolError`; it never
reads as "no items", which a sync would take for an account that has none.

What is known about the shapes is in the project's MightyCall reference; the parsers accept every
variant seen in the wild (durations as strings or integers, 1 to 7 fractional digits, a business
number as a string or ``{"number": ...}``) and map values they do not know to ``"other"`` instead of
failing, so a new status on MightyCall's side never stops a sync. Only an item that cannot be stored
at all (no id, no usable time) raises :class:`ParseError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .errors import ProtocolError

__all__ = [
    "CallRecord",
    "ParseError",
    "SmsRecord",
    "calls_page",
    "journal_items",
    "parse_call",
    "parse_datetime",
    "parse_duration_ms",
    "parse_phone_numbers",
    "parse_sms",
    "parse_team",
    "participants",
]


class ParseError(ValueError):
    """An item that cannot be used at all; ``field`` names the offending key."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


_DIRECTIONS = {"incoming": "inbound", "outgoing": "outbound", "callback": "callback"}
_STATUSES = {
    "connected": "answered",
    "missed": "missed",
    "voicemail": "voicemail",
    "dropped": "dropped",
}

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_datetime(value: Any) -> datetime:
    """Parse an ISO-8601 timestamp into an aware UTC datetime.

    Accepts ``Z`` or a numeric offset, and any number of fractional digits (MightyCall sends 1 to 3,
    .NET serialisers up to 7; digits beyond microseconds are dropped). A timestamp without an offset
    is taken as UTC, since every MightyCall time field is UTC. Raises ``ValueError`` otherwise.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = _parse_iso_slow(text)
    else:
        raise ValueError(f"expected an ISO-8601 string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_iso_slow(text: str) -> datetime:
    match = _ISO_RE.match(text)
    if match is None:
        raise ValueError(f"not an ISO-8601 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = UTC
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=tz)


def parse_duration_ms(value: Any) -> int | None:
    """Milliseconds from ``"123450"``, ``123450`` or ``123450.0``; ``None`` when absent or unusable.

    A negative or non-numeric duration is treated as unknown rather than as an error: the call is
    still worth storing.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        result = round(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            result = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            if not math.isfinite(number):
                return None
            result = round(number)
    else:
        return None
    return result if result >= 0 else None


def _text(value: Any) -> str | None:
    """A non-empty stripped string, or None. Numbers (extensions sent as ints) become strings."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _number(value: Any) -> str | None:
    """A phone number given as a string or as ``{"number": ...}`` / ``{"phone": ...}``."""
    if isinstance(value, Mapping):
        for key in ("number", "Number", "phoneNumber", "phone", "Phone"):
            found = _text(value.get(key))
            if found:
                return found
        return None
    return _text(value)


def _first(item: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = item.get(key)
        if value is not None and value != "":
            return value
    return None


def _parties(raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    caller = raw.get("caller")
    called = raw.get("called")
    caller = caller if isinstance(caller, Mapping) else {}
    if isinstance(called, Mapping):
        called = [called]
    called = [p for p in called if isinstance(p, Mapping)] if isinstance(called, list) else []
    return caller, called


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as vsync stores it, derived from a MightyCall call item.

    ``direction`` is ``inbound``/``outbound``/``callback``/``other`` and ``status`` is
    ``answered``/``missed``/``voicemail``/``dropped``/``other``; ``provider_status`` keeps
    MightyCall's own word. ``from_number``/``to_number`` and the agent are derived (MightyCall has
    no such fields): outgoing and callback calls go from the business number to the first called
    party with a phone, incoming calls from the caller's phone to the business number.
    ``duration_ms`` is ``None`` when MightyCall gave none, and then ``ended_at`` is ``None`` too.
    """

    external_id: str
    business_number: str
    direction: str
    status: str
    provider_status: str
    from_number: str | None
    to_number: str | None
    started_at: datetime
    duration_ms: int | None
    ended_at: datetime | None
    agent_extension: str | None
    agent_name: str | None
    recording_file_name: str | None
    recording_uri: str | None
    raw: dict[str, Any] = field(repr=False, hash=False)


def parse_call(raw: Mapping[str, Any]) -> CallRecord:
    """Parse one item of ``GET /api/calls`` (or the ``data`` of ``GET /api/calls/{id}``).

    Raises :class:`ParseError` only when the item has no id or no valid ``dateTimeUtc``; unknown
    directions and statuses become ``"other"``.
    """
    if not isinstance(raw, Mapping):
        raise ParseError(f"call item is a {type(raw).__name__}, not an object", field=None)
    external_id = _text(raw.get("id"))
    if external_id is None:
        raise ParseError("call item has no id", field="id")
    when = raw.get("dateTimeUtc")
    if when is None or when == "":
        raise ParseError(f"call {external_id} has no dateTimeUtc", field="dateTimeUtc")
    try:
        started_at = parse_datetime(when)
    except ValueError as exc:
        raise ParseError(f"call {external_id} has an invalid dateTimeUtc: {exc}", field="dateTimeUtc") from exc

    business_number = _number(raw.get("businessNumber")) or ""
    provider_direction = _text(raw.get("direction")) or ""
    direction = _DIRECTIONS.get(provider_direction.lower(), "other")
    provider_status = _text(raw.get("callStatus")) or ""
    status = _STATUSES.get(re.sub(r"[\s_-]", "", provider_status.lower()), "other")

    caller, called = _parties(raw)
    called_phone = next((p for p in called if _text(p.get("phone"))), None)
    caller_phone = _text(caller.get("phone"))
    if direction in ("outbound", "callback"):
        from_number = business_number or None
        to_number = _text(called_phone.get("phone")) if called_phone else None
        agent = caller if _text(caller.get("extension")) else _agent_among(called)
    elif direction == "inbound":
        from_number = caller_phone
        to_number = business_number or None
        agent = _agent_among(called)
    else:
        from_number = caller_phone or business_number or None
        to_number = _text(called_phone.get("phone")) if called_phone else None
        agent = caller if _text(caller.get("extension")) else _agent_among(called)

    duration_ms = parse_duration_ms(raw.get("duration"))
    ended_at = started_at + timedelta(milliseconds=duration_ms) if duration_ms is not None else None

    record = raw.get("callRecord")
    record = record if isinstance(record, Mapping) else {}
    return CallRecord(
        external_id=external_id,
        business_number=business_number,
        direction=direction,
        status=status,
        provider_status=provider_status,
        from_number=from_number,
        to_number=to_number,
        started_at=started_at,
        duration_ms=duration_ms,
        ended_at=ended_at,
        agent_extension=_text(agent.get("extension")) if agent else None,
        agent_name=_text(agent.get("name")) if agent else None,
        recording_file_name=_text(_first(record, ("fileName", "FileName", "name"))),
        recording_uri=_text(_first(record, ("uri", "Uri", "url", "Url"))),
        raw=dict(raw),
    )


def _agent_among(called: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The agent of an incoming call: the connected extension, else the first rung extension."""
    with_extension = [p for p in called if _text(p.get("extension"))]
    for party in with_extension:
        if party.get("isConnected") is True:
            return party
    return with_extension[0] if with_extension else None


def participants(raw_call: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(extension, display name) pairs seen in a call, caller first, without repeats.

    MightyCall's team endpoint does not reliably give extensions, so agent names are learnt from
    calls; parties without an extension or with an empty name are left out.
    """
    if not isinstance(raw_call, Mapping):
        return []
    caller, called = _parties(raw_call)
    seen: list[tuple[str, str]] = []
    for party in [caller, *called]:
        extension, name = _text(party.get("extension")), _text(party.get("name"))
        if extension and name and (extension, name) not in seen:
            seen.append((extension, name))
    return seen


@dataclass(frozen=True, slots=True)
class SmsRecord:
    """One text message from the journal.

    The journal's item fields are [unknown] in MightyCall's public material, so every field is
    extracted from several plausible keys; ``raw`` keeps the item as received. ``counterpart`` is
    the outside party's number, ``business_number`` the account's number; either may be ``None``
    when the item does not say. ``direction`` is ``inbound``/``outbound``/``other``.
    """

    external_id: str
    occurred_at: datetime
    direction: str
    business_number: str | None
    counterpart: str | None
    text: str
    raw: dict[str, Any] = field(repr=False, hash=False)


_SMS_ID_KEYS = ("id", "Id", "requestId", "RequestId", "requestGuid", "guid", "Guid", "messageId")
_SMS_TIME_KEYS = (
    "dateTimeUtc",
    "DateTimeUtc",
    "createdUtc",
    "created",
    "Created",
    "createdAt",
    "timestamp",
    "Timestamp",
    "date",
    "dateTime",
)
_SMS_TEXT_KEYS = ("text", "Text", "message", "Message", "body", "Body", "content")


def parse_sms(raw: Mapping[str, Any]) -> SmsRecord:
    """Parse one journal request of type Message. Raises :class:`ParseError` without id or time."""
    if not isinstance(raw, Mapping):
        raise ParseError(f"journal item is a {type(raw).__name__}, not an object", field=None)
    external_id = _text(_first(raw, _SMS_ID_KEYS))
    if external_id is None:
        raise ParseError("journal item has no id", field="id")
    when = _first(raw, _SMS_TIME_KEYS)
    if when is None:
        raise ParseError(f"message {external_id} has no time", field="dateTimeUtc")
    try:
        occurred_at = parse_datetime(when)
    except ValueError as exc:
        raise ParseError(f"message {external_id} has an invalid time: {exc}", field="dateTimeUtc") from exc

    word = (_text(_first(raw, ("direction", "Direction"))) or "").lower()
    if word in ("incoming", "inbound", "in", "received"):
        direction = "inbound"
    elif word in ("outgoing", "outbound", "out", "sent"):
        direction = "outbound"
    else:
        direction = "other"

    sender = _number(_first(raw, ("from", "From", "sender")))
    recipient = _first(raw, ("to", "To", "recipient", "recipients"))
    if isinstance(recipient, list):
        recipient = recipient[0] if recipient else None
    recipient = _number(recipient)
    business_number = _number(_first(raw, ("businessNumber", "BusinessNumber", "business")))
    counterpart = _number(_first(raw, ("client", "Client", "contact", "Contact", "counterpart")))
    if business_number is None:
        business_number = {"inbound": recipient, "outbound": sender}.get(direction)
    if counterpart is None:
        counterpart = {"inbound": sender, "outbound": recipient}.get(direction)
        if counterpart is None:
            counterpart = next((n for n in (sender, recipient) if n and n != business_number), None)

    text = _first(raw, _SMS_TEXT_KEYS)
    return SmsRecord(
        external_id=external_id,
        occurred_at=occurred_at,
        direction=direction,
        business_number=business_number,
        counterpart=counterpart,
        text=text if isinstance(text, str) else "",
        raw=dict(raw),
    )


def _list_in(body: Any, keys: Iterable[str], what: str) -> list[Any]:
    """The items of a body shaped ``[...]``, ``{"data": [...]}`` or ``{"data": {key: [...]}}``.

    Any other shape raises :class:`ProtocolError`: an answer without the list (a proxy's page, an
    error object, a changed envelope) must never read as an account with no ``what``.
    """
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for container in (body.get("data"), body):
            if isinstance(container, list):
                return container
            if isinstance(container, Mapping):
                for key in keys:
                    value = container.get(key)
                    if isinstance(value, list):
                        return value
    raise ProtocolError(
        f"MightyCall's {what} answer has no list of {what} (got {_shape(body)}); a proxy may have "
        "answered, or the API changed."
    )


def _shape(body: Any) -> str:
    if isinstance(body, Mapping):
        keys = ", ".join(sorted(str(k) for k in body)[:6])
        return f"an object with {keys}" if keys else "an empty object"
    return f"a {type(body).__name__}"


def parse_phone_numbers(body: Any) -> list[dict[str, Any]]:
    """The account's phone numbers from ``GET /api/phonenumbers``.

    Returns the raw items, each with a normalised ``"number"`` string; items without a number are
    dropped. Accepts ``{"data": {"phoneNumbers": [...]}}`` and the looser shapes older versions
    used, including bare strings.
    """
    result = []
    for item in _list_in(body, ("phoneNumbers", "PhoneNumbers", "numbers", "items"), "phone numbers"):
        if isinstance(item, Mapping):
            number = _number(item)
            if number:
                result.append({**item, "number": number})
        else:
            number = _text(item)
            if number:
                result.append({"number": number})
    return result


_EXTENSION_KEYS = ("extension", "Extension", "ext", "extensionNumber", "ExtensionNumber")


def parse_team(body: Any) -> list[dict[str, Any]]:
    """Users from ``GET /api/team``: raw items plus normalised ``"name"`` and ``"extension"``.

    The key holding a user's extension is [unknown]: ``extension``, ``ext`` and ``extensionNumber``
    are tried (also inside an ``{"extension": {"number": ...}}`` object); ``extension`` is ``None``
    when none is found, and names learnt from calls (:func:`participants`) fill the gap.
    """
    result = []
    for item in _list_in(body, ("users", "Users", "team", "members", "items"), "team members"):
        if not isinstance(item, Mapping):
            continue
        name = _text(_first(item, ("fullName", "FullName", "displayName", "name")))
        if name is None:
            parts = [_text(item.get(key)) for key in ("firstName", "lastName")]
            name = " ".join(p for p in parts if p) or None
        extension_value = _first(item, _EXTENSION_KEYS)
        if isinstance(extension_value, Mapping):
            extension_value = _first(extension_value, ("number", "extension", "value"))
        result.append({**item, "name": name, "extension": _text(extension_value)})
    return result


# Envelopes of paged answers


def _as_count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def calls_page(body: Any) -> tuple[list[Any], int | None]:
    """The calls and reported total of a calls page; :class:`ProtocolError` without an envelope."""
    data = body.get("data") if isinstance(body, Mapping) else None
    if isinstance(data, list):
        return data, None
    if not isinstance(data, Mapping):
        raise ProtocolError("MightyCall's calls answer has no data object; a proxy may have answered.")
    calls = data.get("calls", data.get("Calls"))
    if not isinstance(calls, list):
        raise ProtocolError("MightyCall's calls answer has no calls list.")
    return calls, _as_count(data.get("total", data.get("Total")))


def journal_items(body: Any) -> list[Any]:
    """Items of a journal page: ``{currentPage, requests}``, possibly in a list or in ``data``."""
    if isinstance(body, Mapping) and isinstance(body.get("data"), (Mapping, list)):
        body = body["data"]
    if isinstance(body, Mapping):
        requests_ = body.get("requests", body.get("Requests"))
        if isinstance(requests_, list):
            return requests_
        raise ProtocolError("MightyCall's journal answer has no requests list.")
    if isinstance(body, list):
        items: list[Any] = []
        for element in body:
            if isinstance(element, Mapping) and isinstance(element.get("requests", element.get("Requests")), list):
                items.extend(element.get("requests", element.get("Requests")))
            else:
                items.append(element)
        return items
    raise ProtocolError("MightyCall's journal answer is neither an object nor a list.")
