"""sessions the server can end: `user_sessions`; set-password links bound to the account's state

A signed-in session becomes a row (the cookie holds a random token, the row its SHA-256), which
sign-out, a password reset, deactivation and the rest end on the server. A set-password link keeps
the hash of the account's state when it was made (`users.password_token_state`) and works only while
that state holds. Links made before this revision have no state and are refused as no longer valid:
the admin makes a new one.

Revision ID: 0010_user_sessions
Revises: 0009_provider_accounts
Create Date: 2026-11-23 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0010_user_sessions"
down_revision = "0009_provider_accounts"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.String(length=30), nullable=True),
        sa.CheckConstraint(
            "ended_reason IN ('signed_out', 'signed_out_everywhere', 'password_set', 'password_reset', "
            "'deactivated', 'no_organisation')",
            name=op.f("ck_user_sessions_ended_reason"),
        ),
        sa.CheckConstraint(
            "(ended_at IS NULL) = (ended_reason IS NULL)", name=op.f("ck_user_sessions_ended_with_reason")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_token_state", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_token_state")

    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))

    op.drop_table("user_sessions")
