"""two-factor sign-in: a TOTP secret, its last used time-step and recovery codes per user; an org
setting that requires it; the two-factor reset as a reason a session ends

Revision ID: 0018_twofactor_totp
Revises: 0017_forms_org_names
Create Date: 2026-12-06 05:20:00.000000

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018_twofactor_totp"
down_revision = "0017_forms_org_names"
branch_labels = None
depends_on = None

REASONS_BEFORE = (
    "ended_reason IN ('signed_out', 'signed_out_everywhere', 'password_set', 'password_reset', "
    "'deactivated', 'no_organisation')"
)
REASONS_AFTER = (
    "ended_reason IN ('signed_out', 'signed_out_everywhere', 'password_set', 'password_reset', "
    "'deactivated', 'no_organisation', 'two_factor_reset')"
)


def _check(table: str, column: str, allowed: str) -> None:
    """Replace a CHECK of allowed values (in batch mode: SQLite rebuilds the table to change a constraint)."""
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
        batch.create_check_constraint(op.f(f"ck_{table}_{column}"), allowed)


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("two_factor_secret", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("two_factor_enabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("two_factor_last_step", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "two_factor_recovery_hashes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("require_two_factor", sa.Boolean(), server_default=sa.false(), nullable=False))
    _check("user_sessions", "ended_reason", REASONS_AFTER)


def downgrade():
    op.execute("UPDATE user_sessions SET ended_reason = 'password_reset' WHERE ended_reason = 'two_factor_reset'")
    _check("user_sessions", "ended_reason", REASONS_BEFORE)
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("require_two_factor")
    # SQLite drops a column by copying the table, and cannot reflect an index on an expression to copy
    # it too: the unique index on the names is made again (on PostgreSQL it is there already).
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_organizations_name_lower ON organizations (lower(name))")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("two_factor_recovery_hashes")
        batch_op.drop_column("two_factor_last_step")
        batch_op.drop_column("two_factor_enabled_at")
        batch_op.drop_column("two_factor_secret")
