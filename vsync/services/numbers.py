"""Phone numbers and their many-to-many, time-bounded assignment to organisations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from vsync.errors import Conflict, NotFound, ValidationError
from vsync.extensions import db
from vsync.models import NumberAssignment, Organization, PhoneNumber
from vsync.models.types import utcnow
from vsync.phones import normalize_e164
from vsync.services import audit
from vsync.timeutil import isoformat_z


def get_number(e164: str) -> PhoneNumber:
    e164 = normalize_e164(e164)
    number = db.session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == e164))
    if number is None:
        raise NotFound(f"No phone number {e164}; add it first.", field="number")
    return number


def add_number(e164: str, *, label: str | None = None, integration_id: int | None = None) -> PhoneNumber:
    e164 = normalize_e164(e164)
    if db.session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == e164)) is not None:
        raise Conflict(f"Phone number {e164} exists already.", field="number")
    number = PhoneNumber(e164=e164, label=(label or "").strip() or None, integration_id=integration_id)
    db.session.add(number)
    db.session.flush()
    audit.record("number.added", target=number, summary=e164 + (f" ({number.label})" if number.label else ""))
    return number


def assign_number(org: Organization, number: PhoneNumber, *, at: datetime | None = None) -> NumberAssignment:
    """Give `org` the traffic of `number` from `at` (default now) on, until it is unassigned.

    Refused when it would overlap a period `org` already has for `number`; other orgs' periods may
    overlap (a shared number).
    """
    at = at or utcnow()
    overlapping = db.session.scalar(
        select(NumberAssignment).where(
            NumberAssignment.org_id == org.id,
            NumberAssignment.phone_number_id == number.id,
            or_(NumberAssignment.unassigned_at.is_(None), NumberAssignment.unassigned_at > at),
        )
    )
    if overlapping is not None:
        until = isoformat_z(overlapping.unassigned_at) or "now"
        raise Conflict(
            f"{number.e164} is assigned to {org.slug} from {isoformat_z(overlapping.assigned_at)} to {until} already.",
            field="number",
        )
    assignment = NumberAssignment(org_id=org.id, phone_number_id=number.id, assigned_at=at)
    db.session.add(assignment)
    db.session.flush()
    audit.record(
        "number.assigned",
        org_id=org.id,
        target=assignment,
        summary=f"{number.e164} to {org.slug} from {isoformat_z(at)}",
    )
    return assignment


def unassign_number(org: Organization, number: PhoneNumber, *, at: datetime | None = None) -> NumberAssignment:
    """End `org`'s open assignment of `number` at `at` (default now); its traffic after `at` is hidden."""
    at = at or utcnow()
    assignment = db.session.scalar(
        select(NumberAssignment).where(
            NumberAssignment.org_id == org.id,
            NumberAssignment.phone_number_id == number.id,
            NumberAssignment.unassigned_at.is_(None),
        )
    )
    if assignment is None:
        raise NotFound(f"{number.e164} is not assigned to {org.slug}.", field="number")
    if at <= assignment.assigned_at:
        raise ValidationError(
            f"The end ({isoformat_z(at)}) must come after the start ({isoformat_z(assignment.assigned_at)}).",
            field="at",
        )
    assignment.unassigned_at = at
    db.session.flush()
    audit.record(
        "number.unassigned",
        org_id=org.id,
        target=assignment,
        summary=f"{number.e164} from {org.slug} at {isoformat_z(at)}",
    )
    return assignment
