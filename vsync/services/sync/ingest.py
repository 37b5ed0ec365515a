"""Bulk, idempotent writes of provider data: one statement per table per page, never row by row.

Provider rows are the MightyCall account's, one per (account_id, external id), however many
organisations' integrations read the account. Calls have two writers, merged here under that key:
the sync (`write_calls`) and webhook events (`write_call_event`). Each source's best fields win,
whichever writes first or last (see `vsync.models.traffic.Call`): the sync never overwrites what
events say about answering and waiting, and events never overwrite what a sync has read.

These are Core writes on tables, which the tenant hooks do not check (see `vsync.tenancy`).
This module is the reviewed place for that, and marks them so (`reviewed_sql`): every write is keyed
by the account of the integration the caller loaded inside its org's tenant scope, and every row is
written only where the org holds its number at the instant the row is filed under
(`NumberBook.number_at`: a call's start, an SMS's time), so an org's integration never files a row in
another org's period of a number; number discovery is the one platform operation here. Upserts are
`INSERT … ON CONFLICT (account_id, external_id) DO UPDATE … WHERE the provider's raw item changed`,
on PostgreSQL and SQLite alike: running a page twice writes nothing. Webhook events are written a
batch at a time (`write_call_events`, one statement per table for the batch, giving what applying
them one at a time gives) under their calls' locks (`lock_calls`). Each page of calls and each batch
of events ends by refreshing the hourly rollups of the hours it changed (`vsync.services.rollups`),
in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter

from sqlalchemy import and_, bindparam, case, func, literal_column, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from vsync.extensions import db
from vsync.mightycall import CallRecord, SmsRecord, participants
from vsync.mightycall.webhook_events import EventFacts, derive_call, parse_event
from vsync.models import Agent, Call, CallEvent, NumberAssignment, PhoneNumber, Recording, SmsMessage
from vsync.models.numbers import periods_cover
from vsync.models.types import UtcDateTime, utcnow
from vsync.phones import try_e164
from vsync.services import audit, rollups
from vsync.tenancy import reviewed_sql

# Numbers that syncs discover are assigned from here on: their whole history in the account is the
# org's, so a backfill of older traffic is never hidden behind an assignment that started later.
DISCOVERED_NUMBER_ASSIGNED_FROM = datetime(2000, 1, 1, tzinfo=UTC)
_UTC = UtcDateTime()


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    skipped: int = 0  # records on no valid number, or on one the org does not hold at the record's time


def _insert(table, dialect: str | None = None):
    """The dialect's INSERT of `table` (with ON CONFLICT), for the session's database unless `dialect` says."""
    dialect = dialect or db.session.get_bind().dialect.name
    return reviewed_sql((postgresql.insert if dialect == "postgresql" else sqlite.insert)(table))


def _rows_insert(table, rows: list[dict]):
    """An INSERT of `rows` into `table`, and the parameters to execute it with.

    On PostgreSQL the rows travel as one JSON document that `json_populate_recordset` unpacks
    into rows of the table's own type: one parameter per page instead of one per value, because
    handling every value on its own, in SQLAlchemy, psycopg2 and the server, is most of what a page
    of multi-row VALUES costs. Times go through `UtcDateTime`, so a naive one is refused as on any
    other write. SQLite gets the rows as an executemany.
    """
    insert = _insert(table)
    dialect = db.session.get_bind().dialect
    if dialect.name != "postgresql":
        return insert, rows

    def encode(value):
        if isinstance(value, datetime):
            stored = _UTC.process_bind_param(value, dialect)
            assert stored is not None, "UtcDateTime gives None for None only"
            return stored.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    columns = list(rows[0])
    page = text(f"json_populate_recordset(NULL::{table.name}, :rows)").bindparams(rows=json.dumps(rows, default=encode))
    return insert.from_select(columns, select(*map(literal_column, columns)).select_from(page)), None


def _upsert(table, rows: list[dict], keys: tuple[str, ...], compare: str, keep: dict | None = None) -> WriteCounts:
    """Insert `rows`, update those whose `compare` column changed, and count which was which.

    New rows go in first (`ON CONFLICT DO NOTHING`), so the unique index itself tells new rows from
    existing ones and the page's keys need no lookup: PostgreSQL plans `(account_id, external_id)
    IN (...)` as a scan of all the account's rows, which makes every page slower than the last.
    Only the rows that were there already are then upserted; `keep` maps a column to the SQL
    expression it is updated with instead of the new value (how a merge keeps the other source's field).
    """
    if not rows:
        return WriteCounts()
    key_cols = [table.c[k] for k in keys]
    key_of = itemgetter(*keys)
    insert, params = _rows_insert(table, rows)
    inserted = set(
        map(
            key_of,
            db.session.execute(
                insert.on_conflict_do_nothing(index_elements=list(keys)).returning(*key_cols), params
            ).mappings(),
        )
    )
    present = [r for r in rows if key_of(r) not in inserted]
    if not present:
        return WriteCounts(inserted=len(inserted))
    insert, params = _rows_insert(table, present)
    updatable = [c for c in rows[0] if c not in keys]
    stmt = insert.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: (keep or {}).get(c, insert.excluded[c]) for c in updatable},
        where=table.c[compare].is_distinct_from(insert.excluded[compare]),
    ).returning(*key_cols)
    return WriteCounts(inserted=len(inserted), updated=len(db.session.execute(stmt, params).all()))


@dataclass
class NumberBook:
    """The numbers an org holds, and when, for the rows one sync run or webhook event writes.

    `number_at(e164, at)` is the one question every writer of provider rows asks: the id of the
    number if the org holds it at the instant `at` the row is filed under, else None, and the row is
    not written by this org's integration (skipped, or for an event `unmatched`). It reads the org's
    periods of the numbers once per book, so a page of rows costs one query.

    With `discover`, the sync's reviewed platform operation, numbers are found and recorded on the
    session's connection, unfiltered, because whether a number is anyone's cannot be seen from inside
    one org:

    - a number nobody has a period on is the integration's org's, for its whole history (discovered);
    - a number the org has (or had) a period on: its traffic is written, in the org's periods;
    - a number only other orgs have periods on is a conflict: its traffic is not written, so one org's
      account never lands in another org's view silently; the conflict goes to the audit log (for the
      org and the platform admins) until a platform admin assigns the number, and the next sync of the
      window writes it. Records on it count as skipped.
    """

    org_id: int
    integration_id: int
    discover: bool = True
    ids: dict[str, int] = field(default_factory=dict)
    periods: dict[int, list[tuple[datetime, datetime | None]]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    discovered: int = 0

    def resolve(self, raw_numbers) -> dict[str, int]:
        wanted = {
            e164 for e164 in map(try_e164, raw_numbers) if e164 and e164 not in self.ids and e164 not in self.refused
        }
        if wanted:
            self._ensure(wanted)
        return self.ids

    def number_at(self, raw_number, at: datetime) -> int | None:
        """The number's id if the org holds it at `at` (see the class docstring), else None."""
        e164 = try_e164(raw_number)
        if e164 is None:
            return None
        number_id = self.resolve([e164]).get(e164)
        if number_id is None or not periods_cover(self.periods.get(number_id, ()), at):
            return None
        return number_id

    def _ensure(self, e164s: set[str]) -> None:
        connection = db.session.connection()
        numbers, periods = PhoneNumber.__table__, NumberAssignment.__table__
        if self.discover:
            connection.execute(
                _insert(numbers)
                .values(
                    [{"e164": e, "integration_id": self.integration_id, "created_at": utcnow()} for e in sorted(e164s)]
                )
                .on_conflict_do_nothing(index_elements=["e164"])
            )
        found = dict(
            connection.execute(reviewed_sql(select(numbers.c.e164, numbers.c.id).where(numbers.c.e164.in_(e164s))))
            .tuples()
            .all()
        )
        holders: dict[int, set[int]] = {}
        for number_id, org_id, start, end in connection.execute(
            reviewed_sql(
                select(
                    periods.c.phone_number_id, periods.c.org_id, periods.c.assigned_at, periods.c.unassigned_at
                ).where(periods.c.phone_number_id.in_(found.values()))
            )
        ):
            holders.setdefault(number_id, set()).add(org_id)
            if org_id == self.org_id:
                self.periods.setdefault(number_id, []).append((start, end))
        unassigned = sorted(n for n in found.values() if n not in holders)
        if unassigned and self.discover:
            connection.execute(
                reviewed_sql(periods.insert()),
                [
                    {
                        "org_id": self.org_id,
                        "phone_number_id": n,
                        "assigned_at": DISCOVERED_NUMBER_ASSIGNED_FROM,
                        "created_at": utcnow(),
                    }
                    for n in unassigned
                ],
            )
            for n in unassigned:
                self.periods[n] = [(DISCOVERED_NUMBER_ASSIGNED_FROM, None)]
            self.discovered += len(unassigned)
        self.refused |= e164s - found.keys()
        for e164, number_id in sorted(found.items()):
            if self.org_id in holders.get(number_id, ()) or (self.discover and number_id not in holders):
                self.ids[e164] = number_id
                continue
            self.refused.add(e164)
            if self.discover:
                audit.record(
                    "number.conflict",
                    org_id=self.org_id,
                    target=("PhoneNumber", number_id),
                    actor="sync",
                    summary=f"integration {self.integration_id} reports {e164}, which is "
                    "assigned to other organisations only; its traffic is not "
                    "stored until a platform admin assigns the number",
                )


def write_calls(account_id: int, records: list[CallRecord], book: NumberBook) -> WriteCounts:
    """Calls of one page, their recordings' metadata and the agent names they mention. A call is
    written where the book's org holds its number at the call's start, and only there."""
    book.resolve(r.business_number for r in records)
    now = utcnow()
    calls, recordings = [], []
    for r in records:
        number_id = book.number_at(r.business_number, r.started_at)
        if number_id is None:
            continue  # on no valid number, or on one the org does not hold then: counted as skipped
        calls.append(
            {
                "account_id": account_id,
                "external_id": r.external_id,
                "phone_number_id": number_id,
                "direction": r.direction,
                "status": r.status,
                "provider_status": r.provider_status,
                "from_number": r.from_number,
                "to_number": r.to_number,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "duration_ms": r.duration_ms,
                "agent_extension": r.agent_extension,
                "raw": r.raw,
                "synced_at": now,
            }
        )
        if r.recording_uri:
            recordings.append(
                {
                    "account_id": account_id,
                    "call_external_id": r.external_id,
                    "phone_number_id": number_id,
                    "started_at": r.started_at,
                    "file_name": r.recording_file_name,
                    "provider_uri": r.recording_uri,
                    "duration_ms": r.duration_ms,
                }
            )
    table = Call.__table__
    # An answered call's agent is the extension that answered, which only events know; an unanswered
    # outbound call keeps the extension its events say placed it when the sync's item names none.
    excluded = _insert(table).excluded
    keep = {
        "agent_extension": case(
            (table.c.answered_at.is_not(None), table.c.agent_extension),
            else_=func.coalesce(excluded.agent_extension, table.c.agent_extension),
        )
    }
    counts = _upsert(table, calls, ("account_id", "external_id"), "raw", keep)
    counts.skipped = len(records) - len(calls)
    _upsert(Recording.__table__, recordings, ("account_id", "call_external_id"), "provider_uri")
    write_agents(account_id, [p for r in records for p in participants(r.raw)])
    rollups.refresh()
    return counts


def write_agents(account_id: int, named_extensions) -> WriteCounts:
    """(extension, display name) pairs of the account; the last name seen for an extension wins."""
    names = {ext: name for ext, name in named_extensions if ext and name}
    rows = [
        {"account_id": account_id, "extension": ext, "display_name": name, "updated_at": utcnow()}
        for ext, name in sorted(names.items())
    ]
    return _upsert(Agent.__table__, rows, ("account_id", "extension"), "display_name")


def write_sms(account_id: int, records: list[SmsRecord], book: NumberBook) -> WriteCounts:
    """Messages of one page, each written where the book's org holds its number at the message's time."""
    book.resolve(r.business_number for r in records if r.business_number)
    now = utcnow()
    rows = []
    for r in records:
        number_id = book.number_at(r.business_number, r.occurred_at) if r.business_number else None
        if number_id is not None:
            rows.append(
                {
                    "account_id": account_id,
                    "external_id": r.external_id,
                    "phone_number_id": number_id,
                    "direction": r.direction,
                    "counterpart": r.counterpart,
                    "text": r.text,
                    "sent_at": r.occurred_at,
                    "raw": r.raw,
                    "synced_at": now,
                }
            )
    counts = _upsert(SmsMessage.__table__, rows, ("account_id", "external_id"), "raw")
    counts.skipped = len(records) - len(rows)
    return counts


CallKey = tuple[int, str]  # a call: (account id, its external id)


def _call_lock_name(key: CallKey) -> str:
    return f"vsync-call:{key[0]}:{key[1]}"


def _lock_call(account_id: int, external_id: str) -> None:
    """Serialise the events of one call until the transaction ends (PostgreSQL; SQLite has a single
    writer anyway), so two workers applying two events of a call cannot each derive it from a set
    that misses the other's event and overwrite each other."""
    lock_calls([(account_id, external_id)], wait=True)


# The calls' locks (`_lock_call`) in one statement, in the order of their keys, so two writers locking
# several calls never wait for each other in a circle. Waiting: every lock; trying: the free ones.
_LOCKS_IN_ORDER = (
    "(SELECT name, hashtextextended(name, 0) AS lock FROM unnest(CAST(:names AS text[])) AS k(name) "
    "ORDER BY lock OFFSET 0) AS ordered"
)
_WAIT_FOR_LOCKS = text(f"SELECT name, pg_advisory_xact_lock(lock) FROM {_LOCKS_IN_ORDER}")
_TRY_LOCKS = text(f"SELECT name FROM {_LOCKS_IN_ORDER} WHERE pg_try_advisory_xact_lock(lock)")


def lock_calls(keys: Iterable[CallKey], *, wait: bool) -> set[CallKey]:
    """Take the calls' locks (see `_lock_call`) until the transaction ends: with `wait`, every one,
    waiting for those another transaction holds; without, those that are free. Returns the calls
    now held (on SQLite, every one: a single writer)."""
    names = {_call_lock_name(key): key for key in keys}
    if not names or db.session.get_bind().dialect.name != "postgresql":
        return set(names.values())
    held = db.session.execute(_WAIT_FOR_LOCKS if wait else _TRY_LOCKS, {"names": sorted(names)}).scalars()
    return {names[name] for name in held}


class EventsNeedOneByOne(Exception):
    """A batch of events whose result could differ from applying them one at a time (see
    `write_call_events`); nothing of it should be committed, and its events applied one by one."""


@dataclass
class _CallEvents:
    """One call of a batch: what its stored events say, and what the batch writes."""

    facts: list[EventFacts] = field(default_factory=list)
    guids: set[str] = field(default_factory=set)
    stored: list[tuple[int, datetime]] = field(default_factory=list)  # (number id, filed at) of its visible events
    synced_start: datetime | None = None
    events: int = 0  # of the batch
    written: tuple[datetime, int] | None = None  # (filed at, number id) of its applied events
    call: dict | None = None  # its row, as its last applied event derives it
    taken_as_new: list[str] = field(default_factory=list)  # guids of the batch's events read as not stored yet


def _calls_of(table, account_column, id_column, keys: list[CallKey]):
    by_account: dict[int, list[str]] = {}
    for account_id, external_id in keys:
        by_account.setdefault(account_id, []).append(external_id)
    return or_(*(and_(table.c[account_column] == a, table.c[id_column].in_(ids)) for a, ids in by_account.items()))


# The call's fields the sync's read wins over the events' (see `vsync.models.traffic.Call`).
_SYNC_WINS = (
    "phone_number_id",
    "direction",
    "status",
    "from_number",
    "to_number",
    "started_at",
    "ended_at",
    "duration_ms",
)


@cache
def _event_statements(dialect: str):
    """The statements `write_call_events` runs, built once per dialect so that each execution finds
    its compiled form in SQLAlchemy's cache (their values are bound parameters)."""
    events, calls = CallEvent.__table__, Call.__table__
    insert_events = (
        _insert(events, dialect)
        .on_conflict_do_nothing(index_elements=["account_id", "guid"])
        .returning(events.c.account_id, events.c.guid)
    )
    insert = _insert(calls, dialect)
    unsynced = calls.c.synced_at.is_(None)

    def sync_wins(column: str):
        return case((unsynced, insert.excluded[column]), else_=calls.c[column])

    upsert_calls = reviewed_sql(
        insert.on_conflict_do_update(
            index_elements=["account_id", "external_id"],
            set_={
                **{c: sync_wins(c) for c in _SYNC_WINS},
                **{c: insert.excluded[c] for c in ("answered_at", "wait_ended_at", "ring_ms", "events_at")},
                "agent_extension": case(
                    (unsynced | insert.excluded.answered_at.is_not(None), insert.excluded.agent_extension),
                    else_=calls.c.agent_extension,
                ),
            },
        ).returning(calls.c.id)  # which makes SQLAlchemy send a batch's rows as one multi-row INSERT
    )
    # An event that arrived late may move the call's start: its other events follow it.
    move_events = reviewed_sql(
        events.update()
        .where(
            events.c.account_id == bindparam("b_account_id"),
            events.c.call_external_id == bindparam("b_call_external_id"),
            events.c.call_started_at != bindparam("b_filed_at"),
        )
        .values(call_started_at=bindparam("b_filed_at"))
    )
    return insert_events, upsert_calls, move_events


def write_call_event(account_id: int, book: NumberBook, event: EventFacts) -> bool | None:
    """Store one webhook event of a call and re-derive the call from all its stored events.

    The call is filed under its start: the sync's, when the sync has read it, else the start its
    events give (`Body.DateTimeUtc`, or the earliest event). The event is applied only if the book's
    org holds the call's number at that instant, whatever the event's own `Timestamp` says; returns
    None when it does not (the caller marks the event unmatched, and nothing is written). Otherwise
    a call first seen here is created (`synced_at` empty, its duration the events'); a call the sync
    read keeps the sync's fields and takes the events' answer, wait and ring times and answering
    agent. Returns whether the event was new; applying the same event twice changes nothing.
    """
    _lock_call(account_id, event.call_id)
    return write_call_events([(account_id, book, event)])[0]


def write_call_events(events: list[tuple[int, NumberBook, EventFacts]]) -> list[bool | None]:
    """`write_call_event` for a batch of (account id, book, event), in the order given, for calls
    whose locks the caller holds (`lock_calls`): for each event, None when it is not applied, else
    whether it was new.

    The result is the one applying the events one at a time gives, with a statement per table for
    the batch instead of five per event, and one rollup refresh: each call's stored events and sync
    start are read once, each event is derived in order from them and the batch's earlier events,
    and each call is written once, as its last applied event derives it (the merge keeps the
    events' answer once an event has it, so the intermediate writes are overwritten). Where that
    could differ from one at a time (a call whose events of the batch are filed under different
    starts or numbers, a stored event that a move would hide, an event taken as new that another
    organisation's view had stored already), it raises `EventsNeedOneByOne` before the caller
    commits anything. Calls are written in key order; a sync page writing some of the same calls in
    another order at the same instant can deadlock with the batch, and PostgreSQL then fails one of
    the two: the drain applies that batch one event at a time, the sync's job is retried.
    """
    if not events:
        return []
    dialect = db.session.get_bind().dialect.name
    insert_events, upsert_calls, move_events = _event_statements(dialect)
    table, calls = CallEvent.__table__, Call.__table__
    keys = sorted({(account_id, event.call_id) for account_id, _, event in events})
    state = {key: _CallEvents() for key in keys}
    for account_id, external_id, guid, raw, number_id, filed_at in db.session.execute(
        select(
            table.c.account_id,
            table.c.call_external_id,
            table.c.guid,
            table.c.raw,
            table.c.phone_number_id,
            table.c.call_started_at,
        ).where(_calls_of(table, "account_id", "call_external_id", keys))
    ):
        call = state[(account_id, external_id)]
        call.facts.append(parse_event(raw))
        call.guids.add(guid)
        call.stored.append((number_id, filed_at))
    for account_id, external_id, started_at in db.session.execute(
        select(calls.c.account_id, calls.c.external_id, calls.c.started_at).where(
            _calls_of(calls, "account_id", "external_id", keys), calls.c.synced_at.is_not(None)
        )
    ):
        state[(account_id, external_id)].synced_start = started_at
    rows: list[dict] = []
    applied: list[tuple[CallKey, str] | None] = []
    for account_id, book, event in events:
        call = state[(account_id, event.call_id)]
        call.events += 1
        facts = derive_call([*call.facts, event])
        filed_at = call.synced_start or facts.started_at
        phone_number_id = book.number_at(event.business_number, filed_at)
        if phone_number_id is None:
            applied.append(None)
            continue
        if call.written not in (None, (filed_at, phone_number_id)):
            raise EventsNeedOneByOne(f"call {event.call_id}: events filed under different starts or numbers")
        call.written = (filed_at, phone_number_id)
        if event.guid not in call.guids:
            call.facts.append(event)
            call.guids.add(event.guid)
            call.taken_as_new.append(event.guid)
        applied.append(((account_id, event.call_id), event.guid))
        rows.append(
            {
                "account_id": account_id,
                "guid": event.guid,
                "call_external_id": event.call_id,
                "event_type": event.event_type,
                "kind": event.kind or "other",
                "extension": event.extension,
                "occurred_at": event.occurred_at,
                "call_started_at": filed_at,
                "phone_number_id": phone_number_id,
                "raw": dict(event.raw),
            }
        )
        call.call = {
            "account_id": account_id,
            "external_id": event.call_id,
            "phone_number_id": phone_number_id,
            "direction": facts.direction,
            "status": facts.status,
            "from_number": facts.from_number,
            "to_number": facts.to_number,
            "started_at": facts.started_at,
            "answered_at": facts.answered_at,
            "wait_ended_at": facts.wait_ended_at,
            "ring_ms": facts.ring_ms,
            "ended_at": facts.ended_at,
            "duration_ms": facts.duration_ms,
            "agent_extension": facts.agent_extension,
            "raw": {},
            "events_at": facts.events_at,
        }
    new = {(row[0], row[1]) for row in db.session.execute(insert_events, rows)} if rows else set()
    moves = []
    for (account_id, external_id), call in state.items():
        if call.written is None:
            continue
        filed_at, phone_number_id = call.written
        if call.events > 1:
            # One at a time, each event reads what the one before it left: the same, unless a
            # stored event it moves leaves the org's view, or an event taken as new was stored.
            hidden = any(n != phone_number_id and at != filed_at for n, at in call.stored)
            stored_already = any((account_id, guid) not in new for guid in call.taken_as_new)
            if hidden or stored_already:
                raise EventsNeedOneByOne(f"call {external_id}: its events read what one another wrote")
        if any(at != filed_at for _, at in call.stored):
            moves.append({"b_account_id": account_id, "b_call_external_id": external_id, "b_filed_at": filed_at})
    if rows:
        db.session.execute(upsert_calls, [call.call for call in state.values() if call.call is not None])
    if moves:
        db.session.execute(move_events, moves)
    rollups.refresh()
    return [None if a is None else (a[0][0], a[1]) in new for a in applied]
