"""GET /api/v1/orgs/{org}/calls and /calls/{id}: the org's calls, newest first, and one call with
its webhook events and recording.

The window and the `number`, `agent` and `direction` filters mean exactly what they mean for the
metrics routes (`vsync.api.metrics`, `vsync.query.Filters`): the list behind a KPI is this list with
the same parameters. Agents see the calls their extension handled; another org's call is a 404.
"""

from __future__ import annotations

from collections.abc import Sequence

import marshmallow as ma
from flask import request, url_for
from marshmallow import fields, validate
from sqlalchemy import Row

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.export import csv_doc, csv_response, format_field, wants_csv
from vsync.api.metrics import MetricsQuery, query_filters, query_window
from vsync.api.paging import decode_time_cursor, page, time_key
from vsync.api.schemas import ErrorEnvelope, UtcDateTimeField, page_of, page_params
from vsync.auth.permissions import request_org
from vsync.models import Call, Recording
from vsync.models.traffic import CALL_STATUSES
from vsync.query import Window
from vsync.services import csv_copy, traffic
from vsync.timeutil import isoformat_z


def search_field() -> fields.Field:
    return fields.String(
        load_default=None,
        validate=validate.Length(1, traffic.MAX_SEARCH),
        metadata={
            "description": "Text to look for: its digits inside the calling and called numbers, or the text "
            "inside MightyCall's call id (case-insensitive).",
            "example": "555010",
        },
    )


def status_field() -> fields.Field:
    return fields.String(
        load_default=None,
        validate=validate.OneOf(CALL_STATUSES),
        metadata={"description": "The call's status as stored."},
    )


CallsQuery = MetricsQuery.from_dict(
    {"status": status_field(), "q": search_field(), "format_": format_field(), **page_params()}, name="CallsQuery"
)


class AgentSchema(ma.Schema):
    extension = fields.String(required=True, metadata={"description": "The agent's MightyCall extension."})
    name = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The name MightyCall gives the extension; null while vsync has not learnt it."},
    )


class CallSchema(ma.Schema):
    id = fields.Integer(required=True)
    external_id = fields.String(required=True, metadata={"description": "MightyCall's call id."})
    number = fields.String(allow_none=True, required=True, metadata={"description": "The org's number, E.164."})
    direction = fields.String(required=True, metadata={"description": "inbound, outbound, callback or other"})
    status = fields.String(required=True, metadata={"description": "answered, missed, voicemail, dropped or other"})
    from_number = fields.String(allow_none=True, required=True)
    to_number = fields.String(allow_none=True, required=True)
    started_at = UtcDateTimeField(required=True)
    answered_at = UtcDateTimeField(allow_none=True, required=True, metadata={"description": "From webhook events."})
    ended_at = UtcDateTimeField(allow_none=True, required=True)
    duration_seconds = fields.Float(
        allow_none=True,
        required=True,
        metadata={
            "description": "MightyCall's duration; for a call known only from webhook events, connected to "
            "completed when answered, 0 when unanswered; null while the call is open."
        },
    )
    agent = fields.Nested(
        AgentSchema,
        allow_none=True,
        required=True,
        metadata={
            "description": "The agent that handled the call: who answered, or who placed an outbound call "
            "(answered or not). Null when no extension handled it."
        },
    )


class CallEventSchema(ma.Schema):
    id = fields.Integer(required=True)
    event_type = fields.String(required=True, metadata={"description": "As MightyCall sent it."})
    kind = fields.String(
        required=True, metadata={"description": "call, ringing, stop_ringing, connected, completed or other"}
    )
    extension = fields.String(allow_none=True, required=True)
    occurred_at = UtcDateTimeField(required=True)


class RecordingSchema(ma.Schema):
    id = fields.Integer(required=True)
    call_id = fields.Integer(required=True)
    call_external_id = fields.String(required=True)
    number = fields.String(allow_none=True, required=True)
    started_at = UtcDateTimeField(required=True, metadata={"description": "When the recorded call started."})
    duration_seconds = fields.Float(allow_none=True, required=True)
    file_name = fields.String(allow_none=True, required=True)
    audio_url = fields.String(
        required=True,
        metadata={"description": "vsync's audio route for this recording (the provider's link is never shown)."},
    )


CallDetailSchema = CallSchema.from_dict(
    {
        "events": fields.List(
            fields.Nested(CallEventSchema),
            required=True,
            metadata={"description": "The call's webhook events, in the order they happened."},
        ),
        "recording": fields.Nested(RecordingSchema, allow_none=True, required=True),
    },
    name="CallDetail",
)

CALL_ITEM_KEYS = list(CallSchema().fields)
# The CSV's columns: the item's fields in order, the agent as two columns. The one list of them, for
# every writer of the calls CSV.
CALL_CSV_COLUMNS = [
    *(key for key in CALL_ITEM_KEYS if key != "agent"),
    "agent_extension",
    "agent_name",
]
RECORDING_ITEM_KEYS = list(RecordingSchema().fields)


def _seconds(milliseconds: int | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


def call_values(row: Sequence, numbers: dict[int, str]) -> list:
    """A call's fields in `CALL_CSV_COLUMNS` order (times as text), from a row of `traffic.CALL_COLUMNS`:
    the CSV writes them as they are, the JSON names them (`call_item`). Unpacked by position, since
    an export shapes every call of the set."""
    (
        call_id,
        external_id,
        number_id,
        direction,
        status,
        from_number,
        to_number,
        started_at,
        answered_at,
        ended_at,
        duration_ms,
        agent_extension,
        agent_name,
    ) = row
    return [
        call_id,
        external_id,
        numbers.get(number_id),
        direction,
        status,
        from_number,
        to_number,
        isoformat_z(started_at),
        isoformat_z(answered_at),
        isoformat_z(ended_at),
        _seconds(duration_ms),
        agent_extension,
        agent_name if agent_extension else None,
    ]


def call_item(row: Sequence, numbers: dict[int, str]) -> dict:
    """A call as the list and the detail show it: the CSV's values, the agent as `{extension, name}`."""
    *values, extension, name = call_values(row, numbers)
    item = dict(zip(CALL_ITEM_KEYS[:-1], values, strict=True))
    return {**item, "agent": {"extension": extension, "name": name} if extension else None}


def recording_values(row: Sequence, numbers: dict[int, str]) -> list:
    """A recording's fields in `RECORDING_ITEM_KEYS` order, from a row of `traffic.RECORDING_COLUMNS`."""
    recording_id, call_id, call_external_id, number_id, started_at, duration_ms, file_name = row
    return [
        recording_id,
        call_id,
        call_external_id,
        numbers.get(number_id),
        isoformat_z(started_at),
        _seconds(duration_ms),
        file_name,
        url_for("api.get_recording_audio", org=(request.view_args or {})["org"], recording_id=recording_id),
    ]


def recording_item(row: Sequence, numbers: dict[int, str]) -> dict:
    return dict(zip(RECORDING_ITEM_KEYS, recording_values(row, numbers), strict=True))


def items_with_numbers(rows: Sequence[Row], shape) -> list[dict]:
    numbers = traffic.number_e164s(row.phone_number_id for row in rows) if rows else {}
    return [shape(row, numbers) for row in rows]


def export_batches(statement, values):
    """The batches of a whole export, each row as the `values` of its JSON item."""

    def batches():
        numbers = traffic.number_e164s()
        for batch in traffic.all_rows(statement):
            yield [values(row, numbers) for row in batch]

    return batches


def list_page(statement, args: dict, time_field: str, shape) -> dict:
    rows = traffic.first_rows(statement, args["limit"] + 1)
    result = page(rows, args["limit"], time_key(time_field), args)
    return {**result, "data": items_with_numbers(result["data"], shape)}


def traffic_filters(args: dict) -> tuple[Window, dict]:
    """The window and the keyword arguments the traffic statements share, from a query."""
    org = request_org()
    return query_window(org, args), {
        "filters": query_filters(args),
        "status": args["status"],
        "search": traffic.Search(args["q"]) if args["q"] is not None else None,
    }


@bp.get("/orgs/<org>/calls")
@requires(scope="read")
@bp.arguments(CallsQuery, location="query")
@bp.response(200, page_of(CallSchema, "CallsPage"))
@bp.doc(
    **csv_doc(
        "With format=csv or Accept: text/csv: every call of the filtered set, one per row, "
        "under a header row of the item's fields, with the agent as two columns, "
        "`agent_extension` and `agent_name`."
    )
)
def list_calls(args, org: str):
    """The org's calls, newest first

    The calls started in the window (default: today in the org's time zone; at most 400 days) that
    match every filter given, the same calls the metrics routes count for the same parameters.
    Paged by `cursor`, stable while new calls arrive. `format=csv` (or `Accept: text/csv`) streams
    the whole set as CSV instead.
    """
    window, criteria = traffic_filters(args)
    if wants_csv(args):
        statement = traffic.calls_statement(window, **criteria)
        return csv_response(
            CALL_CSV_COLUMNS,
            export_batches(statement, call_values),
            "calls.csv",
            copy=lambda: csv_copy.copy_csv(traffic.calls_csv_statement(statement, CALL_CSV_COLUMNS)),
        )
    after = decode_time_cursor(args["cursor"], args)
    return list_page(traffic.calls_statement(window, **criteria, after=after), args, "started_at", call_item)


@bp.get("/orgs/<org>/calls/<int:call_id>")
@requires(scope="read")
@bp.response(200, CallDetailSchema)
@bp.alt_response(404, schema=ErrorEnvelope, description="No such call in this org.")
def get_call(org: str, call_id: int):
    """One call, with its events and recording

    The call's webhook events in the order they happened, and its recording (null without one).
    """
    call, events, recording = traffic.get_call(call_id)
    numbers = traffic.number_e164s([call.phone_number_id])
    answer = {
        **call_item(traffic.call_row(call_id), numbers),
        "events": [
            {
                "id": e.id,
                "event_type": e.event_type,
                "kind": e.kind,
                "extension": e.extension,
                "occurred_at": e.occurred_at,
            }
            for e in events
        ],
        "recording": _recording_of(call, recording, numbers),
    }
    return answer


def _recording_of(call: Call, recording: Recording | None, numbers: dict[int, str]) -> dict | None:
    if recording is None:
        return None
    return recording_item(
        (
            recording.id,
            call.id,
            recording.call_external_id,
            recording.phone_number_id,
            recording.started_at,
            recording.duration_ms,
            recording.file_name,
        ),
        numbers,
    )
