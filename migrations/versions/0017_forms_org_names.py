"""org names unique regardless of case: an existing same-named org gets its slug added to its name

Revision ID: 0017_forms_org_names
Revises: 0016_support_emails
Create Date: 2026-12-06 05:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0017_forms_org_names"
down_revision = "0016_support_emails"
branch_labels = None
depends_on = None


def upgrade():
    # The oldest org keeps its name; each later one of the same name (ignoring case) becomes "Name (slug)".
    op.execute(
        "UPDATE organizations SET name = substr(name, 1, 190 - length(slug)) || ' (' || slug || ')' "
        "WHERE EXISTS (SELECT 1 FROM organizations AS older "
        "WHERE lower(older.name) = lower(organizations.name) AND older.id < organizations.id)"
    )
    op.create_index("uq_organizations_name_lower", "organizations", [sa.text("lower(name)")], unique=True)


def downgrade():
    op.drop_index("uq_organizations_name_lower", table_name="organizations")
