"""GET /api/v1/orgs/{org}/audit: the org's audit log, for its org admins (and platform principals).

Newest first. Only the org's own rows: platform-wide events (sign-ins, new users, numbers added)
carry no org and are never in it. Every write of the API, the CLI and the console is here, with who
made it (a user's email, an API key's prefix and name, `cli`, or `system` for jobs).
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate
from sqlalchemy import select

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.paging import newest_by_id
from vsync.api.schemas import Instant, Query, UtcDateTimeField, page_of, page_params
from vsync.errors import ValidationError
from vsync.models import AuditEvent
from vsync.models.orgs import ORG_ADMIN

AuditQuery = Query.from_dict(
    {
        "actor": fields.String(
            load_default=None,
            validate=validate.Length(1, 300),
            metadata={
                "description": "Only events by this actor, exactly as shown (an email, `api key vsk_… (name)`, `cli`).",
                "example": "owner@acme.demo",
            },
        ),
        "action": fields.String(
            load_default=None,
            validate=validate.Length(1, 60),
            metadata={
                "description": "Only this action (`member.added`), or every action of a kind with a trailing dot "
                "(`member.`).",
                "example": "api_key.",
            },
        ),
        "from_": Instant(
            data_key="from",
            load_default=None,
            metadata={"description": "Events at or after this time.", "example": "2026-11-01T00:00:00Z"},
        ),
        "to": Instant(load_default=None, metadata={"description": "Events before this time."}),
        **page_params(),
    },
    name="AuditQuery",
)


class AuditEventSchema(ma.Schema):
    id = fields.Integer(required=True)
    created_at = UtcDateTimeField(required=True)
    actor = fields.String(required=True)
    actor_user_id = fields.Integer(allow_none=True, required=True)
    actor_api_key_id = fields.Integer(allow_none=True, required=True)
    action = fields.String(required=True)
    target_type = fields.String(allow_none=True, required=True)
    target_id = fields.String(allow_none=True, required=True)
    summary = fields.String(allow_none=True, required=True)
    ip = fields.String(allow_none=True, required=True)


@bp.get("/orgs/<org>/audit")
@requires(scope="read", role=ORG_ADMIN)
@bp.arguments(AuditQuery, location="query")
@bp.response(200, page_of(AuditEventSchema, "AuditPage"))
def list_audit_events(args, org: str):
    """The org's audit log

    Newest first, filtered by actor, action (or a kind of action) and time.
    """
    if args["from_"] and args["to"] and args["from_"] >= args["to"]:
        raise ValidationError("from must come before to.", field="from")
    query = select(AuditEvent)
    if args["actor"]:
        query = query.where(AuditEvent.actor == args["actor"])
    if args["action"]:
        action = args["action"]
        query = query.where(
            AuditEvent.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditEvent.action == action
        )
    if args["from_"]:
        query = query.where(AuditEvent.created_at >= args["from_"])
    if args["to"]:
        query = query.where(AuditEvent.created_at < args["to"])
    return newest_by_id(query, AuditEvent.id, args, lambda event: event)
