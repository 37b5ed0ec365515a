"""Support ticket emails: who is told of an event on a ticket, and what they read.

Staff's side of the ticket moved (a staff reply, a status change, a decision on a number request):
the ticket's opener and the org's admins (by membership role) are told, each while an active member
with the `support_tickets` preference on. A manager or an agent hears only of the tickets they opened,
so nobody reads of a colleague's ticket they cannot open.

The org's side moved (a new ticket, an org reply): the staff member the ticket is assigned to is told,
or every active platform admin while it is nobody's. Staff have no membership, hence no preferences:
the queue is their work, and they are told unconditionally.

A message quotes the one message that made the event (the first message, the reply, the decision's
outcome), read among those the org sees: an internal note is never quoted, and adding one is no event.
Its outbox key names the event and the person (`ticket:<id>:message:<message id>:<user id>`), so the
same event told twice sends once. An org member's message carries a one-click unsubscribe link that
turns `support_tickets` off.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from vsync.extensions import db
from vsync.models import Membership, Organization, User
from vsync.models.orgs import ORG_ADMIN
from vsync.models.support import NUMBER_REQUEST, Ticket, TicketMessage
from vsync.services import members
from vsync.services.notifications import mail, preferences
from vsync.services.notifications.preferences import ON, SUPPORT

OPENED, REPLIED, STATUS_CHANGED, DECIDED = "opened", "replied", "status_changed", "number_request_decided"
EVENTS = (OPENED, REPLIED, STATUS_CHANGED, DECIDED)


def notify(ticket: Ticket, event: str) -> None:
    """Decide the emails of `event` on `ticket` (see the module docstring); they leave when the caller commits."""
    if event not in EVENTS:
        raise ValueError(f"Unknown ticket event {event!r}.")
    shown = _latest_visible(ticket)
    if event == OPENED or (event == REPLIED and not shown.from_platform):
        _tell_staff(ticket, event, shown)
    else:
        _tell_org(ticket, event, shown)


def _latest_visible(ticket: Ticket) -> TicketMessage:
    """The newest message the org reads: the one that made the event (internal notes are no events)."""
    return db.session.scalars(
        select(TicketMessage)
        .where(
            TicketMessage.ticket_id == ticket.id,
            TicketMessage.org_id == ticket.org_id,
            TicketMessage.internal.is_(False),
        )
        .order_by(TicketMessage.id.desc())
        .limit(1)
    ).one()  # a ticket is opened with its first message


def _event_key(ticket: Ticket, event: str, shown: TicketMessage) -> str:
    """The part of the outbox key that names this occurrence of the event."""
    if event == STATUS_CHANGED:
        return f"ticket:{ticket.id}:status:{ticket.status}:{ticket.updated_at:%Y%m%dT%H%M%S.%f}"
    return f"ticket:{ticket.id}:message:{shown.id}"


def _context(ticket: Ticket, event: str, shown: TicketMessage, ticket_url: str) -> dict:
    kind = "number request" if ticket.kind == NUMBER_REQUEST else "ticket"
    what = {
        OPENED: f"new {kind}",
        REPLIED: f"reply from {shown.author}",
        STATUS_CHANGED: f"now {ticket.status.replace('_', ' ')}",
        DECIDED: "number request decided",
    }[event]
    return {
        "event": event,
        "what": what,
        "ticket_id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status.replace("_", " "),
        "author": shown.author,
        "body": None if event == STATUS_CHANGED else shown.body,
        "ticket_url": ticket_url,
    }


def _tell_staff(ticket: Ticket, event: str, shown: TicketMessage) -> None:
    assigned = members.platform_staff_contacts(ticket.assignee_user_id) if ticket.assignee_user_id else []
    context = _context(ticket, event, shown, f"{mail.public_url()}/admin/platform/tickets/details/?id={ticket.id}")
    for user_id, email in assigned or members.platform_staff_contacts():
        mail.queue_email(
            ticket.org_id,
            kind="support",
            key=f"{_event_key(ticket, event, shown)}:{user_id}",
            to=email,
            template="support",
            context=context,
            user_id=user_id,
        )


def _org_recipients(ticket: Ticket) -> list[Membership]:
    """The opener and the org admins, active, with the preference on."""
    concerned = db.session.scalars(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.org_id == ticket.org_id,
            User.active.is_(True),
            or_(Membership.role == ORG_ADMIN, Membership.user_id == ticket.opened_by_user_id),
        )
        .order_by(Membership.user_id)
    )
    return [membership for membership in concerned if preferences.preferences_of(membership)[SUPPORT] == ON]


def _tell_org(ticket: Ticket, event: str, shown: TicketMessage) -> None:
    org = db.session.get_one(Organization, ticket.org_id)  # the ticket's org (a foreign key)
    context = _context(
        ticket, event, shown, f"{mail.public_url()}/admin/orgs/{org.slug}/tickets/details/?id={ticket.id}"
    )
    for membership in _org_recipients(ticket):
        row = mail.queue_email(
            org.id,
            kind="support",
            key=f"{_event_key(ticket, event, shown)}:{membership.user_id}",
            to=membership.user.email,
            template="support",
            context=context,
            user_id=membership.user_id,
        )
        if row is not None:
            url = f"{mail.public_url()}/unsubscribe/{preferences.unsubscribe_token(org.id, row.id, SUPPORT)}"
            row.context = {
                **context,
                "unsubscribe_url": url,
                "headers": {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            }
            db.session.flush()
