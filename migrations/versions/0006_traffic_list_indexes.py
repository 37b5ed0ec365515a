"""keyset indexes for the calls, recordings and SMS lists

Each list pages newest first on (time, id): with an index on exactly those columns a page is one
backward range scan that starts at its cursor, whatever its depth, and the tenant criterion filters
the rows it passes.

Revision ID: 0006_traffic_list_indexes
Revises: 0005_metrics_indexes
Create Date: 2026-11-22 10:00:00

"""

from alembic import op

revision = "0006_traffic_list_indexes"
down_revision = "0005_metrics_indexes"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_calls_started_id", "calls", ["started_at", "id"]),
    ("ix_recordings_started_id", "recordings", ["started_at", "id"]),
    ("ix_sms_messages_sent_id", "sms_messages", ["sent_at", "id"]),
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade():
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
