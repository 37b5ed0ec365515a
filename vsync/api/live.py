"""GET /api/v1/orgs/{org}/live: the org's floor now, from the webhook events of the last hours.

Each agent extension's state (available, ringing, on a call since when and on which number, or
unknown when its last event is older than `VSYNC_LIVE_STALE_MINUTES`), the calls waiting with the
longest current wait, and the calls in progress (`vsync.services.live`). An agent sees their own
extension and calls only: the tenant scope narrows what the floor reads.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, jsonify

from vsync.api import bp
from vsync.api.access import requires
from vsync.models.types import utcnow
from vsync.services.live import floor_state


@bp.get("/orgs/<org>/live")
@requires(scope="read")
def live_floor(org: str):
    staleness = timedelta(minutes=current_app.config["VSYNC_LIVE_STALE_MINUTES"])
    return jsonify(floor_state(g.org_access.org_id, now=utcnow(), staleness=staleness).as_dict())
