"""How the console shows times, figures and text: every time in the org's zone, with the zone named;
text vsync did not write itself and raw payloads with their secrets taken out (`vsync.redaction`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import g
from markupsafe import Markup, escape

from vsync.models.types import utcnow
from vsync.redaction import redact_payload, redact_text

RUN_TIMES = ("created_at", "started_at", "heartbeat_at", "finished_at", "window_start", "window_end")
KEY_TIMES = ("created_at", "expires_at", "last_used_at", "revoked_at")


def console_zone() -> ZoneInfo:
    """The org's zone on org pages; UTC on platform pages, which span orgs."""
    access = g.get("org_access")
    return ZoneInfo(access.timezone) if access is not None else ZoneInfo("UTC")


def local_time(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    """`2026-11-02 07:00 EST`: the abbreviation names the zone; the page header names it in full."""
    if value is None:
        return "—"
    local = value.astimezone(zone or console_zone())
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def time_html(value: datetime | None, zone: ZoneInfo | None = None, *, seconds: bool = False) -> Markup:
    """A time in the org's zone, its UTC instant on hover (and as the `datetime` a browser reads);
    with `seconds` for a timeline, whose events are seconds apart."""
    if value is None:
        return Markup("—")
    instant = value.astimezone(UTC)
    shown = local_time(value, zone)
    if seconds:
        local = value.astimezone(zone or console_zone())
        shown = f"{local:%H:%M:%S} {local.tzname()}"
    return Markup('<time datetime="{}" title="{} UTC">{}</time>').format(
        instant.isoformat().replace("+00:00", "Z"), f"{instant:%Y-%m-%d %H:%M:%S}", shown
    )


def human_duration(seconds: float | None) -> str:
    """`1 h 2 min`, `3 min 5 s`, `45 s`: a wait, a ring or a talk time as people say it."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def agent_html(extension: str | None, name: str | None) -> Markup:
    """An agent by name, the extension on hover; the extension alone while vsync knows no name."""
    if not extension:
        return Markup('<span class="text-muted">—</span>')
    return Markup('<span class="agent" title="Extension {}">{}</span>').format(extension, name or extension)


def number_html(e164: str | None, label: str | None) -> Markup:
    """A number by its label, the E.164 on hover; the E.164 alone without a label."""
    if not e164:
        return Markup("—")
    if not label:
        return Markup("{}").format(e164)
    return Markup('<span class="number" title="{}">{}</span>').format(e164, label)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """`3 min ago`, for how fresh data is."""
    if value is None:
        return "never"
    seconds = int(((now or utcnow()) - value.astimezone(UTC)).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''} ago"
    return "just now"


def seconds_text(value: float | None) -> str:
    if value is None:
        return "—"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}:{seconds:02d}" if minutes else f"{seconds} s"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def periods_column(label: Callable = lambda period: "", empty: str = "") -> Callable:
    """A Flask-Admin formatter of a number's assignment periods (those the query sees), oldest
    first, one per line: `label(period)` before each, the markup `empty` when there are none."""

    def format_periods(view, context, model, name) -> Markup:
        lines = [
            f"{label(p)}{local_time(p.assigned_at)} → {local_time(p.unassigned_at) if p.unassigned_at else 'now'}"
            for p in sorted(model.assignments, key=lambda p: p.assigned_at)
        ]
        return Markup("<br>").join(escape(line) for line in lines) or Markup(empty)

    return format_periods


def time_column(view, context, model, name) -> Markup:
    """A Flask-Admin column formatter for a time: local, on one line, UTC on hover."""
    value = getattr(model, name)
    if value is None:
        return Markup("—")
    return Markup('<span class="list-time" title="{}">{}</span>').format(
        f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC", local_time(value)
    )


def duration_column(view, context, model, name) -> str:
    ms = getattr(model, name)
    return seconds_text(ms / 1000 if ms is not None else None)


def clipped(value: str | None, limit: int | None = 120) -> Markup:
    """Long text cut to `limit` for a list cell; None: whole, for a detail page."""
    text = value or ""
    return escape(text if limit is None or len(text) <= limit else text[: limit - 1] + "…")


def secret_free(value: str | None, limit: int | None = 120) -> Markup:
    """Text vsync did not write itself (an error quoting MightyCall, an audit summary) with credentials,
    tokens and signed links replaced by a marker, then `clipped`."""
    return clipped(redact_text(value) if value else value, limit)


def secret_free_column(limit: int | None = 120) -> Callable:
    """A Flask-Admin formatter of such text: cut for lists, whole (`limit=None`) for detail pages."""
    return lambda view, context, model, name: secret_free(getattr(model, name), limit)


def raw_payload_column(view, context, model, name) -> Markup:
    """A stored raw payload (a webhook body, its headers) for the platform console, redacted: every
    raw payload the console shows goes through this one formatter."""
    value = getattr(model, name)
    text = value if isinstance(value, str) or value is None else json.dumps(value)
    return Markup("<pre>{}</pre>").format(redact_payload(text))


def init_app(app) -> None:
    app.jinja_env.filters.update(
        local_time=local_time,
        time_html=time_html,
        human_duration=human_duration,
        ago=ago,
        seconds_text=seconds_text,
        percent=percent,
    )
