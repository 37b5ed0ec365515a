"""invoice emails: an outbox message of kind `invoice` names the invoice or credit note it carries

Revision ID: 0015_invoice_emails
Revises: 0014_billing
Create Date: 2026-12-06 03:55:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0015_invoice_emails"
down_revision = "0014_billing"
branch_labels = None
depends_on = None

KINDS_BEFORE = "kind IN ('digest', 'alert', 'invitation', 'test')"
KINDS_AFTER = "kind IN ('digest', 'alert', 'invitation', 'test', 'invoice')"


def upgrade():
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invoice_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbound_emails_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_outbound_emails_invoice_id_billing_invoices"),
            "billing_invoices",
            ["invoice_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.drop_constraint(batch_op.f("ck_outbound_emails_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_outbound_emails_kind"), KINDS_AFTER)


def downgrade():
    op.execute("DELETE FROM outbound_emails WHERE kind = 'invoice'")
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_outbound_emails_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_outbound_emails_kind"), KINDS_BEFORE)
        batch_op.drop_constraint(batch_op.f("fk_outbound_emails_invoice_id_billing_invoices"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_outbound_emails_invoice_id"))
        batch_op.drop_column("invoice_id")
