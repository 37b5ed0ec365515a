"""covering indexes for the KPI engine

The KPI engine aggregates a window's calls of the org's numbers; with these columns in
`ix_calls_number_started` PostgreSQL answers from the index alone (an index-only scan), and ring
times come from `ix_call_events_call` alone. SQLite ignores INCLUDE: there the indexes are rebuilt as
they were.

Revision ID: 0005_metrics_indexes
Revises: 9c1e5d7a2b40
Create Date: 2026-11-21 20:30:00

"""

from alembic import op

revision = "0005_metrics_indexes"
down_revision = "9c1e5d7a2b40"
branch_labels = None
depends_on = None

CALL_COLUMNS = ["direction", "status", "duration_ms", "answered_at", "agent_extension", "integration_id", "external_id"]
EVENT_COLUMNS = ["event_type", "extension", "phone_number_id"]


def upgrade():
    op.drop_index("ix_calls_number_started", table_name="calls")
    op.create_index(
        "ix_calls_number_started", "calls", ["phone_number_id", "started_at"], postgresql_include=CALL_COLUMNS
    )
    op.drop_index("ix_call_events_call", table_name="call_events")
    op.create_index(
        "ix_call_events_call",
        "call_events",
        ["integration_id", "call_external_id", "occurred_at"],
        postgresql_include=EVENT_COLUMNS,
    )


def downgrade():
    op.drop_index("ix_call_events_call", table_name="call_events")
    op.create_index("ix_call_events_call", "call_events", ["integration_id", "call_external_id", "occurred_at"])
    op.drop_index("ix_calls_number_started", table_name="calls")
    op.create_index("ix_calls_number_started", "calls", ["phone_number_id", "started_at"])
