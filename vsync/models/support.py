"""Support: tickets between an organisation and platform staff, their threads, and number requests.

Every row here is org-owned: a ticket, its messages and its number request belong to the org that
opened it; the tenant filter's flush guard refuses a message or request under another org's ticket.
Platform staff work them in the platform bypass (`vsync.services.support`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vsync.extensions import db
from vsync.models.types import UtcDateTime, one_of, utcnow
from vsync.tenancy import OrgOwned

OPEN, WAITING_ON_ORG, WAITING_ON_PLATFORM, RESOLVED, CLOSED = (
    "open",
    "waiting_on_org",
    "waiting_on_platform",
    "resolved",
    "closed",
)
TICKET_STATUSES = (OPEN, WAITING_ON_ORG, WAITING_ON_PLATFORM, RESOLVED, CLOSED)
CATEGORIES = ("question", "problem", "numbers", "billing", "other")
PRIORITIES = ("low", "normal", "high", "urgent")
SUPPORT, NUMBER_REQUEST = "support", "number_request"
TICKET_KINDS = (SUPPORT, NUMBER_REQUEST)

NEW_NUMBER, RELEASE_NUMBER, MOVE_NUMBER = "new", "release", "move"
NUMBER_ACTIONS = (NEW_NUMBER, RELEASE_NUMBER, MOVE_NUMBER)
PENDING, APPROVED, REFUSED = "pending", "approved", "refused"
DECISIONS = (PENDING, APPROVED, REFUSED)


class Ticket(OrgOwned, db.Model):
    """A conversation between one org and platform staff.

    `opened_by_user_id` decides what an agent sees (their own tickets only); `opened_by` keeps who
    opened it as a label, since an API key opens tickets too. `assignee_user_id` is a platform staff
    member, shown in the platform console only. `first_response_at` is the first answer staff gave
    the org (internal notes do not count); `resolved_at` the latest resolution (a reopen clears it).
    """

    __tablename__ = "tickets"
    __table_args__ = (
        one_of("status", TICKET_STATUSES),
        one_of("category", CATEGORIES),
        one_of("priority", PRIORITIES),
        one_of("kind", TICKET_KINDS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default=SUPPORT)
    subject: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default=OPEN, index=True)
    opened_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    opened_by: Mapped[str] = mapped_column(String(300))
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    # Read-only: children are written with their org_id and ticket_id named, by vsync.services.support.
    messages: Mapped[list[TicketMessage]] = relationship(order_by="TicketMessage.id", viewonly=True)
    number_request: Mapped[NumberRequest | None] = relationship(viewonly=True)
    assignee = relationship("User", foreign_keys=[assignee_user_id])

    def __repr__(self) -> str:
        return f"<Ticket {self.id} org={self.org_id} {self.status}>"


class TicketMessage(OrgOwned, db.Model):
    """One message of a ticket's thread. `internal` notes are written by staff for staff and never
    shown to the org: only the platform's own reads include them."""

    __tablename__ = "ticket_messages"
    __table_args__ = (CheckConstraint("from_platform OR NOT internal", name="internal_from_platform"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(300))
    from_platform: Mapped[bool] = mapped_column(Boolean, default=False)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(viewonly=True)


class NumberRequest(OrgOwned, db.Model):
    """The structured part of a number-request ticket: a new number (country, area code or pattern,
    label, optionally the exact number wanted), the release of a number the org has, or moving one
    of its numbers to another org of the requester (`to_org_id`).

    Approval performs it through `vsync.services.numbers` and links `assignment_id`: the period it
    started (new) or ended (release, move: the requesting org's period; the destination's new period
    is in the audit log, being another org's row). Refusal needs `refusal_reason`.
    """

    __tablename__ = "number_requests"
    __table_args__ = (
        UniqueConstraint("ticket_id"),
        one_of("action", NUMBER_ACTIONS),
        one_of("decision", DECISIONS),
        CheckConstraint("decision <> 'refused' OR refusal_reason IS NOT NULL", name="refused_with_reason"),
        CheckConstraint("action <> 'move' OR to_org_id IS NOT NULL", name="move_names_org"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    area_code: Mapped[str | None] = mapped_column(String(20))
    label: Mapped[str | None] = mapped_column(String(200))
    e164: Mapped[str | None] = mapped_column(String(16))
    to_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String(10), default=PENDING)
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_by: Mapped[str | None] = mapped_column(String(300))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    refusal_reason: Mapped[str | None] = mapped_column(Text)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("number_assignments.id", ondelete="SET NULL"))

    ticket: Mapped[Ticket] = relationship(viewonly=True)
