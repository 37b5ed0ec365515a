"""your account: a person's name, the device of each session, and outbox messages of no org

Revision ID: 0022_account_profile
Revises: 0021_callsui_call_durations
Create Date: 2026-12-06 05:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0022_account_profile"
down_revision = "0021_callsui_call_durations"
branch_labels = None
depends_on = None

BEFORE = "kind IN ('digest', 'alert', 'invitation', 'test', 'invoice', 'support', 'sync_failure')"
AFTER = "kind IN ('digest', 'alert', 'invitation', 'test', 'invoice', 'support', 'sync_failure', 'account')"


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("user_sessions") as batch:
        batch.add_column(sa.Column("device_hash", sa.String(length=64), nullable=True))
        batch.create_index("ix_user_sessions_user_device", ["user_id", "device_hash"], unique=False)
    with op.batch_alter_table("outbound_emails") as batch:
        batch.drop_constraint(op.f("ck_outbound_emails_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_outbound_emails_kind"), AFTER)
        batch.alter_column("org_id", existing_type=sa.Integer(), nullable=True)
        batch.create_check_constraint(
            op.f("ck_outbound_emails_org_unless_account"), "org_id IS NOT NULL OR kind = 'account'"
        )


def downgrade():
    op.execute("DELETE FROM outbound_emails WHERE kind = 'account'")
    with op.batch_alter_table("outbound_emails") as batch:
        batch.drop_constraint(op.f("ck_outbound_emails_org_unless_account"), type_="check")
        batch.alter_column("org_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint(op.f("ck_outbound_emails_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_outbound_emails_kind"), BEFORE)
    with op.batch_alter_table("user_sessions") as batch:
        batch.drop_index("ix_user_sessions_user_device")
        batch.drop_column("device_hash")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("name")
