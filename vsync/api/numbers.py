"""GET /api/v1/orgs/{org}/numbers; POST and DELETE /api/v1/orgs/{org}/numbers/{e164}/assignment: an
org's phone numbers and its periods on each.

A period decides which traffic of a number the org sees, so only platform principals start or end
one, through the same services as the CLI's `assign-number` and `unassign-number`; those two routes
act in the platform bypass (`vsync.auth.PLATFORM_ORG_ENDPOINTS`) and name the org explicitly. A
number's periods in other orgs (a shared or moved number) are never shown: the answers read this
org's periods only.
"""

from __future__ import annotations

import marshmallow as ma
from flask import g
from marshmallow import fields
from sqlalchemy import select

from vsync.api import bp
from vsync.api.access import PLATFORM, requires
from vsync.api.paging import decode_cursor, page
from vsync.api.schemas import Body, Instant, Query, UtcDateTimeField, page_of, page_params
from vsync.auth.permissions import request_org
from vsync.extensions import db
from vsync.models import NumberAssignment, Organization, PhoneNumber
from vsync.models.types import utcnow
from vsync.phones import normalize_e164
from vsync.services import numbers

NumbersQuery = Query.from_dict(page_params(), name="NumbersQuery")


class PeriodSchema(ma.Schema):
    assigned_at = UtcDateTimeField(required=True)
    unassigned_at = UtcDateTimeField(allow_none=True, required=True, metadata={"description": "null: still assigned."})


class NumberSchema(ma.Schema):
    id = fields.Integer(required=True)
    e164 = fields.String(required=True)
    label = fields.String(allow_none=True, required=True)
    assigned = fields.Boolean(required=True, metadata={"description": "Whether one of the periods covers now."})
    assignments = fields.List(
        fields.Nested(PeriodSchema),
        required=True,
        metadata={"description": "This org's periods on the number, oldest first; its traffic is visible within them."},
    )


class AssignBody(Body):
    at = Instant(
        load_default=None,
        metadata={"description": "Start of the period (default: now).", "example": "2026-11-01T00:00:00Z"},
    )


class UnassignQuery(Query):
    at = Instant(
        load_default=None,
        metadata={"description": "End of the open period (default: now).", "example": "2026-12-01T00:00:00Z"},
    )


def _numbers_json(org_id: int, listed: list[PhoneNumber]) -> list[dict]:
    """The numbers with `org_id`'s periods on them; the org is named, so a platform bypass shows no other's."""
    periods: dict[int, list[NumberAssignment]] = {number.id: [] for number in listed}
    for period in db.session.scalars(
        select(NumberAssignment)
        .where(NumberAssignment.org_id == org_id, NumberAssignment.phone_number_id.in_(periods))
        .order_by(NumberAssignment.assigned_at)
    ):
        periods[period.phone_number_id].append(period)
    now = utcnow()
    return [
        {
            "id": number.id,
            "e164": number.e164,
            "label": number.label,
            "assigned": any(
                p.assigned_at <= now and (p.unassigned_at is None or now < p.unassigned_at) for p in periods[number.id]
            ),
            "assignments": periods[number.id],
        }
        for number in listed
    ]


def _org_and_number(e164: str) -> tuple[Organization, PhoneNumber]:
    return (request_org(), numbers.get_number(normalize_e164(e164, field="e164")))


@bp.get("/orgs/<org>/numbers")
@requires(scope="read")
@bp.arguments(NumbersQuery, location="query")
@bp.response(200, page_of(NumberSchema, "NumbersPage"))
def list_numbers(args, org: str):
    """The org's phone numbers with its periods on each

    Every number the org has or had, by E.164, each with this org's assignment periods only.
    """
    after = decode_cursor(args["cursor"], args)
    query = select(PhoneNumber).order_by(PhoneNumber.e164).limit(args["limit"] + 1)
    if after is not None:
        query = query.where(PhoneNumber.e164 > after[0])
    result = page(db.session.scalars(query).all(), args["limit"], lambda number: [number.e164], args)
    return {**result, "data": _numbers_json(g.org_access.org_id, result["data"])}


@bp.post("/orgs/<org>/numbers/<e164>/assignment")
@requires(scope="write", role=PLATFORM)
@bp.arguments(AssignBody)
@bp.response(201, NumberSchema)
def start_assignment(args, org: str, e164: str):
    """Assign a number to the org from a time on

    Platform principals only. The org sees the number's traffic from `at` (default now) until the
    period is ended; a period overlapping one the org already has on the number is refused (409).
    Other orgs' periods may overlap (a shared number). The number must exist (`add-number`). Audited.
    """
    record, number = _org_and_number(e164)
    numbers.assign_number(record, number, at=args["at"])
    db.session.commit()
    return _numbers_json(record.id, [number])[0]


@bp.delete("/orgs/<org>/numbers/<e164>/assignment")
@requires(scope="write", role=PLATFORM)
@bp.arguments(UnassignQuery, location="query")
@bp.response(200, NumberSchema)
def end_assignment(args, org: str, e164: str):
    """End the org's open period on a number

    Platform principals only. The org keeps the number's traffic up to `at` (default now) and sees
    none after it; 404 when the org has no open period on the number. Audited.
    """
    record, number = _org_and_number(e164)
    numbers.unassign_number(record, number, at=args["at"])
    db.session.commit()
    return _numbers_json(record.id, [number])[0]
