"""Replaying stored webhook events: the console's and the CLI's way to apply events again, after a
number was assigned or a bug fixed. Replayed events go through the same drain as new ones
(`vsync.services.webhooks.process`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from vsync.extensions import db
from vsync.models import WebhookEvent
from vsync.models.operations import FAILED, IGNORED, PROCESSED, RECEIVED, UNMATCHED
from vsync.services import audit
from vsync.services.webhooks.process import wake
from vsync.tenancy import TenancyError, current_org_id

log = logging.getLogger(__name__)

REPLAYABLE = (RECEIVED, PROCESSED, IGNORED, UNMATCHED, FAILED)
REPLAYABLE_FAILED = (RECEIVED, FAILED, UNMATCHED)


def replay_events(org_id: int, *, failed_only: bool = False, since: datetime | None = None) -> int:
    """Queue stored events of the org in the caller's tenant scope for processing again.

    All stored events (not rejected requests), or with `failed_only` those not applied yet: failed,
    on a number not assigned to the org (assign it, then replay), or still `received` (waiting for a
    retry, or not applied yet because their drain was lost with its worker or never queued). `since`
    limits to events received from then on. Each replayed event is due at once with its attempts
    counted afresh. Applying an event again changes nothing it already did, and a drain applies each
    event once, so a replay is safe to repeat. Returns how many events were queued.
    """
    if current_org_id() != org_id:
        raise TenancyError(f"Replay the events of org {org_id} inside that org's tenant scope.")
    query = select(WebhookEvent).where(WebhookEvent.status.in_(REPLAYABLE_FAILED if failed_only else REPLAYABLE))
    if since is not None:
        query = query.where(WebhookEvent.received_at >= since)
    events = db.session.scalars(query.order_by(WebhookEvent.id)).all()
    for event in events:
        event.status, event.error, event.retry_at, event.attempts = RECEIVED, None, None, 0
    audit.record(
        "webhook_events.replayed",
        org_id=org_id,
        summary=f"{len(events)} event(s) queued again"
        + (" (failed only)" if failed_only else "")
        + (f" received since {since.isoformat()}" if since else ""),
    )
    db.session.commit()
    if events:
        wake(org_id)
    log.info("org %s: %s webhook event(s) queued for replay", org_id, len(events))
    return len(events)
