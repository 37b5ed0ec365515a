"""Syncing MightyCall data into vsync, in three modules:

- `plan`: starting syncs (the one operation every edge and the scheduler call), windows, cursors,
  reaping runs whose worker died; it queues each run's job by name (`vsync.queue`);
- `engine`: running one run, day chunk by day chunk and page by page, counting, classifying
  failures and writing progress; called by the job `vsync.jobs.sync.run_sync_job`;
- `ingest`: the bulk, idempotent writes of provider rows and the merge rules, shared with webhook
  processing (`vsync.services.webhooks.process`).

The edges import what they need from here; only jobs import the engine.
"""

from vsync.services.sync.plan import (
    ALL_KINDS,
    WINDOWED_KINDS,
    cursor_of,
    reap_stale_runs,
    start_sync,
    start_syncs,
)

__all__ = ["ALL_KINDS", "WINDOWED_KINDS", "cursor_of", "reap_stale_runs", "start_sync", "start_syncs"]
