"""Phone numbers (platform rows) and their assignments to organisations over time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vsync.extensions import db
from vsync.models.types import UtcDateTime, utcnow
from vsync.tenancy import NumberPeriods, SharedNumber


class PhoneNumber(SharedNumber, db.Model):
    __tablename__ = "phone_numbers"

    e164: Mapped[str] = mapped_column(String(16), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("integrations.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    assignments: Mapped[list[NumberAssignment]] = relationship(back_populates="phone_number")

    def __repr__(self) -> str:
        return f"<PhoneNumber {self.e164}>"


class NumberAssignment(NumberPeriods, db.Model):
    """`org` sees traffic on `phone_number` from `assigned_at` up to (not including) `unassigned_at`.

    These rows decide visibility, so only platform operations write them (never a tenant scope).

    Periods of one number in one org never overlap (checked by `vsync.services.numbers`); periods
    of one number in different orgs may, which is how a number is shared.
    """

    __tablename__ = "number_assignments"
    __table_args__ = (
        CheckConstraint("unassigned_at IS NULL OR unassigned_at > assigned_at", name="period"),
        Index("ix_number_assignments_number_org_period", "phone_number_id", "org_id", "assigned_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_number_id: Mapped[int] = mapped_column(ForeignKey("phone_numbers.id", ondelete="CASCADE"))
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    unassigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    phone_number: Mapped[PhoneNumber] = relationship(back_populates="assignments")
    org = relationship("Organization")


def periods_cover(periods: Iterable[tuple[datetime, datetime | None]], at: datetime) -> bool:
    """Whether one of `periods` ((assigned_at, unassigned_at) pairs of one organisation and number)
    covers the instant `at`: the one rule of whose a row filed at `at` is. Every writer of provider
    rows asks it with the instant the row is filed under (a call's start, an SMS's time), through
    `vsync.services.sync.ingest.NumberBook`; readers apply its SQL twin, `NumberPeriods.covering`."""
    return any(start <= at and (end is None or at < end) for start, end in periods)
