"""GET /api/v1/orgs/{org}/live: the org's floor now, from the webhook events of the last hours.

Each agent extension's state (available, ringing, on a call since when and on which number, or
unknown when its last event is older than `VSYNC_LIVE_STALE_MINUTES`, offline for an agent with no
event in the window), the calls waiting with the
longest current wait, and the calls in progress (`vsync.services.live`). An agent sees their own
state and calls, and the queue as figures only (`calls_waiting`, `longest_wait_seconds`).
"""

from __future__ import annotations

import marshmallow as ma
from flask import g
from marshmallow import fields

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.schemas import UtcDateTimeField
from vsync.services.live import floor_now


class AgentStateSchema(ma.Schema):
    extension = fields.String(required=True)
    name = fields.String(allow_none=True, required=True)
    state = fields.String(
        required=True,
        metadata={
            "description": "available, ringing, on_call, unknown (not heard of lately) or offline (an agent of "
            "the org not heard of in the window)"
        },
    )
    since = UtcDateTimeField(allow_none=True, required=True)
    call_id = fields.String(allow_none=True, required=True)
    number = fields.String(allow_none=True, required=True, metadata={"description": "The other party."})


class LiveCallSchema(ma.Schema):
    call_id = fields.String(required=True)
    direction = fields.String(required=True)
    from_number = fields.String(allow_none=True, required=True)
    to_number = fields.String(allow_none=True, required=True)
    started_at = UtcDateTimeField(required=True)
    answered_at = UtcDateTimeField(allow_none=True, required=True)
    agent_extension = fields.String(allow_none=True, required=True)
    seconds = fields.Float(required=True, metadata={"description": "Waiting or talking so far."})


class FloorSchema(ma.Schema):
    as_of = UtcDateTimeField(required=True)
    agents = fields.List(fields.Nested(AgentStateSchema), required=True)
    waiting = fields.List(fields.Nested(LiveCallSchema), required=True)
    in_progress = fields.List(fields.Nested(LiveCallSchema), required=True)
    stale_calls = fields.Integer(
        required=True,
        metadata={"description": "Open calls whose last event is older than the staleness limit, not shown."},
    )
    calls_waiting = fields.Integer(
        required=True,
        metadata={
            "description": "Inbound calls waiting now (for an agent, the org's queue, whose calls are not listed)."
        },
    )
    longest_wait_seconds = fields.Float(allow_none=True, required=True)


@bp.get("/orgs/<org>/live")
@requires(scope="read")
@bp.response(200, FloorSchema)
def live_floor(org: str):
    """The floor now

    Agents' states, calls waiting and calls in progress, from the webhook events of the last hours.
    """
    return floor_now(g.org_access.org_id).as_dict()
