"""two-factor sign-in: TOTP secrets and recovery codes, an org's requirement, the reset

Per user a TOTP secret, its last used time-step and recovery codes; an org setting that requires
two-factor sign-in; the two-factor reset as a reason a session ends.

Revision ID: 0018_twofactor_totp
Revises: 0017_forms_org_names
Create Date: 2026-12-06 05:20:00.000000

"""

from contextlib import contextmanager

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


@contextmanager
def _organizations():
    """A batch on `organizations`. SQLite changes the table by copying it, and its reflection cannot
    read the unique index on `lower(name)` to copy it too, so the index is made again after the batch
    (on PostgreSQL it is there already)."""
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        yield batch_op
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_organizations_name_lower ON organizations (lower(name))")


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
    with _organizations() as batch_op:
        batch_op.add_column(sa.Column("require_two_factor", sa.Boolean(), server_default=sa.false(), nullable=False))
    _check("user_sessions", "ended_reason", REASONS_AFTER)


def downgrade():
    op.execute("UPDATE user_sessions SET ended_reason = 'password_reset' WHERE ended_reason = 'two_factor_reset'")
    _check("user_sessions", "ended_reason", REASONS_BEFORE)
    with _organizations() as batch_op:
        batch_op.drop_column("require_two_factor")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("two_factor_recovery_hashes")
        batch_op.drop_column("two_factor_last_step")
        batch_op.drop_column("two_factor_enabled_at")
        batch_op.drop_column("two_factor_secret")
