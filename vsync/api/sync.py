"""POST /api/v1/orgs/{org}/sync, GET /api/v1/orgs/{org}/sync-runs and /sync-runs/{id}: starting syncs
of the org's MightyCall data and following them.

Starting goes through `vsync.services.sync.start_syncs`, as the CLI's `sync` does: a kind already
queued or running for the integration is joined (the same run comes back, `joined: true`), a
different backfill window while one runs is refused (409), and the run is queued for a worker (or
run inline without Redis) before the answer. Managers and up, and org keys with `write`, may start
syncs; everyone but agents may follow them.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate
from sqlalchemy import select

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.paging import newest_by_id
from vsync.api.schemas import Body, Instant, Query, UtcDateTimeField, page_of, page_params
from vsync.auth.permissions import request_org
from vsync.auth.principals import current_principal, user_id_of
from vsync.errors import NotFound
from vsync.extensions import db
from vsync.models import SyncRun
from vsync.models.orgs import MANAGER
from vsync.services import runs
from vsync.services.integrations import integration_for
from vsync.services.sync import ALL_KINDS, start_syncs

RunsQuery = Query.from_dict(page_params(), name="SyncRunsQuery")


class SyncRunSchema(ma.Schema):
    id = fields.Integer(required=True)
    integration_id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "numbers, agents, calls or sms."})
    trigger = fields.String(required=True, metadata={"description": "manual, backfill or scheduled."})
    status = fields.String(required=True, metadata={"description": "queued, running, succeeded or failed."})
    window_start = UtcDateTimeField(
        allow_none=True,
        required=True,
        metadata={"description": "null for numbers and agents, read as the account is now."},
    )
    window_end = UtcDateTimeField(allow_none=True, required=True)
    progress = fields.Float(required=True, metadata={"description": "Share of the window done, 0..1."})
    pages = fields.Integer(required=True)
    fetched = fields.Integer(required=True, metadata={"description": "Items received from MightyCall."})
    inserted = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    skipped = fields.Integer(required=True, metadata={"description": "Items that could not be stored."})
    retries = fields.Integer(required=True)
    error = fields.String(allow_none=True, required=True, metadata={"description": "Why it failed, for a person."})
    created_at = UtcDateTimeField(required=True)
    started_at = UtcDateTimeField(allow_none=True, required=True)
    finished_at = UtcDateTimeField(allow_none=True, required=True)
    duration_seconds = fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "Start to finish, or to now while it runs; null before it starts."},
    )


class StartedRunSchema(SyncRunSchema):
    joined = fields.Boolean(
        required=True,
        metadata={"description": "true: this kind was already queued or running, and that run is the answer."},
    )


StartedRuns = ma.Schema.from_dict(
    {"runs": fields.List(fields.Nested(StartedRunSchema), required=True)}, name="StartedRuns"
)


class SyncBody(Body):
    kinds = fields.List(
        fields.String(validate=validate.OneOf(ALL_KINDS)),
        load_default=list(ALL_KINDS),
        validate=validate.Length(1, len(ALL_KINDS)),
        metadata={"description": "Default: all, in the order numbers, agents, calls, sms.", "example": ["calls"]},
    )
    since = Instant(
        load_default=None,
        metadata={
            "description": "Start of a backfill of calls and sms; without it, each syncs from where the last "
            "sync ended.",
            "example": "2026-11-01T00:00:00Z",
        },
    )
    until = Instant(load_default=None, metadata={"description": "End of the backfill (default: a minute ago)."})
    integration = fields.Integer(
        load_default=None, metadata={"description": "The integration's id, when the org has several."}
    )


def run_json(run: SyncRun) -> dict:
    took = runs.duration(run)
    return {
        **{name: getattr(run, name) for name in SyncRunSchema._declared_fields if name != "duration_seconds"},
        "duration_seconds": None if took is None else round(took.total_seconds(), 3),
    }


@bp.post("/orgs/<org>/sync")
@requires(scope="write", role=MANAGER)
@bp.arguments(SyncBody)
@bp.response(202, StartedRuns)
def start_sync(args, org: str):
    """Start syncs, or join those under way

    One run per kind asked for, in the order given; a kind already queued or running is joined
    (`joined: true`). `since`/`until` make calls and sms a backfill of that window; numbers and
    agents take none. Follow the runs at `/sync-runs/{id}`.
    """
    integration = integration_for(request_org(), args["integration"])
    started = start_syncs(
        integration,
        args["kinds"],
        since=args["since"],
        until=args["until"],
        requested_by_user_id=user_id_of(current_principal()),
    )
    return {"runs": [{**run_json(run), "joined": joined} for run, joined in started]}


@bp.get("/orgs/<org>/sync-runs")
@requires(scope="read", role=MANAGER)
@bp.arguments(RunsQuery, location="query")
@bp.response(200, page_of(SyncRunSchema, "SyncRunsPage"))
def list_sync_runs(args, org: str):
    """The org's sync runs

    Newest first, with status, window, progress, counts, retries and error.
    """
    return newest_by_id(select(SyncRun), SyncRun.id, args, run_json)


@bp.get("/orgs/<org>/sync-runs/<int:run_id>")
@requires(scope="read", role=MANAGER)
@bp.response(200, SyncRunSchema)
def get_sync_run(org: str, run_id: int):
    """One sync run, as its worker last committed it

    Poll it to follow a run; another org's run is a 404.
    """
    run = db.session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"No sync run {run_id}.", field="run_id")
    return run_json(run)
