"""GET /api/v1/orgs/{org}/sms: the org's text messages, newest first, paged like the calls list;
POST sends one through MightyCall (`vsync.services.sms.send_sms`, the console's function too).

A message belongs to a number, not to an extension, so agents see none: the tenant scope hides
every message from an agent, and this route says so with a 403 instead of an empty list. Sending
needs a manager (an org key with `write`).
"""

from __future__ import annotations

from collections.abc import Sequence

import marshmallow as ma
from marshmallow import fields, validate

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.calls import export_batches, list_page
from vsync.api.export import csv_doc, csv_response, format_field, wants_csv
from vsync.api.metrics import MetricsQuery, query_window
from vsync.api.paging import decode_time_cursor
from vsync.api.schemas import Body, ErrorEnvelope, Query, UtcDateTimeField, page_of, page_params
from vsync.auth.permissions import request_org
from vsync.extensions import db
from vsync.models.orgs import MANAGER
from vsync.query import parse_filters
from vsync.services import sms, traffic
from vsync.timeutil import isoformat_z

_WINDOW = {name: MetricsQuery._declared_fields[name] for name in ("from_", "to", "number")}
SmsQuery = Query.from_dict(
    {
        **_WINDOW,
        "direction": fields.String(load_default=None, validate=validate.OneOf(traffic.SMS_DIRECTIONS)),
        "q": fields.String(
            load_default=None,
            validate=validate.Length(1, traffic.MAX_SEARCH),
            metadata={
                "description": "Text to look for: its digits inside the other party's number, or the text inside "
                "the message or its MightyCall id (case-insensitive).",
                "example": "invoice",
            },
        ),
        "format_": format_field(),
        **page_params(),
    },
    name="SmsQuery",
)


class SmsSchema(ma.Schema):
    id = fields.Integer(required=True)
    external_id = fields.String(required=True, metadata={"description": "MightyCall's message id."})
    number = fields.String(allow_none=True, required=True, metadata={"description": "The org's number, E.164."})
    direction = fields.String(required=True, metadata={"description": "inbound, outbound or other"})
    counterpart = fields.String(allow_none=True, required=True, metadata={"description": "The other party."})
    sent_at = UtcDateTimeField(required=True)
    text = fields.String(allow_none=True, required=True)


SMS_ITEM_KEYS = list(SmsSchema().fields)


def sms_values(row: Sequence, numbers: dict[int, str]) -> list:
    """A message's fields in `SMS_ITEM_KEYS` order, from a row of `traffic.SMS_COLUMNS`."""
    message_id, external_id, number_id, direction, counterpart, sent_at, text = row
    return [message_id, external_id, numbers.get(number_id), direction, counterpart, isoformat_z(sent_at), text]


def sms_item(row: Sequence, numbers: dict[int, str]) -> dict:
    return dict(zip(SMS_ITEM_KEYS, sms_values(row, numbers), strict=True))


@bp.get("/orgs/<org>/sms")
@requires(scope="read", role=MANAGER)
@bp.arguments(SmsQuery, location="query")
@bp.response(200, page_of(SmsSchema, "SmsPage"))
@bp.doc(**csv_doc("With format=csv or Accept: text/csv: every message of the filtered set, one per row."))
def list_sms(args, org: str):
    """The org's text messages, newest first

    The messages sent or received in the window (default: today in the org's time zone; at most
    400 days) on the org's numbers, paged by `cursor`; `format=csv` streams them all. Not for agents.
    """
    window = query_window(request_org(), args)
    criteria = {
        "number": parse_filters(number=args["number"]).number,  # a number not the org's is a 400
        "direction": args["direction"],
        "search": traffic.Search(args["q"]) if args["q"] is not None else None,
    }
    if wants_csv(args):
        return csv_response(
            SMS_ITEM_KEYS, export_batches(traffic.sms_statement(window, **criteria), sms_values), "sms.csv"
        )
    after = decode_time_cursor(args["cursor"], args)
    return list_page(traffic.sms_statement(window, **criteria, after=after), args, "sent_at", sms_item)


class NewSmsBody(Body):
    from_ = fields.String(
        required=True,
        data_key="from",
        metadata={"description": "One of the org's numbers (E.164) that it holds now.", "example": "+12125550111"},
    )
    to = fields.String(required=True, metadata={"description": "The recipient, E.164.", "example": "+14155550123"})
    text = fields.String(
        required=True,
        metadata={"description": f"1 to {sms.MAX_TEXT} characters, not only spaces.", "example": "Your order shipped."},
    )


class SentSmsSchema(ma.Schema):
    status = fields.String(required=True, metadata={"description": "`sent`: MightyCall accepted the message."})
    external_id = fields.String(
        allow_none=True, required=True, metadata={"description": "MightyCall's message id (null if it gave none)."}
    )
    message = fields.Nested(
        SmsSchema,
        allow_none=True,
        required=True,
        metadata={"description": "The stored message; null when MightyCall gave no id (the next sync brings it)."},
    )


@bp.post("/orgs/<org>/sms")
@requires(scope="write", role=MANAGER)
@bp.arguments(NewSmsBody)
@bp.response(201, SentSmsSchema)
@bp.alt_response(429, schema=ErrorEnvelope, description="Over the org's send limit; `Retry-After` says when to try.")
@bp.alt_response(502, schema=ErrorEnvelope, description="MightyCall refused the message (`mightycall_refused`).")
@bp.alt_response(504, schema=ErrorEnvelope, description="MightyCall did not answer in time (`mightycall_timeout`).")
def send_sms(body, org: str):
    """Send a text message from one of the org's numbers

    Sent through the org's MightyCall integration once (never repeated: a send is not idempotent),
    stored at once with MightyCall's id (the next sync updates it, never duplicates it) and audited
    (`sms.sent`, without the text). A 400 names `from` (not a number the org holds now: unknown and
    other orgs' numbers alike), `to` (not a valid E.164 number) or `text` (empty, or over
    1600 characters); 429 over the org's limit (`VSYNC_SMS_SEND_LIMIT`, default 30 per minute);
    502 when MightyCall refuses, 504 when it does not answer in time: nothing is stored then.
    """
    sent = sms.send_sms(request_org(), from_number=body["from_"], to=body["to"], text=body["text"])
    db.session.commit()
    message = sent.message
    item = None
    if message is not None:
        item = sms_item(
            (
                message.id,
                message.external_id,
                message.phone_number_id,
                message.direction,
                message.counterpart,
                message.sent_at,
                message.text,
            ),
            {message.phone_number_id: sent.from_number},
        )
    return {"status": "sent", "external_id": sent.external_id, "message": item}, 201
