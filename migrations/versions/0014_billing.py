"""billing: plans, subscriptions, invoices, credit notes, payments, invoice numbers and locks

Plans are versioned; invoices and credit notes have their lines and payments; invoice numbers come
from gapless counters; billing settings per org; billing locks.

Revision ID: 0014_billing
Revises: 0013_support
Create Date: 2026-12-06 02:26:42.193615

"""

import sqlalchemy as sa
from alembic import op

revision = "0014_billing"
down_revision = "0013_support"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "billing_invoice_counters",
        sa.Column("series", sa.String(length=4), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", "year", name=op.f("pk_billing_invoice_counters")),
    )
    op.create_table(
        "billing_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("monthly_fee", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("included_minutes", sa.Integer(), nullable=False),
        sa.Column("included_sms", sa.Integer(), nullable=False),
        sa.Column("included_numbers", sa.Integer(), nullable=False),
        sa.Column("minute_price", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("sms_price", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("number_price", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("rounding", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rounding IN ('second', 'minute')", name=op.f("ck_billing_plans_rounding")),
        sa.CheckConstraint(
            "included_minutes >= 0 AND included_sms >= 0 AND included_numbers >= 0",
            name=op.f("ck_billing_plans_allowances"),
        ),
        sa.CheckConstraint(
            "monthly_fee >= 0 AND minute_price >= 0 AND sms_price >= 0 AND number_price >= 0",
            name=op.f("ck_billing_plans_prices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_plans")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_billing_plans_code_version")),
    )
    op.create_table(
        "billing_invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("subtotal", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("tax_rate", sa.Numeric(precision=6, scale=4), nullable=False),
        sa.Column("tax", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("paid", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("credited", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("credits_invoice_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('invoice', 'credit_note')", name=op.f("ck_billing_invoices_kind")),
        sa.CheckConstraint("status IN ('draft', 'open', 'paid', 'void')", name=op.f("ck_billing_invoices_status")),
        sa.ForeignKeyConstraint(
            ["credits_invoice_id"],
            ["billing_invoices.id"],
            name=op.f("fk_billing_invoices_credits_invoice_id_billing_invoices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_billing_invoices_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_billing_invoices_number")),
    )
    with op.batch_alter_table("billing_invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_invoices_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "uq_billing_invoices_org_month",
            ["org_id", "period_start"],
            unique=True,
            postgresql_where=sa.text("kind = 'invoice'"),
            sqlite_where=sa.text("kind = 'invoice'"),
        )

    op.create_table(
        "billing_locks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name=op.f("ck_billing_locks_period")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_billing_locks_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_locks")),
    )
    with op.batch_alter_table("billing_locks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_locks_org_id"), ["org_id"], unique=False)

    op.create_table(
        "billing_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tax_rate", sa.Numeric(precision=6, scale=4), nullable=False),
        sa.Column("contacts", sa.Text(), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("tax_rate >= 0 AND tax_rate < 1", name=op.f("ck_billing_settings_tax_rate")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_billing_settings_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_settings")),
        sa.UniqueConstraint("org_id", name=op.f("uq_billing_settings_org_id")),
    )
    with op.batch_alter_table("billing_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_settings_org_id"), ["org_id"], unique=False)

    op.create_table(
        "billing_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("ends_on IS NULL OR ends_on > starts_on", name=op.f("ck_billing_subscriptions_period")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_billing_subscriptions_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["billing_plans.id"],
            name=op.f("fk_billing_subscriptions_plan_id_billing_plans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_subscriptions")),
    )
    with op.batch_alter_table("billing_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_subscriptions_org_id"), ["org_id"], unique=False)

    op.create_table(
        "billing_invoice_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('fee', 'minutes', 'sms', 'numbers', 'adjustment', 'credit')",
            name=op.f("ck_billing_invoice_lines_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoices.id"],
            name=op.f("fk_billing_invoice_lines_invoice_id_billing_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_billing_invoice_lines_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoice_lines")),
    )
    with op.batch_alter_table("billing_invoice_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_invoice_lines_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoice_lines_org_id"), ["org_id"], unique=False)

    op.create_table(
        "billing_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_billing_payments_amount")),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoices.id"],
            name=op.f("fk_billing_payments_invoice_id_billing_invoices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_billing_payments_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_payments")),
    )
    with op.batch_alter_table("billing_payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_payments_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_payments_org_id"), ["org_id"], unique=False)


def downgrade():
    with op.batch_alter_table("billing_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_payments_org_id"))
        batch_op.drop_index(batch_op.f("ix_billing_payments_invoice_id"))

    op.drop_table("billing_payments")
    with op.batch_alter_table("billing_invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_invoice_lines_org_id"))
        batch_op.drop_index(batch_op.f("ix_billing_invoice_lines_invoice_id"))

    op.drop_table("billing_invoice_lines")
    with op.batch_alter_table("billing_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_subscriptions_org_id"))

    op.drop_table("billing_subscriptions")
    with op.batch_alter_table("billing_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_settings_org_id"))

    op.drop_table("billing_settings")
    with op.batch_alter_table("billing_locks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_locks_org_id"))

    op.drop_table("billing_locks")
    with op.batch_alter_table("billing_invoices", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_billing_invoices_org_month",
            postgresql_where=sa.text("kind = 'invoice'"),
            sqlite_where=sa.text("kind = 'invoice'"),
        )
        batch_op.drop_index(batch_op.f("ix_billing_invoices_org_id"))

    op.drop_table("billing_invoices")
    op.drop_table("billing_plans")
    op.drop_table("billing_invoice_counters")
