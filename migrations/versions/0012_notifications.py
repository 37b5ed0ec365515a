"""notifications: outbox, preferences, alert rules and events, business hours

The outbox's unique `dedupe_key` and the one open firing per alert rule are what keep two workers or
two cron processes from sending a message twice.

Revision ID: 0012_notifications
Revises: 0011_scrub_webhook_api_keys
Create Date: 2026-12-06 02:14:45.241322

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_notifications"
down_revision = "0011_scrub_webhook_api_keys"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('service_level', 'silence')", name=op.f("ck_alert_rules_kind")),
        sa.CheckConstraint("threshold >= 0 AND threshold <= 1", name=op.f("ck_alert_rules_threshold")),
        sa.CheckConstraint("window_minutes > 0", name=op.f("ck_alert_rules_window_minutes")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_alert_rules_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("org_id", "kind", name=op.f("uq_alert_rules_org_id_kind")),
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_rules_org_id"), ["org_id"], unique=False)

    op.create_table(
        "business_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("closes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "opens >= 0 AND opens < closes AND closes <= 1440", name=op.f("ck_business_hours_opens_before_closes")
        ),
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name=op.f("ck_business_hours_weekday")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_business_hours_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_hours")),
        sa.UniqueConstraint("org_id", "weekday", name=op.f("uq_business_hours_org_id_weekday")),
    )
    with op.batch_alter_table("business_hours", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_business_hours_org_id"), ["org_id"], unique=False)

    op.create_table(
        "notification_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_notification_preferences_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notification_preferences_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_preferences")),
        sa.UniqueConstraint("org_id", "user_id", "key", name=op.f("uq_notification_preferences_org_id_user_id_key")),
    )
    with op.batch_alter_table("notification_preferences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_preferences_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notification_preferences_user_id"), ["user_id"], unique=False)

    op.create_table(
        "outbound_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column(
            "context", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('digest', 'alert', 'invitation', 'test')", name=op.f("ck_outbound_emails_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed', 'unknown')", name=op.f("ck_outbound_emails_status")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_outbound_emails_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_outbound_emails_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_emails")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbound_emails_dedupe_key")),
    )
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.create_index("ix_outbound_emails_org_created", ["org_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbound_emails_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbound_emails_user_id"), ["user_id"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_value", sa.Float(), nullable=True),
        sa.Column("resolved_value", sa.Float(), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_alert_events_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name=op.f("fk_alert_events_rule_id_alert_rules"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_events_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_events_rule_id"), ["rule_id"], unique=False)
        batch_op.create_index(
            "uq_alert_events_one_open",
            ["rule_id"],
            unique=True,
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )


def downgrade():
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alert_events_one_open",
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_alert_events_rule_id"))
        batch_op.drop_index(batch_op.f("ix_alert_events_org_id"))

    op.drop_table("alert_events")
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_emails_user_id"))
        batch_op.drop_index(batch_op.f("ix_outbound_emails_org_id"))
        batch_op.drop_index("ix_outbound_emails_org_created")

    op.drop_table("outbound_emails")
    with op.batch_alter_table("notification_preferences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_preferences_user_id"))
        batch_op.drop_index(batch_op.f("ix_notification_preferences_org_id"))

    op.drop_table("notification_preferences")
    with op.batch_alter_table("business_hours", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_business_hours_org_id"))

    op.drop_table("business_hours")
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_rules_org_id"))

    op.drop_table("alert_rules")
