"""support: `tickets`, their `ticket_messages` and `number_requests`

Org-owned rows; messages and number requests belong to their ticket's org.

Revision ID: 0013_support
Revises: 0012_notifications
Create Date: 2026-12-06 02:26:30

"""

import sqlalchemy as sa
from alembic import op

revision = "0013_support"
down_revision = "0012_notifications"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("opened_by_user_id", sa.Integer(), nullable=True),
        sa.Column("opened_by", sa.String(length=300), nullable=False),
        sa.Column("assignee_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "category IN ('question', 'problem', 'numbers', 'billing', 'other')", name=op.f("ck_tickets_category")
        ),
        sa.CheckConstraint("kind IN ('support', 'number_request')", name=op.f("ck_tickets_kind")),
        sa.CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name=op.f("ck_tickets_priority")),
        sa.CheckConstraint(
            "status IN ('open', 'waiting_on_org', 'waiting_on_platform', 'resolved', 'closed')",
            name=op.f("ck_tickets_status"),
        ),
        sa.ForeignKeyConstraint(
            ["assignee_user_id"], ["users.id"], name=op.f("fk_tickets_assignee_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["opened_by_user_id"], ["users.id"], name=op.f("fk_tickets_opened_by_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_tickets_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tickets_opened_by_user_id"), ["opened_by_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_status"), ["status"], unique=False)

    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=300), nullable=False),
        sa.Column("from_platform", sa.Boolean(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("from_platform OR NOT internal", name=op.f("ck_ticket_messages_internal_from_platform")),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["users.id"], name=op.f("fk_ticket_messages_author_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_messages_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_ticket_messages_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_messages")),
    )
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_messages_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_messages_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "number_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("area_code", sa.String(length=20), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("e164", sa.String(length=16), nullable=True),
        sa.Column("to_org_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=300), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("assignment_id", sa.Integer(), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("action <> 'move' OR to_org_id IS NOT NULL", name=op.f("ck_number_requests_move_names_org")),
        sa.CheckConstraint("action IN ('new', 'release', 'move')", name=op.f("ck_number_requests_action")),
        sa.CheckConstraint(
            "decision <> 'refused' OR refusal_reason IS NOT NULL", name=op.f("ck_number_requests_refused_with_reason")
        ),
        sa.CheckConstraint("decision IN ('pending', 'approved', 'refused')", name=op.f("ck_number_requests_decision")),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["number_assignments.id"],
            name=op.f("fk_number_requests_assignment_id_number_assignments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"],
            ["users.id"],
            name=op.f("fk_number_requests_decided_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_number_requests_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_number_requests_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["to_org_id"],
            ["organizations.id"],
            name=op.f("fk_number_requests_to_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_requests")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_number_requests_ticket_id")),
    )
    with op.batch_alter_table("number_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_number_requests_org_id"), ["org_id"], unique=False)


def downgrade():
    with op.batch_alter_table("number_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_number_requests_org_id"))

    op.drop_table("number_requests")
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_messages_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_messages_org_id"))

    op.drop_table("ticket_messages")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_status"))
        batch_op.drop_index(batch_op.f("ix_tickets_org_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_opened_by_user_id"))

    op.drop_table("tickets")
