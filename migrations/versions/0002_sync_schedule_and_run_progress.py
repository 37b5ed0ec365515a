"""sync schedule and run progress

Server defaults fill the new NOT NULL columns of existing rows.

Revision ID: 4a14f57c5b61
Revises: 37a5cb88f271
Create Date: 2026-11-21 14:06:22.090951

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "4a14f57c5b61"
down_revision = "37a5cb88f271"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "sync_schedule",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default="{}",
            )
        )

    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("skipped")
        batch_op.drop_column("progress")

    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_column("sync_schedule")
