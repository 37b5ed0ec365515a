"""The org's traffic as lists and records: calls, recordings and text messages, newest first.

Every statement here is an ORM select, so the tenant hook (`vsync.tenancy`) narrows it to what the
current scope sees: the org's numbers while they were its numbers, an agent's own calls and their
recordings, no SMS for an agent. Callers run inside the org's tenant scope.

The calls list selects the calls of a `query.Window` with the criteria of `query.Filters`, the
same as the KPI engine, so a dashboard's figure and the list it drills into count the same calls.

Lists page by keyset, newest first on (time, id): `after` is the (time, id) of the last row of the
previous page, and the next page is the rows strictly older than it. A row inserted meanwhile lands
before or after the cursor, never shifting a page, so paging never repeats or skips a row.
Statements select columns, not entities: a page, or a whole export read in batches, keeps no
objects in the session.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, Select, String, and_, case, column, literal, null, or_, select, tuple_, values

from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.models import Agent, Call, CallEvent, Membership, PhoneNumber, Recording, SmsMessage
from vsync.phones import normalize_e164
from vsync.query import NO_FILTERS, Filters, Window
from vsync.services import csv_copy

SMS_DIRECTIONS = ("inbound", "outbound")
MAX_SEARCH = 100
_LIKE_ESCAPE = "\\"
EXPORT_BATCH = 1000

CALL_COLUMNS = (
    Call.id,
    Call.external_id,
    Call.phone_number_id,
    Call.direction,
    Call.status,
    Call.from_number,
    Call.to_number,
    Call.started_at,
    Call.answered_at,
    Call.ended_at,
    Call.duration_ms,
    Call.agent_extension,
    # A call's agent is (account, extension): the name of that extension in the call's own account,
    # which the scope sees only for the org's own accounts (another account's names stay hidden).
    select(Agent.display_name)
    .where(Agent.account_id == Call.account_id, Agent.extension == Call.agent_extension)
    .correlate(Call)
    .scalar_subquery()
    .label("agent_name"),
)
# A recording belongs to the call of its account with its call id.
CALL_OF_RECORDING = and_(Call.account_id == Recording.account_id, Call.external_id == Recording.call_external_id)
RECORDING_COLUMNS = (
    Recording.id,
    Call.id.label("call_id"),
    Recording.call_external_id,
    Recording.phone_number_id,
    Recording.started_at,
    Recording.duration_ms,
    Recording.file_name,
)
SMS_COLUMNS = (
    SmsMessage.id,
    SmsMessage.external_id,
    SmsMessage.phone_number_id,
    SmsMessage.direction,
    SmsMessage.counterpart,
    SmsMessage.sent_at,
    SmsMessage.text,
)


@dataclass(frozen=True)
class Search:
    """Free text a person typed: matched case-insensitively inside ids and texts, and by its digits
    inside phone numbers (so `(212) 555-01` finds `+1212555010…`)."""

    text: str

    def __post_init__(self) -> None:
        text = self.text.strip()
        if not text or len(text) > MAX_SEARCH:
            raise ValidationError(f"q is 1 to {MAX_SEARCH} characters.", field="q")
        object.__setattr__(self, "text", text)

    @property
    def digits(self) -> str:
        return "".join(ch for ch in self.text if ch.isdigit())

    def criterion(self, *, numbers: Iterable, texts: Iterable):
        """`numbers` contain the digits, or `texts` contain the text (LIKE wildcards taken literally)."""
        clauses = [column.ilike(_contains(self.text), escape=_LIKE_ESCAPE) for column in texts]
        if self.digits:
            clauses += [column.like(_contains(self.digits), escape=_LIKE_ESCAPE) for column in numbers]
        return or_(*clauses)


def _contains(text: str) -> str:
    for special in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, _LIKE_ESCAPE + special)
    return f"%{text}%"


def _newest_first(statement: Select, time_column, id_column, after: tuple[datetime, int] | None) -> Select:
    if after is not None:
        moment, row_id = after  # bound with the columns' own types, as a comparison with a plain value would be
        statement = statement.where(
            tuple_(time_column, id_column) < tuple_(literal(moment, time_column.type), literal(row_id, id_column.type))
        )
    return statement.order_by(time_column.desc(), id_column.desc())


def _in_window(column, window: Window) -> list:
    return [column >= window.start, column < window.end]


# Calls


def call_criteria(*, status: str | None = None, search: Search | None = None) -> list:
    """A call's status, and the text a person searched for, as criteria on `Call`: shared by the
    calls list, the recordings list (through their calls) and the console's calls."""
    criteria = []
    if status is not None:
        criteria.append(Call.status == status)
    if search is not None:
        criteria.append(search.criterion(numbers=(Call.from_number, Call.to_number), texts=(Call.external_id,)))
    return criteria


def calls_statement(
    window: Window,
    filters: Filters = NO_FILTERS,
    *,
    status: str | None = None,
    search: Search | None = None,
    after: tuple[datetime, int] | None = None,
) -> Select:
    """The calls started in `window` that match the filters, newest first (rows of `CALL_COLUMNS`)."""
    statement = select(*CALL_COLUMNS).where(
        *_in_window(Call.started_at, window), *filters.criteria(), *call_criteria(status=status, search=search)
    )
    return _newest_first(statement, Call.started_at, Call.id, after)


def calls_csv_statement(statement: Select, labels: Sequence[str]) -> Select:
    """`statement` (of `calls_statement`) selecting each call's cells as the Python export writes them
    (`api.calls.call_values`), named by `labels`: for the export through COPY.

    Numbers and agents' names come as the Python export takes them, from the scope's numbers
    (`number_e164s`) and the names of its agents, joined as a VALUES list: a lookup per call, where a
    subquery per call (with its own tenant criterion) would cost more than the rest of the row."""
    numbers = number_e164s()
    names = [tuple(row) for row in db.session.execute(select(Agent.account_id, Agent.extension, Agent.display_name))]
    number: Any = null()
    if numbers:
        number_list = values(column("id", Integer), column("e164", String), name="csv_numbers").data(
            list(numbers.items())
        )
        statement = statement.outerjoin(number_list, number_list.c.id == Call.phone_number_id)
        number = number_list.c.e164
    extension = csv_copy.text_cell(Call.agent_extension)
    name: Any = null()
    if names:
        name_list = values(
            column("account_id", Integer), column("extension", String), column("name", String), name="csv_agents"
        ).data(names)
        statement = statement.outerjoin(
            name_list, and_(name_list.c.account_id == Call.account_id, name_list.c.extension == Call.agent_extension)
        )
        name = case((extension.is_not(None), csv_copy.text_cell(name_list.c.name)))
    cells = (
        Call.id,
        csv_copy.text_cell(Call.external_id),
        number,
        csv_copy.text_cell(Call.direction),
        csv_copy.text_cell(Call.status),
        csv_copy.text_cell(Call.from_number),
        csv_copy.text_cell(Call.to_number),
        csv_copy.iso_z(Call.started_at),
        csv_copy.iso_z(Call.answered_at),
        csv_copy.iso_z(Call.ended_at),
        csv_copy.seconds(Call.duration_ms),
        extension,
        name,
    )
    return statement.with_only_columns(
        *(cell.label(label) for cell, label in zip(cells, labels, strict=True)), maintain_column_froms=True
    )


def call_row(call_id: int) -> Row:
    """One call as a row of `CALL_COLUMNS`; not found like `get_call` when the scope does not see it."""
    row = db.session.execute(select(*CALL_COLUMNS).where(Call.id == call_id)).first()
    if row is None:
        raise NotFound(f"No call {call_id}.", field="id")
    return row


def agent_names(extensions: Iterable[tuple[int, str | None]]) -> dict[tuple[int, str | None], str | None]:
    """Display names of (account, extension) pairs the scope sees, for pages that show agents by name."""
    wanted = {(account, ext) for account, ext in extensions if ext}
    if not wanted:
        return {}
    rows = db.session.execute(
        select(Agent.account_id, Agent.extension, Agent.display_name).where(
            Agent.account_id.in_({account for account, _ in wanted}), Agent.extension.in_({ext for _, ext in wanted})
        )
    )
    return {(account, ext): name for account, ext, name in rows if (account, ext) in wanted}


def recording_calls(recordings: Iterable[tuple[int, str]]) -> list[Row]:
    """The calls of (account, call id) pairs the scope sees, with what a recordings list shows of
    them: `account_id`, `external_id`, `from_number`, `agent_extension`, `agent_name`, `e164`, `label`."""
    wanted = set(recordings)
    if not wanted:
        return []
    rows = db.session.execute(
        select(
            Call.account_id,
            Call.external_id,
            Call.from_number,
            Call.agent_extension,
            CALL_COLUMNS[-1],
            PhoneNumber.e164,
            PhoneNumber.label,
        )
        .join(PhoneNumber, PhoneNumber.id == Call.phone_number_id)
        .where(
            Call.account_id.in_({account for account, _ in wanted}),
            Call.external_id.in_({external_id for _, external_id in wanted}),
        )
    )
    return [row for row in rows if (row.account_id, row.external_id) in wanted]


def known_agents() -> list[tuple[str, str | None]]:
    """(extension, name) of the agents the scope sees, by name then extension: the extensions of its
    own accounts' agents and of its members (`query.parse_filters` accepts each), for filter forms."""
    names: dict[str, str | None] = {}
    for extension, name in db.session.execute(select(Agent.extension, Agent.display_name)).tuples():
        names[extension] = names.get(extension) or name
    for extension in db.session.scalars(select(Membership.extension).where(Membership.extension.is_not(None))):
        if extension:
            names.setdefault(extension, None)
    return sorted(names.items(), key=lambda pair: ((pair[1] or pair[0]).lower(), pair[0]))


def get_call(call_id: int) -> tuple[Call, list[CallEvent], Recording | None]:
    """A call with its webhook events (in the order they happened) and its recording, if any.
    A call the scope does not see is not found, like one that does not exist."""
    call = db.session.get(Call, call_id)
    if call is None:
        raise NotFound(f"No call {call_id}.", field="id")
    of_call = (CallEvent.account_id == call.account_id, CallEvent.call_external_id == call.external_id)
    events = list(db.session.scalars(select(CallEvent).where(*of_call).order_by(CallEvent.occurred_at, CallEvent.id)))
    recording = db.session.scalars(
        select(Recording).where(Recording.account_id == call.account_id, Recording.call_external_id == call.external_id)
    ).first()
    return call, events, recording


# Recordings


def recordings_statement(
    window: Window,
    filters: Filters = NO_FILTERS,
    *,
    status: str | None = None,
    search: Search | None = None,
    after: tuple[datetime, int] | None = None,
) -> Select:
    """The recordings of the calls that `calls_statement` lists for the same arguments, newest first
    (rows of `RECORDING_COLUMNS`)."""
    statement = (
        select(*RECORDING_COLUMNS)
        .join(Call, CALL_OF_RECORDING)
        .where(
            *_in_window(Recording.started_at, window), *filters.criteria(), *call_criteria(status=status, search=search)
        )
    )
    return _newest_first(statement, Recording.started_at, Recording.id, after)


# Text messages


def sms_statement(
    window: Window,
    *,
    number: str | int | None = None,
    direction: str | None = None,
    search: Search | None = None,
    after: tuple[datetime, int] | None = None,
) -> Select:
    """The messages sent in `window` on a number (E.164 or id) and in a direction, newest first
    (rows of `SMS_COLUMNS`). `search` looks in the counterpart's number, the text and the id."""
    statement = select(*SMS_COLUMNS).where(*_in_window(SmsMessage.sent_at, window))
    if isinstance(number, str):
        e164 = normalize_e164(number, field="number")
        statement = statement.where(
            SmsMessage.phone_number_id.in_(select(PhoneNumber.id).where(PhoneNumber.e164 == e164))
        )
    elif number is not None:
        statement = statement.where(SmsMessage.phone_number_id == number)
    if direction is not None:
        if direction not in SMS_DIRECTIONS:
            raise ValidationError(f"direction is one of {', '.join(SMS_DIRECTIONS)}.", field="direction")
        statement = statement.where(SmsMessage.direction == direction)
    if search is not None:
        statement = statement.where(
            search.criterion(numbers=(SmsMessage.counterpart,), texts=(SmsMessage.text, SmsMessage.external_id))
        )
    return _newest_first(statement, SmsMessage.sent_at, SmsMessage.id, after)


# Reading


def first_rows(statement: Select, limit: int) -> list[Row]:
    """The first `limit` rows of a list statement."""
    return list(db.session.execute(statement.limit(limit)))


def all_rows(statement: Select, batch: int = EXPORT_BATCH) -> Iterator[Sequence[Row]]:
    """Every row of a list statement, in batches, read through a server-side cursor where the
    database has one: memory stays flat however many rows there are."""
    result = db.session.execute(statement.execution_options(yield_per=batch))
    yield from result.partitions()


def number_e164s(number_ids: Iterable[int] | None = None) -> dict[int, str]:
    """E.164 of the scope's numbers (`number_ids` of them, or all it sees): lists show numbers by
    E.164 without joining every row to its number."""
    statement = select(PhoneNumber.id, PhoneNumber.e164)
    if number_ids is not None:
        statement = statement.where(PhoneNumber.id.in_(set(number_ids)))
    return dict(db.session.execute(statement).tuples().all())
