"""one-time set-password links on users

A user added without a password gets a link to choose one; only the SHA-256 of its token is kept,
with its expiry and the moment it was used (so a used link is refused as used, not as unknown).

Revision ID: 0006_password_links
Revises: 0005_metrics_indexes
Create Date: 2026-11-21 22:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0006_password_links"
down_revision = "0006_traffic_list_indexes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("password_token_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("password_token_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_users_password_token_hash"), ["password_token_hash"])


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_password_token_hash"), type_="unique")
        batch_op.drop_column("password_token_used_at")
        batch_op.drop_column("password_token_expires_at")
        batch_op.drop_column("password_token_hash")
