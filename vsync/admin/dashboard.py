"""The org dashboard: today's figures and a chosen window's, charts, recent calls and sync freshness.

Every figure comes from `vsync.metrics` (`summary`, `series`, `by_agent`, `by_number`, rounded by
`for_display`), the functions behind the API's metrics routes, so the console and the API agree; a
tile names a figure of the KPI registry (`metrics.FIGURES`), which gives its label and unit.
The page renders the figures once and then asks `…/dashboard/data` for them every minute, so it stays
current without a reload. The window is read by the one window parser (`query.Window.parse`): a window
it refuses is a 400 with its message, flashed over today's figures on the page, in the API's error
envelope from `…/data`. An agent's scope narrows the calls to their own extension, so an agent's
dashboard shows their own figures and nothing else.
"""

from __future__ import annotations

from datetime import timedelta

from flask import flash, jsonify, request
from flask_admin import expose
from sqlalchemy import select

from vsync.admin.access import OrgPage
from vsync.admin.display import ago, local_time
from vsync.errors import DomainError
from vsync.extensions import db
from vsync.http import error_response
from vsync.metrics import FIGURES, by_agent, by_number, for_display, series, summary
from vsync.models import Call, Integration, SyncRun
from vsync.models.operations import SUCCEEDED
from vsync.models.orgs import Organization
from vsync.query import NO_FILTERS, Filters, Window, org_zone
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


def _window(org: Organization) -> tuple[Window, str]:
    """The window the page asks for (`from`, `to` as local dates; default today) and its bucket."""
    window = Window.parse(org_zone(org), request.args.get("from") or None, request.args.get("to") or None)
    bucket = request.args.get("bucket") or ("hour" if window.end - window.start <= HOURLY_UP_TO else "day")
    return window, bucket


def _window_text(window: Window) -> dict:
    last_day = (window.end_local - timedelta(microseconds=1)).date()
    return {
        "from": window.start_local.date().isoformat(),
        "to": last_day.isoformat(),
        "start": for_display(window.start),
        "end": for_display(window.end),
    }


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


def dashboard_data(org: Organization, window: Window, bucket: str, filters: Filters = NO_FILTERS) -> dict:
    """Everything the dashboard shows, as JSON-ready values."""
    today = Window.today(window.tz)
    window_kpis = summary(org, window, filters)
    return {
        "org": org.slug,
        "timezone": org.timezone,
        "window": _window_text(window),
        "bucket": bucket,
        "filters": filters.as_dict(),
        "today": for_display(summary(org, today, filters)),
        "metrics": for_display(window_kpis),
        "by_status": {status: window_kpis[f"{status}_calls"] for status in STATUSES},
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


class DashboardView(OrgPage):
    """Open to every role of the org; an agent sees their own calls' figures only."""

    @expose("/")
    def index(self):
        org = self.org
        status = 200
        try:
            window, bucket = _window(org)
        except DomainError as exc:
            flash(exc.message, "error")
            window, bucket, status = Window.today(org_zone(org)), "hour", exc.status
        page = self.render(
            "admin/console/dashboard.html",
            data=dashboard_data(org, window, bucket),
            org=org,
            tile_figures=TILES,
            wait_tile_figures=WAIT_TILES,
        )
        return page, status

    @expose("/data")
    def data(self):
        org = self.org
        try:
            window, bucket = _window(org)
        except DomainError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.details)
        return jsonify(dashboard_data(org, window, bucket))
