"""GET /api/v1/orgs/{org}/recordings and /recordings/{id}/audio: the org's call recordings, and
their audio streamed through vsync (`vsync.services.recordings`); the provider's link is never shown.

The list takes the calls list's filters and pages the same way; an agent sees the recordings of the
calls they handled. The audio route answers `Range` requests (206), so players can seek.
"""

from __future__ import annotations

from flask import Response, request
from werkzeug.http import parse_range_header

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.calls import (
    RECORDING_ITEM_KEYS,
    CallsQuery,
    RecordingSchema,
    export_batches,
    list_page,
    recording_item,
    recording_values,
    traffic_filters,
)
from vsync.api.export import csv_doc, csv_response, wants_csv
from vsync.api.paging import decode_time_cursor
from vsync.api.schemas import ErrorEnvelope, page_of
from vsync.extensions import db
from vsync.http import error_response
from vsync.services import recordings, traffic

RecordingsQuery = CallsQuery.from_dict({}, name="RecordingsQuery")

AUDIO = {"audio/*": {"schema": {"type": "string", "format": "binary"}}}
_AUDIO_HEADERS = {
    "Accept-Ranges": {"schema": {"type": "string"}, "description": "`bytes`: the route answers `Range`."},
    "Content-Length": {"schema": {"type": "integer"}},
}


@bp.get("/orgs/<org>/recordings")
@requires(scope="read")
@bp.arguments(RecordingsQuery, location="query")
@bp.response(200, page_of(RecordingSchema, "RecordingsPage"))
@bp.doc(**csv_doc("With format=csv or Accept: text/csv: every recording of the filtered set, one per row."))
def list_recordings(args, org: str):
    """The org's recordings, newest first

    The recordings of the calls that `GET /orgs/{org}/calls` lists for the same parameters, paged
    the same way. Each item's `audio_url` plays it through vsync.
    """
    window, criteria = traffic_filters(args)
    if wants_csv(args):
        statement = traffic.recordings_statement(window, **criteria)
        return csv_response(RECORDING_ITEM_KEYS, export_batches(statement, recording_values), "recordings.csv")
    after = decode_time_cursor(args["cursor"], args)
    return list_page(traffic.recordings_statement(window, **criteria, after=after), args, "started_at", recording_item)


def _wanted_range():
    """The request's byte range when it asks for exactly one; anything else is served whole."""
    wanted = parse_range_header(request.headers.get("Range"))
    if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1:
        return None
    return wanted


@bp.get("/orgs/<org>/recordings/<int:recording_id>/audio")
@requires(scope="read")
@bp.doc(
    responses={
        "200": {"description": "The whole recording.", "content": AUDIO, "headers": _AUDIO_HEADERS},
        "206": {
            "description": "The byte range asked for (`Range: bytes=…`), with `Content-Range`.",
            "content": AUDIO,
            "headers": {**_AUDIO_HEADERS, "Content-Range": {"schema": {"type": "string"}}},
        },
    }
)
@bp.alt_response(404, schema=ErrorEnvelope, description="No such recording in this org.")
@bp.alt_response(409, schema=ErrorEnvelope, description="Recorded by another org's account.")
@bp.alt_response(416, schema=ErrorEnvelope, description="The range lies outside the recording.")
@bp.alt_response(502, schema=ErrorEnvelope, description="MightyCall could not serve it.")
def get_recording_audio(org: str, recording_id: int):
    """Play a recording

    Streams the audio from MightyCall with the org's integration. Supports one byte range per
    request (`Range: bytes=0-`), answering 206 with `Content-Range`. A provider link that has
    expired is renewed from MightyCall once. Every play is audited.
    """
    try:
        audio = recordings.open_audio(recording_id, _wanted_range())
    except recordings.RangeNotSatisfiable as exc:
        response, status = error_response(416, exc.code, exc.message, exc.details)
        if exc.complete_length is not None:
            response.headers["Content-Range"] = f"bytes */{exc.complete_length}"
        return response, status
    db.session.commit()
    response = Response(audio.chunks, status=audio.status, mimetype=audio.content_type, direct_passthrough=True)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "private, no-store"
    if audio.content_length is not None:
        response.headers["Content-Length"] = str(audio.content_length)
    if audio.content_range:
        response.headers["Content-Range"] = audio.content_range
    return response
