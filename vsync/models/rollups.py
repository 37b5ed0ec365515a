"""Exact hourly rollups of calls, and the hours whose rollups are stale.

`CallRollup` rows are provider rows like calls: each is the sum of some calls (or missed-ring events)
of one phone number in one UTC hour (`hour_start`), scoped as calls are (an org sees a row while one
of its assignment periods of the number covers `hour_start`; the KPI engine reads only hours whose
whole length a period covers). How they are made and read: `vsync.services.rollups` and
`vsync.metrics`.

`RollupDirty` rows name a (number, hour) whose calls or events changed since its rollup was made:
database triggers (migration `0017_rollups_hourly`) add one for every insert, delete and relevant
update of `calls` and `call_events`, whoever writes them, so the engine never trusts a stale hour.
They hold no traffic (a number id and an hour), so they are no organisation's rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vsync.extensions import db
from vsync.models.types import UtcDateTime
from vsync.tenancy import NumberTraffic

CALLS, RINGS, INEXACT = "calls", "rings", "inexact"


class CallRollup(NumberTraffic, db.Model):
    """The calls of one number and UTC hour that share every key column, summed.

    `kind` is `calls` (calls grouped by direction, status, account, agent and wait class), `rings`
    (StopRinging events with an extension, grouped by their call's direction, account and agent and
    by the event's account and extension) or `inexact` (an hour holding something a rollup cannot say
    exactly, such as an event filed under another hour than its call: the engine reads that hour's rows).

    Wait classes make the per-organisation thresholds exact: an answered inbound call's wait lies in
    `(answer_lo_ms, answer_hi_ms]` and an abandoned call's ring time in `[ring_lo_ms, ring_hi_ms)`,
    whose ends are consecutive thresholds (service-level, resp. short-abandon, in ms) of the
    organisations with a period on the number when the rollup was made; NULL is unbounded. An org
    whose threshold is not strictly inside a class decides the whole class at once.

    Agents see no rollups (`__agent_extension__` is None): their figures come from rows.
    """

    __tablename__ = "call_rollups"
    __tenant_time__ = "hour_start"
    __table_args__ = (Index("ix_call_rollups_number_hour", "phone_number_id", "hour_start"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str | None] = mapped_column(String(12))
    status: Mapped[str | None] = mapped_column(String(12))
    account_id: Mapped[int | None] = mapped_column(Integer)
    agent_extension: Mapped[str | None] = mapped_column(String(20))
    answer_lo_ms: Mapped[int | None] = mapped_column(BigInteger)
    answer_hi_ms: Mapped[int | None] = mapped_column(BigInteger)
    ring_lo_ms: Mapped[int | None] = mapped_column(BigInteger)
    ring_hi_ms: Mapped[int | None] = mapped_column(BigInteger)
    ring_account_id: Mapped[int | None] = mapped_column(Integer)
    ring_extension: Mapped[str | None] = mapped_column(String(20))
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    talk_n: Mapped[int] = mapped_column(BigInteger, default=0)
    talk_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    answer_n: Mapped[int] = mapped_column(BigInteger, default=0)
    answer_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    answer_max_ms: Mapped[int | None] = mapped_column(BigInteger)
    ring_n: Mapped[int] = mapped_column(BigInteger, default=0)
    ring_max_ms: Mapped[int | None] = mapped_column(BigInteger)


class RollupDirty(db.Model):
    """A (number, UTC hour) whose rollup may be stale. `txid` is the writing transaction's id
    (PostgreSQL), so a writer refreshes the hours it made stale and no others."""

    __tablename__ = "rollup_dirty"
    __table_args__ = (Index("ix_rollup_dirty_number_hour", "phone_number_id", "hour_start"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    phone_number_id: Mapped[int] = mapped_column(BigInteger)
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime)
    txid: Mapped[int | None] = mapped_column(BigInteger, index=True)
