"""webhook receiver: signing secrets, raw event headers and attempts, call merge columns

Webhook events keep the headers that matter and count processing attempts; a rejected request is
kept without a guid. Calls learn when the caller stopped waiting and when events were applied;
`synced_at` empty means the sync has not read the call yet (it was first seen in a webhook).
Call events carry the meaning of their type (`kind`), backfilled as `other` for existing rows.

Revision ID: 9c1e5d7a2b40
Revises: 0003_integration_keys_of_own_org
Create Date: 2026-11-21 20:00:00.000000

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "9c1e5d7a2b40"
down_revision = "0003_integration_keys_of_own_org"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
OLD_STATUSES = "status IN ('received', 'processed', 'failed', 'ignored')"
NEW_STATUSES = "status IN ('received', 'processed', 'failed', 'ignored', 'unmatched', 'rejected')"
OPEN_CALLS = "ended_at IS NULL AND events_at IS NOT NULL"


def upgrade():
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_signing_secrets_encrypted", sa.Text(), nullable=True))

    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("headers", JSON, nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.alter_column("guid", existing_type=sa.String(length=64), nullable=True)
        batch_op.drop_constraint(op.f("ck_webhook_events_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_webhook_events_status"), NEW_STATUSES)
        batch_op.create_index("ix_webhook_events_integration_received", ["integration_id", "received_at"], unique=False)

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wait_ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("events_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("synced_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.create_index(
            "ix_calls_open_started",
            ["started_at"],
            unique=False,
            postgresql_where=sa.text(OPEN_CALLS),
            sqlite_where=sa.text(OPEN_CALLS),
        )

    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=20), nullable=False, server_default="other"))
        batch_op.create_index("ix_call_events_extension_occurred", ["extension", "occurred_at"], unique=False)


def downgrade():
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index("ix_call_events_extension_occurred")
        batch_op.drop_column("kind")

    op.execute("UPDATE calls SET synced_at = COALESCE(events_at, started_at) WHERE synced_at IS NULL")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_calls_open_started", postgresql_where=sa.text(OPEN_CALLS), sqlite_where=sa.text(OPEN_CALLS)
        )
        batch_op.alter_column("synced_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_column("events_at")
        batch_op.drop_column("wait_ended_at")

    op.execute("DELETE FROM webhook_events WHERE guid IS NULL OR status IN ('unmatched', 'rejected')")
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_integration_received")
        batch_op.drop_constraint(op.f("ck_webhook_events_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_webhook_events_status"), OLD_STATUSES)
        batch_op.alter_column("guid", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("attempts")
        batch_op.drop_column("headers")

    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_column("webhook_signing_secrets_encrypted")
