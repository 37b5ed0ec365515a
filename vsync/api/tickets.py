"""GET and POST /api/v1/orgs/{org}/tickets, GET /api/v1/orgs/{org}/tickets/{id}, POST
/api/v1/orgs/{org}/tickets/{id}/messages: the org's support tickets and number requests.

Every route acts in the org's tenant scope through `vsync.services.support`, the same functions as
the consoles. Agents see (and answer) the tickets they opened; org admins, managers and org keys all
of the org's. A platform principal's reply is the platform's answer. Internal notes are never in any
answer here: the thread is `support.org_thread`.
"""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask_login import current_user
from marshmallow import fields, validate

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.paging import newest_by_id
from vsync.api.schemas import Body, Query, UtcDateTimeField, page_of, page_params
from vsync.auth.principals import resolve_org
from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.models.support import CATEGORIES, NUMBER_ACTIONS, PRIORITIES, TICKET_STATUSES, Ticket
from vsync.services import support

TicketsQuery = Query.from_dict(
    {
        **page_params(),
        "status": fields.String(
            load_default=None,
            validate=validate.OneOf(TICKET_STATUSES),
            metadata={"description": "Only tickets in this status."},
        ),
    },
    name="TicketsQuery",
)


class NumberRequestSchema(ma.Schema):
    action = fields.String(required=True, metadata={"description": "new, release or move."})
    country = fields.String(allow_none=True, required=True)
    area_code = fields.String(allow_none=True, required=True)
    label = fields.String(allow_none=True, required=True)
    e164 = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "The number to release or move; for a new one, the number asked for or, once "
            "approved, the number given."
        },
    )
    decision = fields.String(required=True, metadata={"description": "pending, approved or refused."})
    decided_at = UtcDateTimeField(allow_none=True, required=True)
    refusal_reason = fields.String(allow_none=True, required=True)


class MessageSchema(ma.Schema):
    id = fields.Integer(required=True)
    author = fields.String(required=True)
    from_platform = fields.Boolean(required=True, metadata={"description": "Written by platform staff."})
    body = fields.String(required=True)
    created_at = UtcDateTimeField(required=True)


class TicketSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "support or number_request."})
    subject = fields.String(required=True)
    category = fields.String(required=True)
    priority = fields.String(required=True)
    status = fields.String(
        required=True, metadata={"description": "open, waiting_on_org, waiting_on_platform, resolved or closed."}
    )
    opened_by = fields.String(required=True)
    created_at = UtcDateTimeField(required=True)
    updated_at = UtcDateTimeField(required=True)
    first_response_at = UtcDateTimeField(allow_none=True, required=True)
    resolved_at = UtcDateTimeField(allow_none=True, required=True)
    closed_at = UtcDateTimeField(allow_none=True, required=True)
    first_response_seconds = fields.Integer(
        allow_none=True, required=True, metadata={"description": "From opening to the platform's first answer."}
    )
    resolution_seconds = fields.Integer(
        allow_none=True, required=True, metadata={"description": "From opening to the latest resolution."}
    )
    number_request = fields.Nested(NumberRequestSchema, allow_none=True, required=True)


class TicketThreadSchema(TicketSchema):
    messages = fields.List(fields.Nested(MessageSchema), required=True, metadata={"description": "Oldest first."})


class NumberRequestBody(Body):
    action = fields.String(
        required=True,
        validate=validate.OneOf(NUMBER_ACTIONS),
        metadata={
            "description": "new: a new number (country, optional area code or pattern, label, optional "
            "`e164`); release: give up `e164`; move: move `e164` to `to_org`."
        },
    )
    country = fields.String(load_default=None, metadata={"example": "US"})
    area_code = fields.String(load_default=None, metadata={"example": "212"})
    label = fields.String(load_default=None, validate=validate.Length(max=200))
    e164 = fields.String(load_default=None, metadata={"example": "+12125550123"})
    to_org = fields.String(load_default=None, metadata={"description": "Slug of another org of yours (move)."})


class OpenTicketBody(Body):
    subject = fields.String(
        load_default="",
        metadata={"description": "Required for a support ticket; a number request has one made from its fields."},
    )
    category = fields.String(load_default="question", validate=validate.OneOf(CATEGORIES))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    message = fields.String(required=True, metadata={"description": f"Up to {support.MAX_MESSAGE_CHARS} characters."})
    number_request = fields.Nested(
        NumberRequestBody, load_default=None, metadata={"description": "Makes the ticket a number request."}
    )


class ReplyBody(Body):
    message = fields.String(
        load_default="", metadata={"description": f"Required, up to {support.MAX_MESSAGE_CHARS} characters."}
    )


def _seconds(start, end) -> int | None:
    return None if end is None else int((end - start).total_seconds())


def _request_json(ticket: Ticket) -> dict | None:
    request = ticket.number_request
    if request is None:
        return None
    return {name: getattr(request, name) for name in NumberRequestSchema._declared_fields}


def ticket_json(ticket: Ticket) -> dict:
    return {
        **{
            name: getattr(ticket, name)
            for name in (
                "id",
                "kind",
                "subject",
                "category",
                "priority",
                "status",
                "opened_by",
                "created_at",
                "updated_at",
                "first_response_at",
                "resolved_at",
                "closed_at",
            )
        },
        "first_response_seconds": _seconds(ticket.created_at, ticket.first_response_at),
        "resolution_seconds": _seconds(ticket.created_at, ticket.resolved_at),
        "number_request": _request_json(ticket),
    }


def _thread_json(ticket: Ticket) -> dict:
    return {**ticket_json(ticket), "messages": support.org_thread(ticket)}


def _principal():
    return current_user._get_current_object()


def _ticket(ticket_id: int) -> Ticket:
    return support.get_org_ticket(ticket_id, g.org_access.role, _principal())


def _destination(slug: str | None) -> int | None:
    """The org a number is to move to: one the requester may act in, else a 400 (never a hint of
    whether such an org exists)."""
    if not slug:
        return None
    try:
        return resolve_org(_principal(), slug).org_id
    except NotFound:
        raise ValidationError(f"{slug!r} is not an organisation of yours.", field="to_org") from None


@bp.get("/orgs/<org>/tickets")
@requires(scope="read")
@bp.arguments(TicketsQuery, location="query")
@bp.response(200, page_of(TicketSchema, "TicketsPage"))
def list_tickets(args, org: str):
    """The org's support tickets and number requests

    Newest first. Agents see the tickets they opened; everyone else in the org all of them.
    """
    query = support.org_tickets(g.org_access.role, _principal())
    if args["status"] is not None:
        query = query.where(Ticket.status == args["status"])
    return newest_by_id(query, Ticket.id, args, ticket_json)


@bp.post("/orgs/<org>/tickets")
@requires(scope="write")
@bp.arguments(OpenTicketBody)
@bp.response(201, TicketThreadSchema)
def open_ticket(args, org: str):
    """Open a support ticket or a number request

    With `number_request`, the ticket asks platform staff for a new number, the release of one of the
    org's numbers, or its move to another org of the requester; staff approve (the change is made
    then) or refuse it with a reason. An empty subject or message, an unknown category or priority,
    a number that is not valid (or, to release or move, not the org's) is a 400; asking for a
    number the org has is a 409. Audited.
    """
    common = {"message": args["message"], "priority": args["priority"]}
    wanted = args["number_request"]
    if wanted is None:
        ticket = support.open_ticket(
            g.org_access.org_id, _principal(), subject=args["subject"], category=args["category"], **common
        )
    else:
        ticket = support.open_number_request(
            g.org_access.org_id,
            _principal(),
            subject=args["subject"],
            action=wanted["action"],
            country=wanted["country"],
            area_code=wanted["area_code"],
            label=wanted["label"],
            e164=wanted["e164"],
            to_org_id=_destination(wanted["to_org"]),
            **common,
        )
    db.session.commit()
    return _thread_json(ticket)


@bp.get("/orgs/<org>/tickets/<int:ticket_id>")
@requires(scope="read")
@bp.response(200, TicketThreadSchema)
def get_ticket(org: str, ticket_id: int):
    """One ticket with its thread

    Another org's ticket, or (for an agent) a colleague's, is a 404.
    """
    return _thread_json(_ticket(ticket_id))


@bp.post("/orgs/<org>/tickets/<int:ticket_id>/messages")
@requires(scope="write")
@bp.arguments(ReplyBody)
@bp.response(201, TicketThreadSchema)
def reply_to_ticket(args, org: str, ticket_id: int):
    """Reply to a ticket

    An org reply puts the ticket in `waiting_on_platform` (reopening a resolved one); a platform
    principal's reply is staff's answer (`waiting_on_org`, and the first response time). A closed
    ticket is a 409 (`ticket_closed`); an empty or too long message a 400. Audited.
    """
    ticket = _ticket(ticket_id)
    support.reply(ticket, _principal(), args["message"])
    db.session.commit()
    return _thread_json(ticket)
