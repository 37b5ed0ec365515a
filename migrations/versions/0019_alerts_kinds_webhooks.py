"""alerts: four more kinds, platform firings, the org's outbound alert webhook and its deliveries

An alert event names its kind and audience (`org` for an org's rule, `platform` for platform staff,
with no rule); one open firing per (org, audience, kind) replaces one per rule. A rule's threshold is
a fraction or a count, so it is only kept non-negative.

Revision ID: 0019_alerts_kinds_webhooks
Revises: 0018_twofactor_totp
Create Date: 2026-12-06 05:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0019_alerts_kinds_webhooks"
down_revision = "0018_twofactor_totp"
branch_labels = None
depends_on = None

KINDS = "kind IN ('service_level', 'silence', 'abandon_rate', 'missed_calls', 'sync_failing', 'webhook_silence')"
OLD_KINDS = "kind IN ('service_level', 'silence')"


def upgrade():
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_constraint(op.f("ck_alert_rules_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_alert_rules_kind"), KINDS)
        batch.drop_constraint(op.f("ck_alert_rules_threshold"), type_="check")
        batch.create_check_constraint(op.f("ck_alert_rules_threshold"), "threshold >= 0")

    with op.batch_alter_table("alert_events") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("audience", sa.String(length=10), server_default="org", nullable=False))
    op.execute(
        "UPDATE alert_events SET kind = (SELECT kind FROM alert_rules WHERE alert_rules.id = alert_events.rule_id)"
    )
    with op.batch_alter_table("alert_events") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=20), nullable=False)
        batch.alter_column("audience", existing_type=sa.String(length=10), server_default=None)
        batch.alter_column("rule_id", existing_type=sa.Integer(), nullable=True)
        batch.create_check_constraint(op.f("ck_alert_events_kind"), KINDS)
        batch.create_check_constraint(op.f("ck_alert_events_audience"), "audience IN ('org', 'platform')")
        batch.drop_index("uq_alert_events_one_open")
        batch.create_index(
            "uq_alert_events_one_open",
            ["org_id", "audience", "kind"],
            unique=True,
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )
        batch.create_index("ix_alert_events_fired", ["fired_at"], unique=False)

    op.create_table(
        "alert_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_alert_webhooks_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_webhooks")),
        sa.UniqueConstraint("org_id", name=op.f("uq_alert_webhooks_org_id")),
    )
    with op.batch_alter_table("alert_webhooks") as batch:
        batch.create_index(batch.f("ix_alert_webhooks_org_id"), ["org_id"], unique=False)

    op.create_table(
        "alert_webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'delivering', 'delivered', 'failed')",
            name=op.f("ck_alert_webhook_deliveries_status"),
        ),
        sa.CheckConstraint("state IN ('fired', 'resolved')", name=op.f("ck_alert_webhook_deliveries_state")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["alert_events.id"],
            name=op.f("fk_alert_webhook_deliveries_event_id_alert_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_alert_webhook_deliveries_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_webhook_deliveries")),
        sa.UniqueConstraint("event_id", "state", name=op.f("uq_alert_webhook_deliveries_event_id_state")),
    )
    with op.batch_alter_table("alert_webhook_deliveries") as batch:
        batch.create_index(batch.f("ix_alert_webhook_deliveries_event_id"), ["event_id"], unique=False)
        batch.create_index(batch.f("ix_alert_webhook_deliveries_org_id"), ["org_id"], unique=False)


def downgrade():
    op.drop_table("alert_webhook_deliveries")
    op.drop_table("alert_webhooks")
    op.execute("DELETE FROM alert_events WHERE audience = 'platform' OR kind NOT IN ('service_level', 'silence')")
    op.execute("DELETE FROM alert_rules WHERE kind NOT IN ('service_level', 'silence')")
    op.execute("UPDATE alert_rules SET threshold = 1 WHERE threshold > 1")
    with op.batch_alter_table("alert_events") as batch:
        batch.drop_index("ix_alert_events_fired")
        batch.drop_index("uq_alert_events_one_open")
        batch.create_index(
            "uq_alert_events_one_open",
            ["rule_id"],
            unique=True,
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )
        batch.drop_constraint(op.f("ck_alert_events_audience"), type_="check")
        batch.drop_constraint(op.f("ck_alert_events_kind"), type_="check")
        batch.alter_column("rule_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("audience")
        batch.drop_column("kind")
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_constraint(op.f("ck_alert_rules_threshold"), type_="check")
        batch.create_check_constraint(op.f("ck_alert_rules_threshold"), "threshold >= 0 AND threshold <= 1")
        batch.drop_constraint(op.f("ck_alert_rules_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_alert_rules_kind"), OLD_KINDS)
