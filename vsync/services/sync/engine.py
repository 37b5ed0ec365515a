"""The sync engine: pull one kind of MightyCall data for one integration into vsync, page by page.

The job `vsync.jobs.sync.run_sync_job` calls `run_sync` inside the run's org's tenant scope. Each page
is written (bulk upsert, `vsync.services.sync.ingest`) and the run's progress and heartbeat are
updated in one transaction, so a worker killed mid-run leaves whole pages behind, never half of one,
and the next run (which re-reads from the cursor, minus an overlap) converges without duplicates.
The cursor advances after each completed day chunk, never past a chunk that did not finish.

A run that succeeds is exact: after reading a day of calls the job asks MightyCall how many calls
the day holds, reads the day again while that count says more (calls arrived at its head while it
was paged), and fails the run (`SyncIncomplete`, retried like a provider error) when the count never
confirms what was read, rather than report success with calls missing. Text messages have no count:
their paging ends only on an empty page (see the client).

Failures: errors that a retry can help (`MightyCallError.retryable`, timeouts, a lost database
connection) are raised so RQ retries the job (`RETRY`); the failure callback records each attempt on
the run, and marks it failed when RQ gives up. Errors a retry cannot help (bad credentials, a 404)
fail the run at once with the provider's reason. Without Redis the same job runs inline, with the
same number of attempts (`vsync.queue`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from vsync.extensions import db
from vsync.mightycall import MightyCallError
from vsync.models import Integration, SyncRun
from vsync.models.integrations import ACTIVE
from vsync.models.operations import FAILED, QUEUED, RUNNING, SUCCEEDED
from vsync.models.types import utcnow
from vsync.services.integrations import client_for
from vsync.services.notifications import sync_failures
from vsync.services.sync.ingest import NumberBook, WriteCounts, write_agents, write_calls, write_sms
from vsync.services.sync.plan import JOB_TIMEOUT, advance_cursor
from vsync.tenancy import current_org_id

log = logging.getLogger(__name__)

CHUNK = timedelta(days=1)
SMS_PAGE_SIZE = 200
EXTRA_PASSES = 2  # re-reads of a chunk when the provider's total says calls arrived while paging
COUNT_ASKS = 3  # how often a day's count is asked for before a missing or impossible one fails the run


def day_chunks(start: datetime, end: datetime):
    """[start, end) cut into consecutive windows of at most a day, oldest first."""
    while start < end:
        yield start, min(start + CHUNK, end)
        start += CHUNK


class SyncIncomplete(RuntimeError):
    """MightyCall's count of a window's calls never confirmed the calls read, so the run must not
    succeed. Retried like a provider error: calls still arriving, or a count answered badly, settle."""

    retryable = True


def describe(exc: BaseException) -> str:
    """An error text a person can act on, never a secret (client errors are written that way)."""
    if isinstance(exc, (MightyCallError, SyncIncomplete)):
        return str(exc)
    name = type(exc).__name__
    if name == "JobTimeoutException":
        return f"The sync ran longer than {JOB_TIMEOUT // 3600} h and was stopped; sync a narrower window."
    return f"Unexpected {name}: {str(exc)[:300]}"


class RunAbandoned(RuntimeError):
    """The run was marked failed by someone else while this worker was still on it."""


class SyncEngine:
    """Runs one sync run; expects the org's tenant scope to be entered."""

    def __init__(self, run: SyncRun, integration: Integration):
        self.run, self.integration = run, integration
        self.book = NumberBook(org_id=integration.org_id, integration_id=integration.id)
        self.client = client_for(integration)

    def execute(self) -> None:
        try:
            getattr(self, f"_sync_{self.run.kind}")()
        finally:
            self.client.close()

    def still_running(self) -> None:
        """Lock the run's row and check it is still ours: a run the reaper gave up on (its worker
        seemed dead but was only slow) must not go on writing, nor later claim success."""
        status = db.session.execute(
            select(SyncRun.status).where(SyncRun.id == self.run.id).with_for_update()
        ).scalar_one()
        if status != RUNNING:
            raise RunAbandoned(f"sync run {self.run.id} is {status}; this worker stops")

    def _page_done(self, fetched: int, counts: WriteCounts, progress: float | None = None) -> None:
        self.still_running()
        run = self.run
        run.pages += 1
        run.fetched += fetched
        run.inserted += counts.inserted
        run.updated += counts.updated
        run.skipped += counts.skipped
        if progress is not None:
            run.progress = max(run.progress or 0.0, min(progress, 1.0))
        run.heartbeat_at = utcnow()
        db.session.commit()
        log.debug(
            "run %s page %s: %s fetched, %s new, %s updated",
            run.id,
            run.pages,
            fetched,
            counts.inserted,
            counts.updated,
        )

    def _windowed(self, kind: str, sync_chunk) -> None:
        start, end = self.run.window_start, self.run.window_end
        assert start is not None and end is not None, f"a {kind} run is planned with its window (plan._plan)"
        span = (end - start).total_seconds() or 1.0
        for chunk_start, chunk_end in day_chunks(start, end):
            sync_chunk(chunk_start, chunk_end)
            self.run.progress = max(self.run.progress or 0.0, (chunk_end - start).total_seconds() / span)
            advance_cursor(self.integration, kind, chunk_start, chunk_end)
            db.session.commit()

    def _sync_calls(self) -> None:
        self._windowed("calls", self._calls_chunk)

    def _calls_chunk(self, chunk_start: datetime, chunk_end: datetime) -> None:
        """Read the chunk until MightyCall's count of it matches what was read (see the module)."""
        seen: set[str] = set()
        invalid = 0
        window = f"{chunk_start.isoformat()} to {chunk_end.isoformat()}"
        for attempt in range(1 + EXTRA_PASSES):
            pages = self.client.iter_call_pages(
                chunk_start, chunk_end, page_size=current_app.config["VSYNC_SYNC_PAGE_SIZE"]
            )
            for page in pages:
                stored = write_calls(self.integration.account_id, page, self.book)
                seen.update(r.external_id for r in page)
                self._page_done(len(page), stored)
            invalid = max(invalid, pages.skipped_invalid)
            read = len(seen) + invalid
            total = self._count_calls(chunk_start, chunk_end, read)
            if total is None:
                raise SyncIncomplete(
                    f"MightyCall gave no usable count of the calls from {window} ({COUNT_ASKS} asks: missing, or "
                    f"fewer than the {read} read), so the sync cannot confirm it read them all. It is tried again; "
                    "if this persists, check MightyCall's status."
                )
            if total == read:
                break
            if attempt < EXTRA_PASSES:
                log.info(
                    "run %s: MightyCall reports %s calls in %s but %s were read; reading it again",
                    self.run.id,
                    total,
                    window,
                    read,
                )
        else:
            raise SyncIncomplete(
                f"MightyCall reports {total} calls from {window} but {read} could be read in {1 + EXTRA_PASSES} "
                "passes: calls are arriving faster than they can be read, or MightyCall miscounts them. Sync again "
                "later; what was read is kept."
            )
        self.run.skipped += invalid

    def _count_calls(self, chunk_start: datetime, chunk_end: datetime, read: int) -> int | None:
        """MightyCall's count of the chunk's calls, asked up to `COUNT_ASKS` times; None when it never
        gave one, or only ones below what was just read (which a count taken after reading cannot be)."""
        for _ in range(COUNT_ASKS):
            total = self.client.count_calls(chunk_start, chunk_end)
            if total is not None and total >= read:
                return total
        return None

    def _sync_sms(self) -> None:
        self._windowed("sms", self._sms_chunk)

    def _sms_chunk(self, chunk_start: datetime, chunk_end: datetime) -> None:
        pages = self.client.iter_sms_pages(chunk_start, chunk_end, page_size=SMS_PAGE_SIZE)
        for page in pages:
            stored = write_sms(self.integration.account_id, page, self.book)
            self._page_done(len(page), stored)
        self.run.skipped += pages.skipped_invalid

    def _sync_numbers(self) -> None:
        numbers = self.client.phone_numbers()
        before = self.book.discovered
        self.book.resolve(item["number"] for item in numbers)
        self._page_done(
            len(numbers),
            WriteCounts(inserted=self.book.discovered - before, skipped=len(numbers) - len(self.book.ids)),
            progress=1.0,
        )

    def _sync_agents(self) -> None:
        team = self.client.team()
        named = [(item.get("extension"), item.get("name")) for item in team]
        stored = write_agents(self.integration.account_id, named)
        stored.skipped = sum(1 for ext, _ in named if not ext)
        self._page_done(len(team), stored, progress=1.0)


def run_sync(run_id: int) -> str:
    """Run the sync run `run_id` to its end; expects its org's tenant scope to be entered. Safe to run
    twice: a run that already finished is left alone. Returns the outcome (the run's final status,
    `missing` or `abandoned`); raises the errors a retry can help, after rolling back the page they hit."""
    run = db.session.get(SyncRun, run_id)
    if run is None:
        log.warning("sync run %s not found in org %s", run_id, current_org_id())
        return "missing"
    if run.status in (SUCCEEDED, FAILED):
        log.info("sync run %s already %s", run_id, run.status)
        return run.status
    integration = db.session.get(Integration, run.integration_id)
    if integration is None or integration.status != ACTIVE:
        return _finish(run, FAILED, "The integration was disabled or removed before the sync started.")
    run.status, run.heartbeat_at = RUNNING, utcnow()
    run.started_at = run.started_at or run.heartbeat_at
    db.session.commit()
    log.info("sync run %s (%s, integration %s) started", run_id, run.kind, integration.id)
    try:
        engine = SyncEngine(run, integration)
        engine.execute()
        engine.still_running()
    except RunAbandoned as exc:
        db.session.rollback()
        log.warning("%s", exc)
        return "abandoned"
    except (MightyCallError, SyncIncomplete) as exc:
        db.session.rollback()
        if exc.retryable:
            raise
        return _finish(db.session.get_one(SyncRun, run_id), FAILED, describe(exc))
    except BaseException:
        db.session.rollback()
        raise
    run = db.session.get_one(SyncRun, run_id)  # found above; the rollbacks only expired it
    run.progress = 1.0
    log.info("sync run %s succeeded: %s fetched, %s new, %s updated", run_id, run.fetched, run.inserted, run.updated)
    return _finish(run, SUCCEEDED, None)


def _finish(run: SyncRun, status: str, error: str | None) -> str:
    """End the run; a failure for good also decides its emails (one per failure streak), committed with it."""
    run.status, run.error, run.finished_at = status, error, utcnow()
    if error:
        log.warning("sync run %s %s: %s", run.id, status, error)
    if status == FAILED:
        sync_failures.notify_failed_run(run)
    db.session.commit()
    return status


def record_attempt(run_id: int, exc: BaseException, will_retry: bool) -> None:
    """Record a failed attempt of the run (in its org's tenant scope): queued again with the error
    and one more retry counted, or, with no retry left, failed for good. A finished run is left alone."""
    run = db.session.get(SyncRun, run_id)
    if run is None or run.status in (SUCCEEDED, FAILED):
        return
    if will_retry:
        run.status, run.retries = QUEUED, run.retries + 1
        run.error = f"Attempt {run.retries} failed, retrying: {describe(exc)}"
        log.warning("sync run %s: %s", run_id, run.error)
        db.session.commit()
    else:
        _finish(run, FAILED, describe(exc))
