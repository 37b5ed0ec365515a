"""Parsing and formatting times at the edges. Inside vsync every time is an aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, date, datetime

from vsync.errors import ValidationError


def parse_utc(text: str, *, field: str) -> datetime:
    """ISO-8601 with `Z` or an offset, or a bare date (midnight UTC), as aware UTC.

    A date-time without an offset is refused: guessing its zone is how a window slips by hours.
    """
    value = (text or "").strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{text!r} is not an ISO-8601 time (e.g. 2026-11-01T09:00:00Z).", field=field) from None
    if parsed.tzinfo is None:
        raise ValidationError(f"{text!r} has no time zone; add Z or an offset such as +01:00.", field=field)
    return parsed.astimezone(UTC)


def isoformat_z(value: datetime | None) -> str | None:
    """`2026-11-21T09:30:00Z` (microseconds when there are any). On every row of an export: kept cheap."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"
