"""webhook events wait for their next attempt: `retry_at`

The receiver's events are applied by a drain of the org's `received` events rather than one queued
job each; an event whose attempt failed stays `received` until `retry_at`, the time of its next
attempt, so the drain that meets it early passes it by.

Revision ID: 0008_webhook_retry_at
Revises: 0007_call_ring_times
Create Date: 2026-11-22 01:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008_webhook_retry_at"
down_revision = "0007_call_ring_times"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
