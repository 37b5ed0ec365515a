"""support emails: outbox messages of kind `support` (ticket notifications)

Revision ID: 0016_support_emails
Revises: 0015_invoice_emails
Create Date: 2026-12-06 03:50:00.000000

"""

from alembic import op

revision = "0016_support_emails"
down_revision = "0015_invoice_emails"
branch_labels = None
depends_on = None

BEFORE = "kind IN ('digest', 'alert', 'invitation', 'test', 'invoice')"
AFTER = "kind IN ('digest', 'alert', 'invitation', 'test', 'invoice', 'support')"


def _kinds(allowed: str) -> None:
    """Replace the CHECK on `kind` (in batch mode: SQLite rebuilds the table to change a constraint)."""
    with op.batch_alter_table("outbound_emails") as batch:
        batch.drop_constraint(op.f("ck_outbound_emails_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_outbound_emails_kind"), allowed)


def upgrade():
    _kinds(AFTER)


def downgrade():
    op.execute("DELETE FROM outbound_emails WHERE kind = 'support'")
    _kinds(BEFORE)
