"""rollups: a day grain beside the hourly one, and an index that reads one grain and kind

`call_rollups.grain` is `hour` for the existing rows and `day` for the sums of a UTC day's hour rows,
which also keep their calls per UTC hour of the day (`hour_00` .. `hour_23`).
The index on (number, hour) becomes (number, grain, kind, hour), and the kinds the KPI engine reads
get partial indexes of their own (number, grain, hour): the engine reads one kind's spans of a
number, and no longer walks the other kinds' rows to find them.

Backfill: no day rows are made here. Every hour that has rollups is marked stale instead, so every
figure stays exact (read from rows) until `flask rollups rebuild` makes the days (a deploy step, see
the README, as after 0023).

Revision ID: 0024_rollups_days
Revises: 0023_rollups_hourly
Create Date: 2026-12-06 08:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0024_rollups_days"
down_revision = "0023_rollups_hourly"
branch_labels = None
depends_on = None

BY_HOUR = [f"hour_{hour:02}" for hour in range(24)]
KINDS = ("calls", "agents", "rings")  # the kinds with an index of their own


def upgrade():
    with op.batch_alter_table("call_rollups") as batch:
        batch.add_column(sa.Column("grain", sa.String(length=4), server_default="hour", nullable=False))
        for column in BY_HOUR:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
        batch.drop_index("ix_call_rollups_number_hour")
        batch.create_index("ix_call_rollups_number_grain_kind", ["phone_number_id", "grain", "kind", "hour_start"])
    for kind in KINDS:
        where = sa.text(f"kind = '{kind}'")
        op.create_index(
            f"ix_call_rollups_{kind}",
            "call_rollups",
            ["phone_number_id", "grain", "hour_start"],
            postgresql_where=where,
            sqlite_where=where,
        )
    op.execute(
        "INSERT INTO rollup_dirty (phone_number_id, hour_start) "
        "SELECT DISTINCT phone_number_id, hour_start FROM call_rollups"
    )


def downgrade():
    op.execute("DELETE FROM call_rollups WHERE grain = 'day'")
    for kind in KINDS:
        op.drop_index(f"ix_call_rollups_{kind}", table_name="call_rollups")
    with op.batch_alter_table("call_rollups") as batch:
        batch.drop_index("ix_call_rollups_number_grain_kind")
        batch.create_index("ix_call_rollups_number_hour", ["phone_number_id", "hour_start"])
        for column in BY_HOUR:
            batch.drop_column(column)
        batch.drop_column("grain")
