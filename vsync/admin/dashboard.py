"""The org dashboard: a window's figures against the period before, today's, charts, the weekday × hour
heatmap, outbound work, recent calls and sync freshness.

Every figure comes from `vsync.metrics` (`summary`, `series`, `by_agent`, `by_number`, `by_direction`,
`heatmap`, `outbound`, rounded by `for_display`), the functions behind the API's metrics routes, so
the console and the API agree; a tile names a figure of the KPI registry (`metrics.FIGURES`), which
gives its label, unit and which way is better.

The window is in the URL, so a link reproduces the view: `range=` one of `query.PRESETS` (today,
yesterday, last 7 or 30 days, this month, last month: relative to the org's local today), or a
custom `from`/`to` read by the one window parser (`query.Window.parse`); no window at all is today.
A window either refuses is a 400 with its message, flashed over today's figures on the page, in the
API's error envelope from `…/data`. Each tile shows the change against `Window.previous` (the period
of the same length just before, cut at the same point while the window is still running) and says
whether it is better or worse by its figure's `better`. Today's tiles show only when the window is
not today itself. The page renders the figures once and then asks `…/dashboard/data` for them every
minute, so it stays current without a reload. An agent's scope narrows the calls to their own
extension, so an agent's dashboard shows their own figures and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import flash, jsonify, request
from flask_admin import expose
from sqlalchemy import select

from vsync.admin.access import OrgPage
from vsync.admin.display import ago, local_time
from vsync.errors import DomainError, ValidationError
from vsync.extensions import db
from vsync.http import error_response
from vsync.metrics import (
    FIGURES,
    HIGHER,
    LOWER,
    Figure,
    by_agent,
    by_direction,
    by_number,
    for_display,
    heatmap,
    outbound,
    series,
    summary,
)
from vsync.models import Call, Integration, SyncRun
from vsync.models.operations import SUCCEEDED
from vsync.models.orgs import Organization
from vsync.query import NO_FILTERS, PRESETS, Filters, Window, org_zone
from vsync.services import traffic

RECENT_CALLS = 10
HOURLY_UP_TO = timedelta(days=2)  # longer windows are shown by day
STATUSES = ("answered", "missed", "voicemail", "dropped")
# The tiles of today and of the window, by figure. The wait-based ones need webhook events: they show
# only when the window has calls with a known wait, each with its sample (the template's notes).
TILES = tuple(
    FIGURES[name]
    for name in ("total_calls", "answered_calls", "missed_calls", "voicemail_calls", "answer_rate", "avg_talk_seconds")
)
WAIT_TILES = tuple(FIGURES[name] for name in ("avg_speed_of_answer_seconds", "service_level", "abandon_rate"))
OUTBOUND_TILES = tuple(
    FIGURES[name] for name in ("outbound_calls", "connected_calls", "connect_rate", "outbound_avg_talk_seconds")
)
PRESET_LABELS = dict(
    zip(PRESETS, ("Today", "Yesterday", "Last 7 days", "Last 30 days", "This month", "Last month"), strict=True)
)


def _window(org: Organization) -> tuple[Window, str, str | None]:
    """The window the page asks for (`range`, or `from`/`to` as local dates; default today), its
    bucket, and the preset it is (None for a custom window)."""
    args, zone = request.args, org_zone(org)
    preset = args.get("range") or None
    if preset and (args.get("from") or args.get("to")):
        raise ValidationError("Choose a range or a from/to window, not both.", field="range")
    if preset:
        window = Window.preset(zone, preset)
    else:
        window = Window.parse(zone, args.get("from") or None, args.get("to") or None)
        preset = None if args.get("from") or args.get("to") else "today"
    bucket = args.get("bucket") or ("hour" if window.end - window.start <= HOURLY_UP_TO else "day")
    return window, bucket, preset


def _window_text(window: Window) -> dict:
    last_day = (window.end_local - timedelta(microseconds=1)).date()
    return {
        "from": window.start_local.date().isoformat(),
        "to": last_day.isoformat(),
        "start": for_display(window.start),
        "end": for_display(window.end),
        "label": _window_label(window),
    }


def _window_label(window: Window) -> str:
    """`Sun 1 Nov 2026`, `1 Nov – 7 Nov 2026`, or, for a window that is not whole local days,
    `1 Nov 2026 00:00 – 10:00` (local)."""
    span = window.local_day_span()
    if span is None:
        start, end = window.start_local, window.end_local
        same_day = start.date() == end.date()
        return (
            f"{start:%-d %b %Y %H:%M} – {end:%H:%M}" if same_day else f"{start:%-d %b %Y %H:%M} – {end:%-d %b %Y %H:%M}"
        )
    first, last = span
    if first == last:
        return f"{first:%a %-d %b %Y}"
    return f"{first:%-d %b} – {last:%-d %b %Y}" if first.year == last.year else f"{first:%-d %b %Y} – {last:%-d %b %Y}"


def _changes(now: dict[str, Any], before: dict[str, Any], tiles: tuple[Figure, ...]) -> dict[str, dict]:
    """Each tile's change against the period before, from the values as shown (rounded): the previous
    value, the difference, `trend` (up, down, flat) and `judgement` (better, worse, neutral) by the
    figure's `better`; without a value on either side, no difference."""
    changes = {}
    for figure in tiles:
        value, previous = now.get(figure.name), before.get(figure.name)
        if value is None or previous is None:
            changes[figure.name] = {"previous": previous, "delta": None, "trend": None, "judgement": None}
            continue
        delta = value - previous
        if figure.unit.decimals is not None:
            delta = round(delta, figure.unit.decimals)
        trend = "up" if delta > 0 else "down" if delta < 0 else "flat"
        better = {HIGHER: "up", LOWER: "down"}.get(figure.better or "")
        judgement = "neutral" if better is None or trend == "flat" else "better" if trend == better else "worse"
        changes[figure.name] = {"previous": previous, "delta": delta, "trend": trend, "judgement": judgement}
    return changes


def _recent_calls(window: Window) -> list[dict]:
    calls = db.session.scalars(
        select(Call)
        .where(Call.started_at >= window.start, Call.started_at < window.end)
        .order_by(Call.started_at.desc())
        .limit(RECENT_CALLS)
    ).all()
    names = traffic.agent_names((call.account_id, call.agent_extension) for call in calls)
    return [
        {
            "id": call.id,
            "started": local_time(call.started_at, window.tz),
            "direction": call.direction,
            "status": call.status,
            "from": call.from_number,
            "to": call.to_number,
            "agent": call.agent_extension,
            "agent_name": names.get((call.account_id, call.agent_extension)),
            "duration_seconds": None if call.duration_ms is None else round(call.duration_ms / 1000),
        }
        for call in calls
    ]


def _freshness(org: Organization) -> dict:
    """The last sync run of the org, and when data last arrived from a successful one."""
    last = db.session.scalars(
        select(SyncRun).where(SyncRun.org_id == org.id).order_by(SyncRun.id.desc()).limit(1)
    ).first()
    succeeded = db.session.scalar(
        select(SyncRun.finished_at)
        .where(SyncRun.org_id == org.id, SyncRun.status == SUCCEEDED)
        .order_by(SyncRun.finished_at.desc())
        .limit(1)
    )
    connected = db.session.scalar(select(Integration.id).where(Integration.org_id == org.id).limit(1)) is not None
    return {
        "connected": connected,
        "last_run": None
        if last is None
        else {"kind": last.kind, "status": last.status, "error": last.error, "at": local_time(last.created_at)},
        "synced": ago(succeeded) if succeeded else None,
    }


def dashboard_data(
    org: Organization,
    window: Window,
    bucket: str,
    filters: Filters = NO_FILTERS,
    *,
    preset: str | None = None,
    now: datetime | None = None,
) -> dict:
    """Everything the dashboard shows, as JSON-ready values. `today` is None when the window is today
    (its tiles would repeat the window's)."""
    now = now or datetime.now(UTC)
    today = Window.today(window.tz, now)
    previous = window.previous(now)
    window_kpis = for_display(summary(org, window, filters))
    work, work_before = outbound(org, window, filters), outbound(org, previous, filters)
    tiles = TILES + WAIT_TILES
    data = {
        "org": org.slug,
        "timezone": org.timezone,
        "preset": preset,
        "window": _window_text(window),
        "previous": _window_text(previous),
        "bucket": bucket,
        "filters": filters.as_dict(),
        "today": None,
        "metrics": window_kpis,
        "outbound": for_display(work["totals"]),
        "outbound_agents": for_display(work["agents"]),
        "changes": {
            "metrics": _changes(window_kpis, for_display(summary(org, previous, filters)), tiles),
            "outbound": _changes(for_display(work["totals"]), for_display(work_before["totals"]), OUTBOUND_TILES),
        },
        "by_status": {status: window_kpis[f"{status}_calls"] for status in STATUSES},
        "by_direction": for_display(by_direction(org, window, filters)),
        "heatmap": for_display(heatmap(org, window, filters)),
        "series": [
            {
                "label": f"{b['start_local']:%H:%M}" if bucket == "hour" else f"{b['start_local']:%d %b}",
                "total_calls": b["total_calls"],
                "answered_calls": b["answered_calls"],
                "missed_calls": b["missed_calls"],
                "voicemail_calls": b["voicemail_calls"],
            }
            for b in series(org, window, bucket, filters)
        ],
        "by_agent": for_display(by_agent(org, window, filters)),
        "by_number": for_display(by_number(org, window, filters)),
        "recent_calls": _recent_calls(window),
        "freshness": _freshness(org),
    }
    if window != today:
        today_kpis = for_display(summary(org, today, filters))
        data["today"] = today_kpis
        data["changes"]["today"] = _changes(today_kpis, for_display(summary(org, today.previous(now), filters)), tiles)
    return data


class DashboardView(OrgPage):
    """Open to every role of the org; an agent sees their own calls' figures only."""

    @expose("/")
    def index(self):
        org = self.org
        status = 200
        try:
            window, bucket, preset = _window(org)
        except DomainError as exc:
            flash(exc.message, "error")
            window, bucket, preset, status = Window.today(org_zone(org)), "hour", "today", exc.status
        page = self.render(
            "admin/console/dashboard.html",
            data=dashboard_data(org, window, bucket, preset=preset),
            org=org,
            tile_figures=TILES,
            wait_tile_figures=WAIT_TILES,
            outbound_tile_figures=OUTBOUND_TILES,
            presets=PRESET_LABELS,
        )
        return page, status

    @expose("/data")
    def data(self):
        org = self.org
        try:
            window, bucket, preset = _window(org)
        except DomainError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.details)
        return jsonify(dashboard_data(org, window, bucket, preset=preset))
