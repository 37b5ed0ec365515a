"""The org's alert rules, business hours and alert history: GET /api/v1/orgs/{org}/alerts/rules, PUT
/api/v1/orgs/{org}/alerts/rules/{kind}, GET and PUT /api/v1/orgs/{org}/alerts/business-hours, GET
/api/v1/orgs/{org}/alerts/history.

Managers read them, org admins (and platform principals) change them, agents are refused (403), as
in the console's Alerts page; every change goes through `vsync.services.notifications.alerts`, the
functions the console calls, which validate, refuse and audit alike. A rule is named by its kind,
any of `ALERT_KINDS`: a kind added there is served here unchanged.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.paging import decode_time_cursor, page, time_key
from vsync.api.schemas import Body, Query, UtcDateTimeField, page_of, page_params
from vsync.auth.permissions import request_org
from vsync.extensions import db
from vsync.models import AlertEvent, AlertRule
from vsync.models.notifications import ALERT_KINDS
from vsync.models.orgs import MANAGER, ORG_ADMIN
from vsync.query import Window, org_zone
from vsync.services.notifications import alerts

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SPAN = "Open hours as `HH:MM-HH:MM` in the org's time zone (`24:00` ends at midnight); null or empty: closed."


class AlertRuleSchema(ma.Schema):
    kind = fields.String(required=True, metadata={"description": f"One of {', '.join(ALERT_KINDS)}."})
    description = fields.String(required=True)
    window_minutes = fields.Integer(required=True)
    threshold = fields.Float(required=True, metadata={"description": "The kind's limit (service level: a fraction)."})
    enabled = fields.Boolean(required=True)
    created_at = UtcDateTimeField(required=True)


class AlertRulesSchema(ma.Schema):
    data = fields.List(fields.Nested(AlertRuleSchema), required=True, metadata={"description": "By kind."})
    kinds = fields.List(fields.String(), required=True, metadata={"description": "Every kind a rule may have."})


class AlertRuleBody(Body):
    window_minutes = fields.Integer(
        required=True,
        strict=True,
        metadata={"description": f"1 to {alerts.MAX_WINDOW_MINUTES}.", "example": 30},
    )
    threshold = fields.Float(
        load_default=0.0,
        validate=validate.Range(min=0),
        metadata={
            "description": "The kind's limit, never negative: for `service_level` a fraction above 0 and at most 1 "
            "(0.8 is 80 %); unused by `silence`.",
            "example": 0.8,
        },
    )
    enabled = fields.Boolean(load_default=True, truthy={True}, falsy={False})


BusinessHoursBody = Body.from_dict(
    {
        day: fields.String(
            load_default=None,
            allow_none=True,
            validate=validate.Length(max=20),
            metadata={"description": _SPAN, **({"example": "09:00-17:00"} if i < 5 else {})},
        )
        for i, day in enumerate(WEEKDAYS)
    },
    name="BusinessHoursBody",
)
BusinessHoursSchema = ma.Schema.from_dict(
    {
        "timezone": fields.String(required=True, metadata={"description": "The org's time zone the hours are in."}),
        **{day: fields.String(required=True, allow_none=True, metadata={"description": _SPAN}) for day in WEEKDAYS},
    },
    name="BusinessHours",
)

AlertHistoryQuery = Query.from_dict(
    {
        "from_": fields.String(
            data_key="from",
            load_default=None,
            metadata={
                "description": "Firings at or after: a local date (YYYY-MM-DD) or an ISO-8601 time with offset. "
                "Without `from` and `to`, every firing.",
                "example": "2026-11-01",
            },
        ),
        "to": fields.String(
            load_default=None,
            metadata={"description": "Firings before: a local date, included, or an ISO-8601 time (excluded)."},
        ),
        **page_params(max_limit=500, default=50),
    },
    name="AlertHistoryQuery",
)


class AlertEventSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    description = fields.String(required=True)
    state = fields.String(required=True, metadata={"description": "firing, or resolved."})
    fired_at = UtcDateTimeField(required=True)
    fired_value = fields.Float(allow_none=True, required=True, metadata={"description": "What was measured."})
    resolved_at = UtcDateTimeField(allow_none=True, required=True)
    resolved_value = fields.Float(allow_none=True, required=True)


def _rule_json(rule: AlertRule) -> dict:
    return {
        "kind": rule.kind,
        "description": alerts.DESCRIPTIONS.get(rule.kind, rule.kind),
        "window_minutes": rule.window_minutes,
        "threshold": rule.threshold,
        "enabled": rule.enabled,
        "created_at": rule.created_at,
    }


def _event_json(event: AlertEvent) -> dict:
    return {
        "id": event.id,
        "kind": event.kind,
        "description": alerts.DESCRIPTIONS.get(event.kind, event.kind),
        "state": "firing" if event.resolved_at is None else "resolved",
        "fired_at": event.fired_at,
        "fired_value": event.fired_value,
        "resolved_at": event.resolved_at,
        "resolved_value": event.resolved_value,
    }


def _hours_json() -> dict:
    org = request_org()
    hours = alerts.business_hours(org)
    return {
        "timezone": org.timezone,
        **{day: alerts.format_span(hours.get(i)) or None for i, day in enumerate(WEEKDAYS)},
    }


@bp.get("/orgs/<org>/alerts/rules")
@requires(scope="read", role=MANAGER)
@bp.response(200, AlertRulesSchema)
def list_alert_rules(org: str):
    """The org's alert rules

    Each saved rule with its window, threshold and whether it is on, by kind; `kinds` lists every kind a
    rule may have. The exact conditions are in the README (*Alerts*).
    """
    rules = alerts.rules(request_org())
    return {"data": [_rule_json(rules[kind]) for kind in sorted(rules)], "kinds": list(ALERT_KINDS)}


@bp.put("/orgs/<org>/alerts/rules/<kind>")
@requires(scope="write", role=ORG_ADMIN)
@bp.arguments(AlertRuleBody)
@bp.response(200, AlertRuleSchema)
def save_alert_rule(args, org: str, kind: str):
    """Create or change the org's rule of a kind

    An unknown kind, a window outside 1-1440 minutes, a negative threshold or one the kind does not
    take is a 400 naming the field, and nothing changes. Audited.
    """
    rule = alerts.save_rule(
        request_org(), kind, window_minutes=args["window_minutes"], threshold=args["threshold"], enabled=args["enabled"]
    )
    db.session.commit()
    return _rule_json(rule)


@bp.get("/orgs/<org>/alerts/business-hours")
@requires(scope="read", role=MANAGER)
@bp.response(200, BusinessHoursSchema)
def get_business_hours(org: str):
    """The org's business hours

    The weekly schedule alerts are checked within, per local weekday in the org's time zone; a
    closed day is null. Without a schedule of its own, Monday to Friday 09:00-17:00.
    """
    return _hours_json()


@bp.put("/orgs/<org>/alerts/business-hours")
@requires(scope="write", role=ORG_ADMIN)
@bp.arguments(BusinessHoursBody)
@bp.response(200, BusinessHoursSchema)
def set_business_hours(args, org: str):
    """Replace the org's business hours

    The whole week: a day left out, null or empty is closed. Hours that are not `HH:MM-HH:MM`, or that
    close before they open, are a 400 naming the day, and nothing changes. Audited.
    """
    hours = {i: alerts.parse_span(args[day], field=day) for i, day in enumerate(WEEKDAYS)}
    alerts.set_business_hours(request_org(), hours)
    db.session.commit()
    return _hours_json()


@bp.get("/orgs/<org>/alerts/history")
@requires(scope="read", role=MANAGER)
@bp.arguments(AlertHistoryQuery, location="query")
@bp.response(200, page_of(AlertEventSchema, "AlertHistoryPage"))
def list_alert_history(args, org: str):
    """The org's alert history

    Every firing, newest first, with its resolution once it resolved; `from`/`to` keep those that fired
    in that window (the one window parser, as for calls).
    """
    record = request_org()
    window = Window.parse(org_zone(record), args["from_"], args["to"]) if args["from_"] or args["to"] else None
    after = decode_time_cursor(args["cursor"], args)
    events = alerts.history(record, args["limit"] + 1, window=window, after=after)
    result = page(events, args["limit"], time_key("fired_at"), args)
    return {**result, "data": [_event_json(event) for event in result["data"]]}
