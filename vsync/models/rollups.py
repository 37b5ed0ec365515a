"""Exact rollups of calls by UTC hour and by UTC day, and the hours whose rollups are stale.

`CallRollup` rows are provider rows like calls: each is the sum of some calls (or missed-ring events)
of one phone number in one UTC hour (`grain` `hour`) or day (`day`, the sum of the day's hour rows),
starting at `hour_start`, scoped as calls are (an org sees a row while one of its assignment periods
of the number covers `hour_start`; the KPI engine reads only hours and days whose whole length a
period covers). How they are made and read: `vsync.services.rollups` and `vsync.metrics`.

`RollupDirty` rows name a (number, hour) whose calls or events changed since its rollup was made:
database triggers (migration `0023_rollups_hourly`) add one for every insert, delete and relevant
update of `calls` and `call_events`, whoever writes them, so the engine never trusts a stale hour.
They hold no traffic (a number id and an hour), so they are no organisation's rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from vsync.extensions import db
from vsync.models.types import UtcDateTime
from vsync.tenancy import NumberTraffic

CALLS, AGENTS, RINGS, INEXACT = "calls", "agents", "rings", "inexact"
HOUR, DAY = "hour", "day"  # grains
BY_HOUR = tuple(f"hour_{hour:02}" for hour in range(24))  # a day row's calls per UTC hour of the day
EDGES = 3  # distinct thresholds of each kind a number's rollups keep counts for


class CallRollup(NumberTraffic, db.Model):
    """Some calls (or missed-ring events) of one number and UTC hour, summed.

    `kind` is `calls` (the hour's calls of one `direction`), `agents` (the hour's calls of one
    direction handled by one agent: `account_id`, `agent_extension`), `rings` (StopRinging events with
    an extension, by their call's direction and agent and their own `ring_account_id` and
    `ring_extension`; `calls` counts them) or `inexact` (an hour holding something no rollup says
    exactly, such as an event filed under another hour than its call's: the engine reads its rows).

    The columns are the inputs of every figure: status counts, talk (answered calls), answer waits
    (answered calls with `answered_at`), ring times (unanswered calls; `abandon_n` of them missed or
    dropped). Per-organisation thresholds stay exact: `answer_edge_i` are the (up to three) distinct
    service-level thresholds, in ms, of the organisations with a period on the number when the hour was
    rolled up, and `within_i` the answer waits at or under each; `ring_edge_i` and `short_i` the same
    for short abandons (ring time under the threshold). An org whose threshold is not among them
    (a setting changed since) gets its figures from rows.

    A `day` row sums the `hour` rows of one UTC day with the same keys and thresholds (kinds `calls`,
    `agents` and `rings`): a year is 365 rows per key rather than 8,760. A day's `inexact` hours are not
    summed; the engine reads such a day by the hour. A day row also keeps its `calls` per UTC hour of
    the day (`hour_00` .. `hour_23`, None for an hour without a row), so the local hour of day of every
    call stays known (each UTC hour lies in one local hour in zones of whole-hour offsets) and a year's
    busiest hour is read from the days too. Hour rows leave them None.

    Agents see no rollups (`__agent_extension__` is None): their figures come from rows.
    """

    __tablename__ = "call_rollups"
    __tenant_time__ = "hour_start"
    # The engine reads one kind's spans of a number through the kind's own index: with the kind in a
    # shared one, PostgreSQL factors it out of the spans and reads every row of the kind as a bitmap.
    __table_args__ = (
        Index("ix_call_rollups_number_grain_kind", "phone_number_id", "grain", "kind", "hour_start"),
        *(
            Index(
                f"ix_call_rollups_{kind}",
                "phone_number_id",
                "grain",
                "hour_start",
                postgresql_where=text(f"kind = '{kind}'"),
                sqlite_where=text(f"kind = '{kind}'"),
            )
            for kind in (CALLS, AGENTS, RINGS)
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    grain: Mapped[str] = mapped_column(String(4), default=HOUR, server_default=HOUR)
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str | None] = mapped_column(String(12))
    account_id: Mapped[int | None] = mapped_column(Integer)
    agent_extension: Mapped[str | None] = mapped_column(String(20))
    ring_account_id: Mapped[int | None] = mapped_column(Integer)
    ring_extension: Mapped[str | None] = mapped_column(String(20))
    calls: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    dropped: Mapped[int] = mapped_column(Integer, default=0)
    voicemail: Mapped[int] = mapped_column(Integer, default=0)
    talk_n: Mapped[int] = mapped_column(Integer, default=0)
    talk_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    answer_n: Mapped[int] = mapped_column(Integer, default=0)
    answer_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    answer_max_ms: Mapped[int | None] = mapped_column(BigInteger)
    ring_n: Mapped[int] = mapped_column(Integer, default=0)
    ring_max_ms: Mapped[int | None] = mapped_column(BigInteger)
    abandon_n: Mapped[int] = mapped_column(Integer, default=0)
    answer_edge_1: Mapped[int | None] = mapped_column(Integer)
    answer_edge_2: Mapped[int | None] = mapped_column(Integer)
    answer_edge_3: Mapped[int | None] = mapped_column(Integer)
    within_1: Mapped[int] = mapped_column(Integer, default=0)
    within_2: Mapped[int] = mapped_column(Integer, default=0)
    within_3: Mapped[int] = mapped_column(Integer, default=0)
    ring_edge_1: Mapped[int | None] = mapped_column(Integer)
    ring_edge_2: Mapped[int | None] = mapped_column(Integer)
    ring_edge_3: Mapped[int | None] = mapped_column(Integer)
    short_1: Mapped[int] = mapped_column(Integer, default=0)
    short_2: Mapped[int] = mapped_column(Integer, default=0)
    short_3: Mapped[int] = mapped_column(Integer, default=0)
    for _hour in range(24):  # hour_00 .. hour_23 (day rows)
        vars()[f"hour_{_hour:02}"] = mapped_column(Integer, nullable=True)
    del _hour


class RollupDirty(db.Model):
    """A (number, UTC hour) whose rollup may be stale. `txid` is the writing transaction's id
    (PostgreSQL), so a writer refreshes the hours it made stale and no others."""

    __tablename__ = "rollup_dirty"
    __table_args__ = (Index("ix_rollup_dirty_number_hour", "phone_number_id", "hour_start"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    phone_number_id: Mapped[int] = mapped_column(BigInteger)
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime)
    txid: Mapped[int | None] = mapped_column(BigInteger, index=True)
