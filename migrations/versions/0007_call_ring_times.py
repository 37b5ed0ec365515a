"""calls keep their ring time; the KPI engine's covering index carries it

A call's ring time (first Ringing to the last StopRinging, or to the first Completed when no
extension stopped ringing) is stored on the call by the webhook processing, so the KPI engine
aggregates calls alone instead of joining every unanswered call's events. Existing calls get it from
their stored events, with types matched as `vsync.mightycall.webhook_events.event_kind` matches
them (stored events may predate the `kind` column: its backfill says `other`).

Revision ID: 0007_call_ring_times
Revises: 0006_password_links
Create Date: 2026-11-21 22:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0007_call_ring_times"
down_revision = "0006_password_links"
branch_labels = None
depends_on = None

OLD_COLUMNS = ["direction", "status", "duration_ms", "answered_at", "agent_extension", "integration_id", "external_id"]
NEW_COLUMNS = [
    "direction",
    "status",
    "duration_ms",
    "answered_at",
    "ring_ms",
    "agent_extension",
    "integration_id",
    "external_id",
]

_STOP = "lower(e.event_type) LIKE '%stopringing%'"
_RINGING = f"lower(e.event_type) LIKE '%ringing%' AND NOT {_STOP}"
_COMPLETED = (
    "lower(e.event_type) LIKE '%completed%' AND lower(e.event_type) NOT LIKE '%ringing%' "
    "AND lower(e.event_type) NOT LIKE '%connected%'"
)
_RING_START = f"min(CASE WHEN {_RINGING} THEN e.occurred_at END)"
_RING_END = (
    f"coalesce(max(CASE WHEN {_STOP} THEN e.occurred_at END), min(CASE WHEN {_COMPLETED} THEN e.occurred_at END))"
)

# PostgreSQL: one grouped pass over the events. SQLite: a lookup per call through ix_call_events_call.
BACKFILL = {
    "postgresql": f"""
        UPDATE calls SET ring_ms = CAST(round(
            (date_part('epoch', r.ring_end) - date_part('epoch', r.ring_start)) * 1000) AS BIGINT)
        FROM (SELECT e.integration_id, e.call_external_id, {_RING_START} AS ring_start, {_RING_END} AS ring_end
              FROM call_events e GROUP BY e.integration_id, e.call_external_id) r
        WHERE r.integration_id = calls.integration_id AND r.call_external_id = calls.external_id
          AND r.ring_start IS NOT NULL AND r.ring_end IS NOT NULL""",
    "sqlite": f"""
        UPDATE calls SET ring_ms = (
            SELECT CAST(round((julianday({_RING_END}) - julianday({_RING_START})) * 86400000) AS INTEGER)
            FROM call_events e
            WHERE e.integration_id = calls.integration_id AND e.call_external_id = calls.external_id)""",
}


def upgrade():
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ring_ms", sa.BigInteger(), nullable=True))
    op.execute(BACKFILL[op.get_bind().dialect.name])
    op.drop_index("ix_calls_number_started", table_name="calls")
    op.create_index(
        "ix_calls_number_started", "calls", ["phone_number_id", "started_at"], postgresql_include=NEW_COLUMNS
    )


def downgrade():
    op.drop_index("ix_calls_number_started", table_name="calls")
    op.create_index(
        "ix_calls_number_started", "calls", ["phone_number_id", "started_at"], postgresql_include=OLD_COLUMNS
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("ring_ms")
