"""GET /api/v1/orgs/{org}/metrics, /metrics/series, /metrics/agents, /metrics/numbers, /metrics/directions,
/metrics/heatmap, /metrics/outbound: the KPIs of `shared/reference/kpis.md`, computed by `vsync.metrics`
(the same functions as the console's dashboard).

The window is local to the org: `from`/`to` are dates in the org's time zone (`to` includes its day)
or ISO-8601 times with an offset; without them it is today. It is echoed in UTC and in local time.
An agent's figures are their own calls only: the tenant scope narrows what the engine reads.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from vsync import metrics
from vsync.api import bp
from vsync.api.access import requires
from vsync.api.schemas import LocalDateTime, Query, UtcDateTimeField
from vsync.auth.permissions import request_org
from vsync.models import Organization
from vsync.query import FILTER_DIRECTIONS, Filters, Window, org_zone, parse_filters

_FIELD_OF_UNIT = {True: fields.Integer, False: fields.Float}


def _figure_fields(breakdown: str) -> dict:
    """The response fields of one breakdown's figures, built from the KPI registry (`metrics.FIGURES`):
    the type from the figure's unit, the description the reference page shows too."""
    return {
        figure.name: _FIELD_OF_UNIT[figure.unit.integer](
            allow_none=figure.nullable, required=True, metadata={"description": figure.description}
        )
        for figure in metrics.figures(breakdown)
    }


class MetricsQuery(Query):
    from_ = fields.String(
        data_key="from",
        load_default=None,
        metadata={
            "description": "Start: a local date (YYYY-MM-DD) or an ISO-8601 time with offset. Default: today.",
            "example": "2026-11-01",
        },
    )
    to = fields.String(
        load_default=None,
        metadata={
            "description": "End: a local date, included, or an ISO-8601 time (excluded). Default: end of today.",
            "example": "2026-11-21",
        },
    )
    number = fields.String(
        load_default=None,
        metadata={
            "description": "Only calls on this number: E.164 or a phone number id. A number that is not one of "
            "the org's is a 400 naming `number`.",
            "example": "+14155550100",
        },
    )
    agent = fields.String(
        load_default=None,
        validate=validate.Length(1, 20),
        metadata={
            "description": "Only calls handled by this extension. An extension that is none of the org's agents "
            "is a 400 naming `agent`."
        },
    )
    direction = fields.String(
        load_default=None,
        validate=validate.OneOf(FILTER_DIRECTIONS),
        metadata={"description": "`outbound` includes callbacks."},
    )


class SeriesQuery(MetricsQuery):
    bucket = fields.String(
        load_default="day",
        validate=validate.OneOf(metrics.BUCKETS),
        metadata={"description": "Local hour, day, week (from Monday) or month."},
    )


class WindowSchema(ma.Schema):
    from_ = UtcDateTimeField(data_key="from", required=True)
    to = UtcDateTimeField(required=True)
    timezone = fields.String(required=True)
    from_local = LocalDateTime(required=True)
    to_local = LocalDateTime(required=True)


class FiltersSchema(ma.Schema):
    number = fields.Raw(allow_none=True, required=True, metadata={"description": "E.164 or id, as given."})
    agent = fields.String(allow_none=True, required=True)
    direction = fields.String(allow_none=True, required=True)


class _Report(ma.Schema):
    org = fields.String(required=True, metadata={"description": "The org's slug."})
    window = fields.Nested(WindowSchema, required=True)
    filters = fields.Nested(FiltersSchema, required=True)


MetricsValues = ma.Schema.from_dict(_figure_fields(metrics.TOTALS), name="MetricsValues")
MetricsReport = _Report.from_dict({"metrics": fields.Nested(MetricsValues, required=True)}, name="MetricsReport")
SeriesBucket = ma.Schema.from_dict(
    {
        "start": UtcDateTimeField(required=True),
        "end": UtcDateTimeField(required=True),
        "start_local": LocalDateTime(required=True),
        **_figure_fields(metrics.SERIES),
    },
    name="SeriesBucket",
)
SeriesReport = _Report.from_dict(
    {"bucket": fields.String(required=True), "data": fields.List(fields.Nested(SeriesBucket), required=True)},
    name="SeriesReport",
)
AgentRow = ma.Schema.from_dict(
    {
        "extension": fields.String(required=True),
        "display_name": fields.String(allow_none=True, required=True),
        **_figure_fields(metrics.PER_AGENT),
    },
    name="AgentRow",
)
AgentsReport = _Report.from_dict({"data": fields.List(fields.Nested(AgentRow), required=True)}, name="AgentsReport")
NumberRow = ma.Schema.from_dict(
    {
        "phone_number_id": fields.Integer(required=True),
        "e164": fields.String(required=True),
        "label": fields.String(allow_none=True, required=True),
        **_figure_fields(metrics.PER_NUMBER),
    },
    name="NumberRow",
)
NumbersReport = _Report.from_dict({"data": fields.List(fields.Nested(NumberRow), required=True)}, name="NumbersReport")
DirectionRow = ma.Schema.from_dict(
    {
        "direction": fields.String(required=True, metadata={"description": "inbound, outbound, callback or other."}),
        **_figure_fields(metrics.PER_DIRECTION),
    },
    name="DirectionRow",
)
DirectionsReport = _Report.from_dict(
    {"data": fields.List(fields.Nested(DirectionRow), required=True)}, name="DirectionsReport"
)
HeatmapCell = ma.Schema.from_dict(
    {
        "weekday": fields.Integer(required=True, metadata={"description": "Local weekday, 0 Monday to 6 Sunday."}),
        "hour": fields.Integer(required=True, metadata={"description": "Local hour of day, 0-23."}),
        **_figure_fields(metrics.HEATMAP),
    },
    name="HeatmapCell",
)
HeatmapReport = _Report.from_dict(
    {"data": fields.List(fields.Nested(HeatmapCell), required=True)}, name="HeatmapReport"
)
OutboundValues = ma.Schema.from_dict(_figure_fields(metrics.OUTBOUND), name="OutboundValues")
OutboundAgentRow = ma.Schema.from_dict(
    {
        "extension": fields.String(required=True),
        "display_name": fields.String(allow_none=True, required=True),
        **_figure_fields(metrics.OUTBOUND_PER_AGENT),
    },
    name="OutboundAgentRow",
)
OutboundReport = _Report.from_dict(
    {
        "metrics": fields.Nested(OutboundValues, required=True),
        "agents": fields.List(fields.Nested(OutboundAgentRow), required=True),
    },
    name="OutboundReport",
)


def query_window(org: Organization, args: dict) -> Window:
    """The window of a query's `from`/`to` in the org's time zone (default today), by the one window
    parser (`query.Window.parse`). The traffic lists read it here too, so a list and its KPIs
    cover the same calls."""
    return Window.parse(org_zone(org), args["from_"], args["to"])


def query_filters(args: dict) -> Filters:
    """The query's filters, each checked against the org (`query.parse_filters`): a number or agent
    that is not the org's is a 400 naming it, the same for another org's as for one that exists nowhere."""
    return parse_filters(args["number"], args["agent"], args["direction"])


def _report(args: dict) -> tuple[Organization, Window, Filters, dict]:
    """The org, the window and filters of the query, and the `org`/`window`/`filters` of the answer."""
    org = request_org()
    window = query_window(org, args)
    filters = query_filters(args)
    head = {
        "org": org.slug,
        "window": {
            "from_": window.start,
            "to": window.end,
            "timezone": org.timezone,
            "from_local": window.start_local,
            "to_local": window.end_local,
        },
        "filters": filters.as_dict(),
    }
    return org, window, filters, head


@bp.get("/orgs/<org>/metrics")
@requires(scope="read")
@bp.arguments(MetricsQuery, location="query")
@bp.response(200, MetricsReport)
def get_metrics(args, org: str):
    """Every KPI for a window

    Each KPI of the published definitions (see the reference), for the calls started in the window
    and matching the filters. A KPI whose inputs are missing is null, never 0.
    """
    record, window, filters, head = _report(args)
    return {**head, "metrics": metrics.for_display(metrics.summary(record, window, filters))}


@bp.get("/orgs/<org>/metrics/series")
@requires(scope="read")
@bp.arguments(SeriesQuery, location="query")
@bp.response(200, SeriesReport)
def get_series(args, org: str):
    """KPIs per local hour, day, week or month

    Zero-filled buckets from the window's start to its end in the org's time zone (a DST day has 23
    or 25 hours); the first and last buckets count only the window's part of them.
    """
    record, window, filters, head = _report(args)
    return {
        **head,
        "bucket": args["bucket"],
        "data": metrics.for_display(metrics.series(record, window, args["bucket"], filters)),
    }


@bp.get("/orgs/<org>/metrics/agents")
@requires(scope="read")
@bp.arguments(MetricsQuery, location="query")
@bp.response(200, AgentsReport)
def get_agent_metrics(args, org: str):
    """Per-agent figures

    One row per extension with calls or missed rings in the window, by extension.
    """
    record, window, filters, head = _report(args)
    return {**head, "data": metrics.for_display(metrics.by_agent(record, window, filters))}


@bp.get("/orgs/<org>/metrics/numbers")
@requires(scope="read")
@bp.arguments(MetricsQuery, location="query")
@bp.response(200, NumbersReport)
def get_number_metrics(args, org: str):
    """Per-number figures

    One row per phone number with calls in the window, by E.164.
    """
    record, window, filters, head = _report(args)
    return {**head, "data": metrics.for_display(metrics.by_number(record, window, filters))}


@bp.get("/orgs/<org>/metrics/directions")
@requires(scope="read")
@bp.arguments(MetricsQuery, location="query")
@bp.response(200, DirectionsReport)
def get_direction_metrics(args, org: str):
    """Figures per call direction

    One row per direction with calls in the window: inbound, outbound, callback (apart from outbound
    here), other.
    """
    record, window, filters, head = _report(args)
    return {**head, "data": metrics.for_display(metrics.by_direction(record, window, filters))}


@bp.get("/orgs/<org>/metrics/heatmap")
@requires(scope="read")
@bp.arguments(MetricsQuery, location="query")
@bp.response(200, HeatmapReport)
def get_heatmap(args, org: str):
    """Inbound calls per local weekday and hour

    The 168 cells of a week (weekday 0 is Monday), zero-filled, in the org's time zone: a call counts
    in the local weekday and hour it started, so on a DST day the skipped hour is empty and the
    repeated hour counts both of its hours.
    """
    record, window, filters, head = _report(args)
    return {**head, "data": metrics.for_display(metrics.heatmap(record, window, filters))}


@bp.get("/orgs/<org>/metrics/outbound")
@requires(scope="read")
@bp.arguments(MetricsQuery, location="query")
@bp.response(200, OutboundReport)
def get_outbound_metrics(args, org: str):
    """Outbound work, in total and per agent

    Attempts (outbound calls and callbacks), connected calls, connect rate and talk, for the window and
    per agent who placed outbound calls, by extension.
    """
    record, window, filters, head = _report(args)
    work = metrics.outbound(record, window, filters)
    return {**head, "metrics": metrics.for_display(work["totals"]), "agents": metrics.for_display(work["agents"])}
