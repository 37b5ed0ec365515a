"""KPI reads on a streaming replica (`DATABASE_REPLICA_URL`), and when to leave it for the primary.

The metrics API routes and the console's dashboard run their figures inside `kpi_reads()`: while it
is active, the request's own session sends its reads to the replica's engine (`extensions.Session`),
so the tenant scope entered on that session, and every tenancy hook, narrows what the replica
answers exactly as it would on the primary. ORM and Core writes (INSERT, UPDATE, DELETE) and flushes
stay on the primary; text SQL goes to the replica, so a write in text inside the block would fail there.

The replica is used only while it is usable (`usable`): reachable within the connect timeout, and
either caught up (it has replayed every WAL record it received, from a WAL receiver that is
streaming) or with its last replayed transaction at most `VSYNC_REPLICA_MAX_LAG_SECONDS` old. The
replay age alone would not do: on a primary with no writes it grows while the replica is perfectly
current. The verdict is kept per process for `CHECK_SECONDS`, so a replica that is down costs one
connect timeout per process and period, not one per request. A database that is not in recovery (a
replica URL that names a primary) is always usable. Without `DATABASE_REPLICA_URL` nothing changes.

A replica that fails after the check (it stops mid-request) fails that request; the next check
sends reads to the primary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from vsync.config import REPLICA_BIND
from vsync.extensions import READ_ENGINE_KEY, db

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0

_STATE_SQL = text(
    "SELECT pg_is_in_recovery(), now(), pg_last_xact_replay_timestamp(), "
    "pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), "
    "EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')"
)


@dataclass(frozen=True)
class ReplicaState:
    """What a replica says of itself: whether it is in recovery, its clock, when the last transaction
    it replayed committed on the primary, whether it has replayed all it received, and whether its
    WAL receiver is streaming from the primary."""

    in_recovery: bool
    now: datetime
    replayed_at: datetime | None
    replayed_all: bool
    streaming: bool

    @property
    def caught_up(self) -> bool:
        """A primary, or a replica streaming from its primary that has replayed everything it received."""
        return not self.in_recovery or (self.replayed_all and self.streaming)

    @property
    def lag_seconds(self) -> float | None:
        """Seconds since the last replayed transaction committed (None: never replayed one)."""
        return None if self.replayed_at is None else max(0.0, (self.now - self.replayed_at).total_seconds())


def usable(state: ReplicaState, max_lag_seconds: float) -> bool:
    """Whether KPI reads may run on a database in `state`: a primary, a caught-up replica, or one whose
    last replayed transaction is at most `max_lag_seconds` old."""
    if state.caught_up:
        return True
    lag = state.lag_seconds
    return lag is not None and lag <= max_lag_seconds


def replica_state(engine: Engine) -> ReplicaState:
    """Ask the database behind `engine` for its `ReplicaState`."""
    with engine.connect() as conn:
        in_recovery, now, replayed_at, replayed_all, streaming = conn.execute(_STATE_SQL).one()
    return ReplicaState(bool(in_recovery), now, replayed_at, bool(replayed_all), bool(streaming))


_verdicts: dict[str, tuple[float, bool]] = {}
_verdicts_lock = threading.Lock()


def forget_checks() -> None:
    """Drop the cached verdicts (tests, and an operator's shell after fixing a replica)."""
    with _verdicts_lock:
        _verdicts.clear()


def _check(engine: Engine, max_lag_seconds: float) -> bool:
    """Whether the replica behind `engine` is usable now, asked at most once per `CHECK_SECONDS`."""
    key = str(engine.url)
    clock = time.monotonic()
    with _verdicts_lock:
        cached = _verdicts.get(key)
    if cached is not None and clock - cached[0] < CHECK_SECONDS:
        return cached[1]
    try:
        state = replica_state(engine)
        verdict = usable(state, max_lag_seconds)
        if not verdict:
            log.warning(
                "Replica lags %s s (bound %s s): KPI reads go to the primary.", state.lag_seconds, max_lag_seconds
            )
    except DBAPIError as exc:
        log.warning("Replica unreachable (%s): KPI reads go to the primary.", exc.orig or exc)
        verdict = False
    with _verdicts_lock:
        _verdicts[key] = (clock, verdict)
    return verdict


def read_engine() -> Engine | None:
    """The replica's engine when `DATABASE_REPLICA_URL` is set and the replica is usable, else None."""
    if not current_app.config.get("DATABASE_REPLICA_URL"):
        return None
    engine = db.engines[REPLICA_BIND]
    return engine if _check(engine, current_app.config["VSYNC_REPLICA_MAX_LAG_SECONDS"]) else None


@contextmanager
def kpi_reads() -> Iterator[Engine | None]:
    """Run the reads of the block on the replica when it is usable (yields its engine, or None when
    they stay on the primary). Pending changes are flushed to the primary first, so the block never
    flushes onto the replica."""
    session = db.session()
    engine = read_engine()
    if engine is None or READ_ENGINE_KEY in session.info:
        yield None
        return
    session.flush()
    session.info[READ_ENGINE_KEY] = engine
    try:
        yield engine
    finally:
        session.info.pop(READ_ENGINE_KEY, None)
