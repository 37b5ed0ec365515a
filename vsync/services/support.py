"""Support tickets between an organisation and platform staff, and number requests.

Who acts is a principal (`vsync.auth.principals`: a user or an API key). An org member's ticket
work runs in the org's tenant scope; platform staff work the queue in the platform bypass, and
only they write internal notes, set statuses, assign tickets and decide number requests.

Statuses: a ticket starts `open`; a staff answer makes it `waiting_on_org`, an org answer
`waiting_on_platform` (reopening a `resolved` one); staff resolve and close it. A closed ticket
takes no more replies. `first_response_at` is the first staff answer the org sees (or a decision on
its number request); `resolved_at` the latest resolution.

Internal notes are read only by `staff_thread`; everything an org member reaches reads
`org_thread`, which never includes them.

A number request is checked against the org's own numbers when it is opened. Whether another org
holds the number is only checked on approval, in the platform bypass: telling an org that a number
is someone else's would tell it about another org.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import Select, select

from vsync.errors import Conflict, NotFound, ValidationError
from vsync.extensions import db
from vsync.models import NumberAssignment, Organization, PhoneNumber, User
from vsync.models.orgs import AGENT
from vsync.models.support import (
    APPROVED,
    CATEGORIES,
    CLOSED,
    MOVE_NUMBER,
    NEW_NUMBER,
    NUMBER_ACTIONS,
    NUMBER_REQUEST,
    OPEN,
    PENDING,
    PRIORITIES,
    REFUSED,
    RELEASE_NUMBER,
    RESOLVED,
    SUPPORT,
    TICKET_STATUSES,
    WAITING_ON_ORG,
    WAITING_ON_PLATFORM,
    NumberRequest,
    Ticket,
    TicketMessage,
)
from vsync.models.types import utcnow
from vsync.phones import normalize_e164
from vsync.services import audit, numbers
from vsync.services.notifications import tickets

MAX_MESSAGE_CHARS = 10_000
MAX_SUBJECT_CHARS = 200
_AREA_CODE = re.compile(r"[0-9X*]{1,10}")


@dataclass(frozen=True)
class Member:
    """An org member acting outside a request (the demo data): what this module reads of a principal."""

    id: int
    label: str
    is_api_key = False
    is_platform = False


# --- checks ----------------------------------------------------------------------------------------


def _text(value: str | None, field: str, limit: int, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"The {what} may not be empty.", field=field, code="empty")
    if len(text) > limit:
        raise ValidationError(
            f"The {what} is {len(text)} characters long; at most {limit} are allowed.", field=field, code="too_long"
        )
    return text


def _one_of(value: str, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ValidationError(f"Unknown {field} {value!r}; one of: {', '.join(allowed)}.", field=field)
    return value


def _author(principal) -> tuple[int | None, str]:
    """The user id (none for an API key) and the label a message or ticket keeps of who wrote it."""
    return (None if principal.is_api_key else principal.id), principal.label


def _post(ticket: Ticket, principal, body: str, now: datetime, *, internal: bool = False) -> TicketMessage:
    """Add a message to the ticket's thread, written by `principal` (an internal note when `internal`)."""
    user_id, label = _author(principal)
    message = TicketMessage(
        org_id=ticket.org_id,
        ticket_id=ticket.id,
        author_user_id=user_id,
        author=label,
        from_platform=principal.is_platform,
        internal=internal,
        body=body,
        created_at=now,
    )
    db.session.add(message)
    return message


def _require_staff(principal) -> None:
    if not principal.is_platform:
        raise ValidationError("Only platform staff may do this.", code="forbidden")


# --- notification hook -----------------------------------------------------------------------------


def ticket_event_for_notification(ticket: Ticket, event: str) -> None:
    """Tell the people concerned, by email and following their preferences, of `event` on `ticket`:
    `opened`, `replied`, `status_changed` or `number_request_decided` (who and what:
    `vsync.services.notifications.tickets`). Internal notes never reach this function."""
    tickets.notify(ticket, event)


# --- org members -----------------------------------------------------------------------------------


def _new_ticket(
    org_id: int, principal, *, kind: str, subject: str, category: str, priority: str, message: str, now: datetime
) -> Ticket:
    subject = _text(subject, "subject", MAX_SUBJECT_CHARS, "subject")
    body = _text(message, "message", MAX_MESSAGE_CHARS, "message")
    user_id, label = _author(principal)
    ticket = Ticket(
        org_id=org_id,
        kind=kind,
        subject=subject,
        category=_one_of(category, CATEGORIES, "category"),
        priority=_one_of(priority, PRIORITIES, "priority"),
        status=OPEN,
        opened_by_user_id=user_id,
        opened_by=label,
        created_at=now,
        updated_at=now,
    )
    db.session.add(ticket)
    db.session.flush()
    _post(ticket, principal, body, now)
    return ticket


def open_ticket(
    org_id: int,
    principal,
    *,
    subject: str,
    category: str,
    priority: str = "normal",
    message: str,
    now: datetime | None = None,
) -> Ticket:
    """Open a support ticket for `org_id` with its first message. Audited."""
    now = now or utcnow()
    ticket = _new_ticket(
        org_id, principal, kind=SUPPORT, subject=subject, category=category, priority=priority, message=message, now=now
    )
    db.session.flush()
    audit.record("support.ticket_opened", org_id=org_id, target=ticket, summary=f"#{ticket.id} {ticket.subject}")
    ticket_event_for_notification(ticket, "opened")
    return ticket


def _held_period(org_id: int, number_id: int, now: datetime) -> NumberAssignment | None:
    """`org_id`'s period of the number that covers `now` (read in its own scope or the bypass)."""
    return db.session.scalar(
        select(NumberAssignment).where(
            NumberAssignment.org_id == org_id,
            NumberAssignment.phone_number_id == number_id,
            NumberAssignment.assigned_at <= now,
            NumberAssignment.unassigned_at.is_(None),
        )
    )


def _number_of(e164: str) -> PhoneNumber | None:
    return db.session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == e164))


def _check_country(country: str | None) -> str:
    code = (country or "").strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"Unknown country {country!r}; give its two-letter ISO code (e.g. US).", field="country")
    return code


def _checked_request(
    org_id: int,
    *,
    action: str,
    country: str | None,
    area_code: str | None,
    e164: str | None,
    to_org_id: int | None,
    now: datetime,
) -> dict:
    """The structured fields of a number request, checked against the org's own numbers."""
    _one_of(action, NUMBER_ACTIONS, "action")
    number = normalize_e164(e164, field="e164") if (e164 or "").strip() or action != NEW_NUMBER else None
    held = (
        number is not None
        and (found := _number_of(number)) is not None
        and _held_period(org_id, found.id, now) is not None
    )
    if action == NEW_NUMBER:
        area = (area_code or "").strip().upper() or None
        if area is not None and not _AREA_CODE.fullmatch(area):
            raise ValidationError("An area code or pattern is up to 10 digits, X or *.", field="area_code")
        if held:
            raise Conflict(f"{number} is this organisation's number already.", field="e164", code="already_held")
        return {"country": _check_country(country), "area_code": area, "e164": number, "to_org_id": None}
    if not held:
        raise ValidationError(f"{number} is not a number of this organisation.", field="e164", code="not_held")
    if action == MOVE_NUMBER and (to_org_id is None or to_org_id == org_id):
        raise ValidationError("Name another organisation of yours to move the number to.", field="to_org")
    return {
        "country": None,
        "area_code": None,
        "e164": number,
        "to_org_id": to_org_id if action == MOVE_NUMBER else None,
    }


def _request_subject(action: str, fields: dict) -> str:
    if action == NEW_NUMBER:
        return f"New number in {fields['country']}" + (f" ({fields['area_code']})" if fields["area_code"] else "")
    return f"{action.title()} {fields['e164']}"


def open_number_request(
    org_id: int,
    principal,
    *,
    action: str,
    message: str,
    priority: str = "normal",
    subject: str | None = None,
    country: str | None = None,
    area_code: str | None = None,
    label: str | None = None,
    e164: str | None = None,
    to_org_id: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Ask platform staff for a new number, the release of one, or its move to `to_org_id` (an org
    the edge has checked the requester may act in). A ticket of kind `number_request`. Audited."""
    now = now or utcnow()
    fields = _checked_request(
        org_id, action=action, country=country, area_code=area_code, e164=e164, to_org_id=to_org_id, now=now
    )
    subject = (subject or "").strip() or _request_subject(action, fields)
    ticket = _new_ticket(
        org_id,
        principal,
        kind=NUMBER_REQUEST,
        subject=subject,
        category="numbers",
        priority=priority,
        message=message,
        now=now,
    )
    request = NumberRequest(
        org_id=org_id,
        ticket_id=ticket.id,
        action=action,
        label=(label or "").strip()[:200] or None,
        decision=PENDING,
        **fields,
    )
    db.session.add(request)
    db.session.flush()
    audit.record("support.number_requested", org_id=org_id, target=ticket, summary=f"#{ticket.id} {subject}")
    ticket_event_for_notification(ticket, "opened")
    return ticket


def org_tickets(role: str, principal) -> Select:
    """The tickets an org member sees, in the org's tenant scope: an agent their own, org admins,
    managers, API keys and platform staff all of the org's."""
    query = select(Ticket)
    if role == AGENT:
        query = query.where(Ticket.opened_by_user_id == (None if principal.is_api_key else principal.id))
    return query


def get_org_ticket(ticket_id: int, role: str, principal) -> Ticket:
    """One ticket as `org_tickets` sees it; another org's, or an agent's colleague's, is a 404."""
    ticket = db.session.scalar(org_tickets(role, principal).where(Ticket.id == ticket_id))
    if ticket is None:
        raise NotFound(f"No ticket {ticket_id}.", field="ticket")
    return ticket


def org_thread(ticket: Ticket) -> list[TicketMessage]:
    """The messages an org member may read: never an internal note."""
    return list(
        db.session.scalars(
            select(TicketMessage)
            .where(
                TicketMessage.ticket_id == ticket.id,
                TicketMessage.org_id == ticket.org_id,
                TicketMessage.internal.is_(False),
            )
            .order_by(TicketMessage.id)
        )
    )


def reply(ticket: Ticket, principal, message: str, *, now: datetime | None = None) -> TicketMessage:
    """Add a message to the thread, from the org or (a platform principal) from staff.

    An org reply puts the ticket in `waiting_on_platform`, reopening a resolved one; a staff reply
    puts it in `waiting_on_org` and, the first time, records the first response. Audited.
    """
    now = now or utcnow()
    body = _text(message, "message", MAX_MESSAGE_CHARS, "message")
    if ticket.status == CLOSED:
        raise Conflict(f"Ticket {ticket.id} is closed; open a new one.", field="ticket", code="ticket_closed")
    staff = principal.is_platform
    posted = _post(ticket, principal, body, now)
    previous = ticket.status
    if staff:
        ticket.first_response_at = ticket.first_response_at or now
        ticket.status = WAITING_ON_ORG
    else:
        ticket.status = WAITING_ON_PLATFORM
        ticket.resolved_at = None
    ticket.updated_at = now
    db.session.flush()
    reopened = " (reopened)" if previous == RESOLVED and not staff else ""
    audit.record(
        "support.ticket_replied",
        org_id=ticket.org_id,
        target=ticket,
        summary=f"#{ticket.id} by {'staff' if staff else 'org'}{reopened}",
    )
    ticket_event_for_notification(ticket, "replied")
    return posted


# --- platform staff --------------------------------------------------------------------------------


def staff_thread(ticket: Ticket) -> list[TicketMessage]:
    """Every message, internal notes included: for the platform console only."""
    return list(
        db.session.scalars(
            select(TicketMessage)
            .where(TicketMessage.ticket_id == ticket.id, TicketMessage.org_id == ticket.org_id)
            .order_by(TicketMessage.id)
        )
    )


def add_internal_note(ticket: Ticket, principal, note: str, *, now: datetime | None = None) -> TicketMessage:
    """A note for staff only; it changes neither the status nor the response times. Audited."""
    _require_staff(principal)
    now = now or utcnow()
    body = _text(note, "note", MAX_MESSAGE_CHARS, "note")
    posted = _post(ticket, principal, body, now, internal=True)
    db.session.flush()
    audit.record("support.note_added", org_id=ticket.org_id, target=ticket, summary=f"#{ticket.id}")
    return posted


def set_status(ticket: Ticket, principal, status: str, *, now: datetime | None = None) -> Ticket:
    """Staff move a ticket to `status`; resolving records `resolved_at`, closing `closed_at`. Audited."""
    _require_staff(principal)
    now = now or utcnow()
    _one_of(status, TICKET_STATUSES, "status")
    if status == ticket.status:
        return ticket
    previous, ticket.status, ticket.updated_at = ticket.status, status, now
    if status in (RESOLVED, CLOSED):
        ticket.resolved_at = ticket.resolved_at or now
    else:
        ticket.resolved_at = None
    ticket.closed_at = now if status == CLOSED else None
    db.session.flush()
    audit.record(
        "support.status_changed", org_id=ticket.org_id, target=ticket, summary=f"#{ticket.id} {previous} -> {status}"
    )
    ticket_event_for_notification(ticket, "status_changed")
    return ticket


def platform_staff() -> list[User]:
    """Who a ticket may be assigned to: active platform admins (read in the platform bypass)."""
    return list(
        db.session.scalars(
            select(User).where(User.role == "platform_admin", User.active.is_(True)).order_by(User.email)
        )
    )


def assign_ticket(ticket: Ticket, principal, assignee_user_id: int | None) -> Ticket:
    """Give the ticket to a staff member, or to nobody (`None`). Audited."""
    _require_staff(principal)
    staff = {user.id: user for user in platform_staff()}
    if assignee_user_id is not None and assignee_user_id not in staff:
        raise ValidationError("Tickets are assigned to active platform staff only.", field="assignee")
    ticket.assignee_user_id = assignee_user_id
    db.session.flush()
    who = staff[assignee_user_id].email if assignee_user_id is not None else "nobody"
    audit.record("support.ticket_assigned", org_id=ticket.org_id, target=ticket, summary=f"#{ticket.id} to {who}")
    return ticket


def get_any_ticket(ticket_id: int) -> Ticket:
    """A ticket of any org, for the platform bypass."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"No ticket {ticket_id}.", field="ticket")
    return ticket


def _pending_request(ticket_id: int) -> NumberRequest:
    """The ticket's number request, locked until commit, still pending: a second approval made at the
    same time waits here and then finds it decided."""
    request = db.session.scalar(
        select(NumberRequest)
        .where(NumberRequest.ticket_id == ticket_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if request is None:
        raise NotFound(f"Ticket {ticket_id} is not a number request.", field="ticket")
    if request.decision != PENDING:
        raise Conflict(
            f"This request was {request.decision} already, by {request.decided_by}.",
            field="ticket",
            code="already_decided",
        )
    return request


def _locked_number(e164: str, label: str | None) -> PhoneNumber:
    """The number's row, locked until commit so that two decisions on one number take turns; added
    to the platform's numbers when new."""
    number = db.session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == e164).with_for_update())
    return number if number is not None else numbers.add_number(e164, label=label)


def _taken_elsewhere(number: PhoneNumber, org_id: int, now: datetime) -> None:
    other = db.session.scalar(
        select(NumberAssignment.org_id).where(
            NumberAssignment.phone_number_id == number.id,
            NumberAssignment.org_id != org_id,
            NumberAssignment.assigned_at <= now,
            NumberAssignment.unassigned_at.is_(None),
        )
    )
    if other is not None:
        raise Conflict(f"{number.e164} is held by another organisation.", field="e164", code="number_taken")


def _perform(request: NumberRequest, e164: str | None, now: datetime) -> NumberAssignment:
    """Make the change a request asks for, through the numbers service, at `now`."""
    org = db.session.get_one(Organization, request.org_id)  # a foreign key
    if request.action == NEW_NUMBER:
        wanted = request.e164 or normalize_e164(e164, field="e164")
        number = _locked_number(wanted, request.label)
        _taken_elsewhere(number, org.id, now)
        request.e164 = wanted
        return numbers.assign_number(org, number, at=now)
    assert request.e164 is not None  # a release or move names its number (_checked_request)
    number = _locked_number(request.e164, None)
    ended = numbers.unassign_number(org, number, at=now)
    if request.action == MOVE_NUMBER:
        numbers.assign_number(db.session.get_one(Organization, request.to_org_id), number, at=now)  # move_names_org
    return ended


def _decide(ticket: Ticket, request: NumberRequest, principal, decision: str, outcome: str, now: datetime) -> None:
    user_id, label = _author(principal)
    request.decision, request.decided_by_user_id, request.decided_by, request.decided_at = (
        decision,
        user_id,
        label,
        now,
    )
    _post(ticket, principal, outcome, now)
    ticket.first_response_at = ticket.first_response_at or now
    ticket.status, ticket.resolved_at, ticket.updated_at = RESOLVED, now, now
    db.session.flush()
    audit.record(
        f"support.number_request_{decision}", org_id=ticket.org_id, target=ticket, summary=f"#{ticket.id} {outcome}"
    )
    ticket_event_for_notification(ticket, "number_request_decided")


def approve_number_request(
    ticket_id: int, principal, *, e164: str | None = None, now: datetime | None = None
) -> NumberRequest:
    """Perform a pending number request at `now` and resolve its ticket; `e164` names the number
    for a new-number request that did not ask for one. Exactly once, however many staff approve at
    the same time. In the platform bypass."""
    _require_staff(principal)
    now = now or utcnow()
    request = _pending_request(ticket_id)
    ticket = get_any_ticket(ticket_id)
    assignment = _perform(request, e164, now)
    request.assignment_id = assignment.id
    verb = {
        NEW_NUMBER: "assigned to this organisation",
        RELEASE_NUMBER: "released",
        MOVE_NUMBER: "moved to the other organisation",
    }[request.action]
    _decide(ticket, request, principal, APPROVED, f"Approved: {request.e164} {verb}.", now)
    return request


def refuse_number_request(ticket_id: int, principal, reason: str, *, now: datetime | None = None) -> NumberRequest:
    """Refuse a pending number request, saying why to the org; nothing changes on the number."""
    _require_staff(principal)
    now = now or utcnow()
    reason = _text(reason, "reason", MAX_MESSAGE_CHARS, "reason")
    request = _pending_request(ticket_id)
    request.refusal_reason = reason
    _decide(get_any_ticket(ticket_id), request, principal, REFUSED, f"Refused: {reason}", now)
    return request
