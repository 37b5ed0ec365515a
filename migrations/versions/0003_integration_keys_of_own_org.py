"""org-owned rows reference an integration of their own org

Agents, sync runs and webhook events reference an integration by (org_id, integration_id), against
a unique (org_id, id) on integrations, so a row can never point at another organisation's
integration, whatever code writes it.

Revision ID: 0003_integration_keys_of_own_org
Revises: 4a14f57c5b61
Create Date: 2026-11-21 20:55:00

"""

from alembic import op

revision = "0003_integration_keys_of_own_org"
down_revision = "4a14f57c5b61"
branch_labels = None
depends_on = None

CHILDREN = ("agents", "sync_runs", "webhook_events")


def upgrade():
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_integrations_org_id_id", ["org_id", "id"])
    for table in CHILDREN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_integration_id_integrations", type_="foreignkey")
            batch_op.create_foreign_key(
                f"fk_{table}_org_id_integrations",
                "integrations",
                ["org_id", "integration_id"],
                ["org_id", "id"],
                ondelete="CASCADE",
            )


def downgrade():
    for table in CHILDREN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_org_id_integrations", type_="foreignkey")
            batch_op.create_foreign_key(
                f"fk_{table}_integration_id_integrations",
                "integrations",
                ["integration_id"],
                ["id"],
                ondelete="CASCADE",
            )
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_integrations_org_id_id", type_="unique")
