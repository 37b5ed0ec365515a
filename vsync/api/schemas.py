"""Marshmallow schemas shared by the API's routes: they parse requests, shape answers, and are the
source of the OpenAPI document (`vsync.api`).

Query schemas refuse parameters they do not declare, and `ValidationError`s become the API's 400
with per-field `details` (`vsync.api.errors`). Times leave as ISO-8601 UTC with `Z`; local times
keep their offset. Figures are rounded at this edge only (`vsync.metrics.for_display`).
"""

from __future__ import annotations

from datetime import datetime

import marshmallow as ma
from marshmallow import fields, validate

from vsync.errors import ValidationError
from vsync.timeutil import isoformat_z, parse_utc

SPEC_OPTIONS = {
    "info": {
        "description": "The vsync JSON API: call analytics and administration of the "
        "organisations a caller may reach. The readable reference is /api/v1/docs."
    },
    "servers": [{"url": "/"}],
    "components": {
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "vsk_…",
                "description": "An API key: `Authorization: Bearer vsk_…`.",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "session",
                "description": "The console's session cookie; writes then need the `X-CSRFToken` header.",
            },
        }
    },
    "security": [{"apiKey": []}, {"session": []}],
}


class UtcDateTimeField(fields.DateTime):
    """An aware time written as ISO-8601 UTC with `Z` (`2026-11-21T09:30:00Z`)."""

    def _serialize(self, value: datetime | str | None, attr, obj, **kwargs):
        return value if isinstance(value, str) else isoformat_z(value)


class LocalDateTime(fields.DateTime):
    """A local time with its UTC offset (`2026-11-21T10:30:00+01:00`)."""

    def _serialize(self, value: datetime | str | None, attr, obj, **kwargs):
        return value.isoformat() if isinstance(value, datetime) else value


class Instant(UtcDateTimeField):
    """A time a caller sends: ISO-8601 with `Z` or an offset, or a bare date (midnight UTC), the same
    as the CLI's `--at`/`--since` (`vsync.timeutil.parse_utc`); a time without a zone is refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return parse_utc(value, field=attr or "time")
        except ValidationError as exc:
            raise ma.ValidationError(exc.message) from None


class Query(ma.Schema):
    """Base of every query schema: an undeclared parameter is an error, not silently ignored."""

    class Meta:
        unknown = ma.RAISE


class Body(ma.Schema):
    """Base of every JSON body schema: an unknown field is an error, so a typo is never dropped."""

    class Meta:
        unknown = ma.RAISE


def page_params(max_limit: int = 1000, default: int = 100) -> dict[str, fields.Field]:
    """`limit` and `cursor`, the keyset paging of every list (`vsync.api.paging`)."""
    return {
        "limit": fields.Integer(
            load_default=default,
            validate=validate.Range(1, max_limit),
            metadata={"description": f"Items per page, 1 to {max_limit}."},
        ),
        "cursor": fields.String(
            load_default=None,
            validate=validate.Length(1, 512),
            metadata={"description": "`next_cursor` of the previous page."},
        ),
    }


def page_of(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """`{"data": [item, …], "next_cursor": "…" | null}`."""
    return ma.Schema.from_dict(
        {
            "data": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(
                allow_none=True,
                required=True,
                metadata={"description": "Pass as `cursor` for the next page; null on the last."},
            ),
        },
        name=name,
    )


class ErrorBody(ma.Schema):
    code = fields.String(required=True, metadata={"description": "Stable machine-readable code."})
    message = fields.String(required=True)
    details = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        required=True,
        metadata={"description": "Per-field messages (which parameter or field was wrong)."},
    )
    request_id = fields.String(allow_none=True, metadata={"description": "Also in the X-Request-ID header."})


class ErrorEnvelope(ma.Schema):
    error = fields.Nested(ErrorBody, required=True)
