"""Keyset cursors: opaque, signed, and bound to the query they page.

A cursor carries the sort key of the last item of a page (for calls: start time and id, newest
first), so the next page is "rows after this key" and stays stable while new rows arrive. It is
signed with the app's secret key and bound to the route, the org and the filters of the request
that made it: a forged cursor, or one replayed with other filters or against another org, is a 400
naming `cursor`, never a page of something else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Select

from vsync.errors import ValidationError
from vsync.extensions import db

_SALT = "vsync.api.cursor"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _binding(params: dict[str, Any]) -> str:
    """What a cursor is valid for: this endpoint, this org, these filters (not `cursor`/`limit`)."""
    access = g.get("org_access")
    bound = {k: v for k, v in params.items() if k not in ("cursor", "limit", "format", "format_")}
    text = json.dumps([request.endpoint, access.org_id if access else None, bound], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(key: list, params: dict[str, Any]) -> str:
    return _serializer().dumps({"k": key, "b": _binding(params)})


def decode_cursor(cursor: str | None, params: dict[str, Any]) -> list | None:
    """The sort key a cursor carries, or None for the first page."""
    if cursor is None:
        return None
    try:
        payload = _serializer().loads(cursor)
    except BadSignature:
        raise ValidationError("This cursor is not one vsync issued.", field="cursor") from None
    if not isinstance(payload, dict) or payload.get("b") != _binding(params) or not isinstance(payload.get("k"), list):
        raise ValidationError("This cursor belongs to another query; page again from the start.", field="cursor")
    return payload["k"]


def page(rows: Sequence, limit: int, key, params: dict[str, Any]) -> dict[str, Any]:
    """`{"data", "next_cursor"}` from `limit + 1` fetched rows; `key(row)` is the row's sort key."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": rows, "next_cursor": encode_cursor(key(rows[-1]), params) if more else None}


def decode_time_cursor(cursor: str | None, params: dict[str, Any]) -> tuple[datetime, int] | None:
    """The (time, id) a newest-first list resumes after (`time_key`), or None for the first page."""
    key = decode_cursor(cursor, params)
    if key is None:
        return None
    try:
        moment, ident = key
        return datetime.fromisoformat(moment), int(ident)
    except (TypeError, ValueError):
        raise ValidationError("This cursor is not one vsync issued.", field="cursor") from None


def time_key(time_field: str):
    """The sort key of a newest-first list row: its time (to the microsecond) and its id."""
    return lambda row: [getattr(row, time_field).isoformat(), row.id]


def newest_by_id(query: Select, id_column, args: dict[str, Any], shape) -> dict[str, Any]:
    """A page of `query`'s rows newest first by `id_column` (ids only grow), each `shape`d: keys,
    sync runs and the audit log page this way."""
    after = decode_cursor(args["cursor"], args)
    if after is not None:
        query = query.where(id_column < after[0])
    rows = db.session.scalars(query.order_by(id_column.desc()).limit(args["limit"] + 1)).all()
    result = page(rows, args["limit"], lambda row: [row.id], args)
    return {**result, "data": [shape(row) for row in result["data"]]}
