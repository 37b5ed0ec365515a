"""sync failure emails: outbox messages of kind `sync_failure`, and platform admins' own preferences

Revision ID: 0020_notifyapi_sync_failures
Revises: 0019_alerts_kinds_webhooks
Create Date: 2026-12-06 05:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0020_notifyapi_sync_failures"
down_revision = "0019_alerts_kinds_webhooks"
branch_labels = None
depends_on = None

BEFORE = "kind IN ('digest', 'alert', 'invitation', 'test', 'invoice', 'support')"
AFTER = "kind IN ('digest', 'alert', 'invitation', 'test', 'invoice', 'support', 'sync_failure')"


def _kinds(allowed: str) -> None:
    """Replace the CHECK on `kind` (in batch mode: SQLite rebuilds the table to change a constraint)."""
    with op.batch_alter_table("outbound_emails") as batch:
        batch.drop_constraint(op.f("ck_outbound_emails_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_outbound_emails_kind"), allowed)


def upgrade():
    _kinds(AFTER)
    op.create_table(
        "platform_notification_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_platform_notification_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_notification_preferences")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_platform_notification_preferences_user_id_key")),
    )


def downgrade():
    op.drop_table("platform_notification_preferences")
    op.execute("DELETE FROM outbound_emails WHERE kind = 'sync_failure'")
    _kinds(BEFORE)
