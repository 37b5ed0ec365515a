"""CSV exports through PostgreSQL's `COPY (SELECT …) TO STDOUT WITH (FORMAT csv, HEADER)`.

A list's statement is narrowed to the current tenant scope by the same rewriter the session runs
(`vsync.tenancy.narrowed_select`), compiled for psycopg2 and its values rendered as literals by the
driver (`cursor.mogrify`), so nothing of the request reaches the SQL but as a quoted literal. COPY
bypasses the session's hooks: this module is reviewed for it.

The driver writes the COPY's output from a thread, a row at a time, into a buffered pipe: the rows
reach the pipe in chunks of `CHUNK_BYTES` without a line of Python per row, and the response reads
the pipe a chunk at a time. Memory stays flat for any size (a chunk in the buffer, one in the pipe,
one on its way to the client), and a slow client slows the COPY down (the writer waits on a full
pipe). A client that goes away cancels the statement. The SELECT runs under `statement_timeout`, and
with `work_mem` raised for its sort (`WORK_MEM`).

SQL that formats values as the Python export does: `iso_z` as `vsync.timeutil.isoformat_z`,
`seconds` as a float of milliseconds / 1000, `text_cell` as an empty cell for an empty text.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Float, Select, Text, case, cast, func, literal, null, select

from vsync.extensions import db
from vsync.tenancy import TenancyError, bind_processors, current_scope, narrowed_select, reviewed_sql

COPY_TIMEOUT_MS = 10 * 60 * 1000
CHUNK_BYTES = 256 * 1024
WORK_MEM = "64MB"  # for each sorting process of the COPY (PostgreSQL's default is 4MB)


def available() -> bool:
    """Whether the session's database runs COPY (PostgreSQL); SQLite keeps the Python export."""
    return db.session.get_bind().dialect.name == "postgresql"


def iso_z(column):
    """`2026-11-21T09:30:00Z`, with `.ffffff` when there are microseconds, like `isoformat_z`: one
    `to_char` with microseconds, `.000000` taken out (no other value ends so)."""
    utc = func.timezone(literal("UTC"), column)
    stamp = func.to_char(utc, literal('YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
    return func.replace(stamp, literal(".000000Z"), literal("Z"))


def seconds(milliseconds):
    """Milliseconds / 1000 written as Python writes the float (`12.0`, `12.5`, `0.001`)."""
    whole = cast(milliseconds // 1000, Text) + literal(".0")
    return case(
        (milliseconds.is_(None), null()),
        (milliseconds % 1000 == 0, whole),
        else_=cast(cast(milliseconds, Float) / cast(literal(1000), Float), Text),
    )


def text_cell(column):
    """An empty text as an empty cell, as the Python export writes it (COPY quotes an empty string)."""
    return func.nullif(column, literal(""))


def copy_sql(statement: Select) -> str:
    """The COPY of `statement` narrowed to the current scope, with its values as driver-quoted literals."""
    scope = current_scope()
    if scope is None:
        raise TenancyError("A COPY runs in a tenant scope or a platform bypass.")
    narrowed = narrowed_select(statement, scope)
    # The session's own dialect: it knows the server's settings (how a literal escapes a backslash).
    compiled = narrowed.compile(dialect=db.session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    processors = bind_processors(compiled)
    params = {key: processors[key](value) if key in processors else value for key, value in compiled.params.items()}
    raw = _dbapi_connection()
    with raw.cursor() as cursor:
        select_sql = cursor.mogrify(compiled.string, params).decode()
    return f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv, HEADER)"


def _dbapi_connection() -> Any:
    """The psycopg2 connection under the session's (COPY and `mogrify` are the driver's own)."""
    return db.session.connection().connection.dbapi_connection


def _widen(pipe_fd: int) -> None:
    """Let the pipe hold a whole chunk (Linux: 64 KB by default), so each read can take one; where
    the system refuses (another platform, or the user's pipe memory spent), the default serves."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(pipe_fd, fcntl.F_SETPIPE_SZ, CHUNK_BYTES)


def copy_csv(statement: Select, timeout_ms: int = COPY_TIMEOUT_MS) -> Iterator[bytes]:
    """The CSV of `statement` (header of its column labels, then its rows), streamed in chunks of at
    most `CHUNK_BYTES`."""
    sql = copy_sql(statement)
    connection = db.session.connection()
    settings = select(
        func.set_config("statement_timeout", str(int(timeout_ms)), True),
        func.set_config("extra_float_digits", "1", True),  # floats written as Python writes them
        # The sort of a large export spills to disk in fewer, longer runs: at 6.7 million rows the
        # export took 15 s instead of 17–18 (bench/README.md, csv_export). For this transaction only.
        func.set_config("work_mem", WORK_MEM, True),
    )
    connection.execute(reviewed_sql(settings))
    raw = _dbapi_connection()
    read_fd, write_fd = os.pipe()
    _widen(write_fd)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            # The driver writes a row at a time; the buffer writes them to the pipe a chunk at a time.
            with open(write_fd, "wb", buffering=CHUNK_BYTES) as sink, raw.cursor() as cursor:
                cursor.copy_expert(sql, sink)
        except BaseException as error:  # handed to the reader
            failure.append(error)

    thread = threading.Thread(target=run, name="csv-copy", daemon=True)
    thread.start()
    finished = False
    try:
        while chunk := os.read(read_fd, CHUNK_BYTES):
            yield chunk
        finished = True
    finally:
        if not finished:
            raw.cancel()
        os.close(read_fd)  # a writer waiting on the full pipe fails at once
        thread.join()
    if failure:
        raise failure[0]
