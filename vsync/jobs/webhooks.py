"""The webhook jobs: the drain of an org's received events, queued by name by
`vsync.services.webhooks.process.wake`, and the minute's sweep of stalled events that `rq cron` runs
(`vsync/jobs/cron.py`). The work is `vsync.services.webhooks.process`'s.
"""

from __future__ import annotations

from vsync.jobs import job_context
from vsync.services.webhooks import process
from vsync.tenancy import tenant


def process_received_events(org_id: int) -> None:
    """The drain job: apply the org's due `received` events; safe to run twice, or two at once."""
    with job_context(), tenant(org_id):
        process.drain(org_id)


def wake_stalled() -> int:
    """The sweep job: wake every org whose events wait with no drain coming; returns how many."""
    with job_context():
        return process.wake_stalled_orgs()
