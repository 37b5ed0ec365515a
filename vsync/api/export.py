"""CSV exports of the API's lists: `format=csv`, or `Accept: text/csv`, streams the whole filtered
set (paging parameters are ignored) with a header row and the same columns as the JSON items, in
the same order; times in ISO-8601 UTC with `Z`, an empty cell for null.

The rows are read in batches through a server-side cursor and written as they come, so an export
of any size runs in constant memory. The rows are produced after the view has returned, when Flask
has already torn the request's database session down: the generator runs inside the request's
contexts again (`stream_with_context`) and enters the request's tenant scope again on the session it
gets there, so the export is narrowed exactly like the JSON list (an agent exports their own calls).
On PostgreSQL a list may hand over a COPY of its statement instead (`copy`, the calls list):
the same header and cells, written by the database (`vsync.services.csv_copy`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator

from flask import Response, current_app, g, request, stream_with_context
from marshmallow import fields, validate

from vsync.services import csv_copy
from vsync.tenancy import tenant

CSV = "text/csv"


def format_field() -> fields.Field:
    return fields.String(
        data_key="format",
        load_default="json",
        validate=validate.OneOf(("json", "csv")),
        metadata={
            "description": "`csv` streams every row of the filtered set as CSV "
            "(`limit` and `cursor` are ignored); so does "
            "`Accept: text/csv`."
        },
    )


def wants_csv(args: dict) -> bool:
    if args.get("format_") == "csv":
        return True
    return request.accept_mimetypes.best_match(("application/json", CSV)) == CSV


def csv_doc(description: str) -> dict:
    """The `text/csv` answer of a list route, for `@bp.doc` (merged into its 200 response)."""
    return {"responses": {200: {"content": {CSV: {"schema": {"type": "string", "description": description}}}}}}


def _lines(rows: Iterable[Iterable]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def csv_response(
    columns: list[str],
    batches: Callable[[], Iterator[list[list]]],
    filename: str,
    *,
    copy: Callable[[], Iterator[bytes]] | None = None,
) -> Response:
    """A streamed CSV answer: `columns` as the header, then the rows of `batches()` (lists of each
    item's values in `columns` order, produced inside the request's tenant scope). On PostgreSQL
    (unless `VSYNC_CSV_COPY` is off), `copy()` writes the same header and rows instead, through
    COPY (`vsync.services.csv_copy`)."""
    scope = g.org_access.scope

    def generate() -> Iterator[bytes]:
        with tenant(scope):
            if copy is not None and current_app.config.get("VSYNC_CSV_COPY", True) and csv_copy.available():
                yield from copy()
                return
            yield _lines([columns]).encode()
            for batch in batches():
                yield _lines(batch).encode()

    response = Response(stream_with_context(generate()), mimetype=CSV)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
