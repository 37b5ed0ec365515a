"""Recording audio, fetched from MightyCall for a caller vsync has authorised, never by handing out
the provider's link.

MightyCall's recording links live on another host and may expire. `open_audio` opens the stored
link with the integration's credentials (one quick retry and the configured timeouts: a player is
waiting); when the provider says the link is no longer good (401, 403, 404 or 410), it reads the
call again from MightyCall for a fresh link, stores it, and tries that once. A second refusal is an
`UpstreamError` (502), as is any other failure of MightyCall; its message never carries the link,
and neither does any log line (the client logs recording downloads by host only).

Ranges: the caller's single byte range is passed on. A provider that answers it (206) is relayed
as it answered; one that ignores it and sends the whole file is cut to the range here, when it says
how long the file is. An unsatisfiable range is `RangeNotSatisfiable` (416).

Only an integration of the org itself fetches audio: a recording on a shared number that another
org's MightyCall account recorded is refused (`Conflict`), so one org's credentials never act for
another.

Each audio stream opened is audited (`recording.played`). The fresh link is written with a Core
UPDATE of the one row, which the tenant hook narrows to the scope's visible recordings like any
statement (provider rows are otherwise written by the sync alone).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select, update
from werkzeug.datastructures import Range

from vsync.errors import Conflict, DomainError, NotFound, UpstreamError
from vsync.extensions import db
from vsync.mightycall import MightyCallError
from vsync.mightycall.client import RecordingStream
from vsync.mightycall.errors import MightyCallNotFound
from vsync.models import Integration, Recording
from vsync.services import audit
from vsync.services.integrations import client_for
from vsync.tenancy import reviewed_sql

log = logging.getLogger(__name__)

EXPIRED_LINK_STATUSES = frozenset({401, 403, 404, 410})
PLAYBACK_RETRIES = 1


class RangeNotSatisfiable(DomainError):
    status = 416
    code = "range_not_satisfiable"

    def __init__(self, complete_length: int | None):
        super().__init__("The range asked for lies outside the recording.", field="Range")
        self.complete_length = complete_length


@dataclass
class Audio:
    """An open audio stream: `chunks` yields the bytes and closes the download when it ends."""

    chunks: Iterator[bytes]
    status: int
    content_type: str
    content_length: int | None
    content_range: str | None


def open_audio(recording_id: int, wanted: Range | None = None) -> Audio:
    """The audio of a recording the scope sees, whole or the single byte range `wanted`."""
    recording = db.session.get(Recording, recording_id)
    if recording is None:
        raise NotFound(f"No recording {recording_id}.", field="id")
    integration = db.session.scalars(
        select(Integration).where(Integration.account_id == recording.account_id).order_by(Integration.id)
    ).first()
    if integration is None:
        raise Conflict(
            "This recording was made on a shared number by another organisation's MightyCall "
            "account; only that organisation can play it.",
            field="id",
        )
    client = client_for(integration, max_retries=PLAYBACK_RETRIES)
    try:
        stream, refreshed = _open(client, recording, wanted.to_header() if wanted else None)
    except BaseException:
        client.close()
        raise
    audio = _shaped(stream, wanted, client)
    summary = f"call {recording.call_external_id}"
    if audio.content_range:
        summary += f", {audio.content_range}"
    audit.record(
        "recording.played",
        org_id=integration.org_id,
        target=recording,
        summary=summary + (", with a fresh link from MightyCall" if refreshed else ""),
    )
    return audio


def _open(client, recording: Recording, byte_range: str | None) -> tuple[RecordingStream, bool]:
    """The download and whether it needed a fresh link."""
    if recording.provider_uri:
        try:
            return client.open_recording(recording.provider_uri, byte_range=byte_range), False
        except MightyCallError as exc:
            if not _expired(exc):
                raise _unavailable(exc, recording) from None
            log.info("recording %s: the stored link was refused (%s); reading the call again", recording.id, exc.status)
    uri = _fresh_link(client, recording)
    try:
        return client.open_recording(uri, byte_range=byte_range), True
    except MightyCallError as exc:
        if _expired(exc):
            log.warning("recording %s: MightyCall refused its fresh link too (%s)", recording.id, exc.status)
            raise UpstreamError(
                "MightyCall refused this recording's link, and a fresh link from it too; try again later.", field="id"
            ) from None
        raise _unavailable(exc, recording) from None


def _expired(exc: MightyCallError) -> bool:
    if exc.status == 416:
        raise RangeNotSatisfiable(None) from None
    return exc.status in EXPIRED_LINK_STATUSES


def _unavailable(exc: MightyCallError, recording: Recording) -> UpstreamError:
    log.warning("recording %s: MightyCall failed (%s, status %s)", recording.id, type(exc).__name__, exc.status)
    return UpstreamError(
        "MightyCall could not serve this recording just now"
        + (
            " (it did not answer in time or could not be reached)"
            if exc.status is None
            else f" (it answered {exc.status})"
        )
        + "; try again later.",
        field="id",
    )


def _fresh_link(client, recording: Recording) -> str:
    """Read the call again for a current link, and keep it for the next play."""
    try:
        uri = client.get_call(recording.call_external_id).recording_uri
    except MightyCallNotFound:
        raise UpstreamError("MightyCall no longer has this recording's call.", field="id") from None
    except MightyCallError as exc:
        raise _unavailable(exc, recording) from None
    if not uri:
        raise UpstreamError("MightyCall no longer has a recording for this call.", field="id")
    table = Recording.__table__
    db.session.execute(reviewed_sql(update(table).where(table.c.id == recording.id).values(provider_uri=uri)))
    return uri


def _shaped(stream: RecordingStream, wanted: Range | None, client) -> Audio:
    """The answer for `wanted`: the provider's partial answer, or the whole file cut to the range."""
    length = stream.content_length
    if stream.status == 206 and stream.content_range:
        return Audio(_closing(stream.iter_chunks(), client), 206, stream.content_type, length, stream.content_range)
    span = wanted.range_for_length(length) if wanted is not None and length is not None else None
    if wanted is not None and length is not None and span is None:
        stream.close()
        client.close()
        raise RangeNotSatisfiable(length)
    if span is None:
        return Audio(_closing(stream.iter_chunks(), client), 200, stream.content_type, length, None)
    start, stop = span
    return Audio(
        _closing(_cut(stream, start, stop), client),
        206,
        stream.content_type,
        stop - start,
        f"bytes {start}-{stop - 1}/{length}",
    )


def _cut(stream: RecordingStream, start: int, stop: int) -> Iterator[bytes]:
    position = 0
    try:
        for chunk in stream.iter_chunks():
            end = position + len(chunk)
            if end > start:
                yield chunk[max(0, start - position) : stop - position]
            position = end
            if position >= stop:
                return
    finally:
        stream.close()


def _closing(chunks: Iterator[bytes], client) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        client.close()
