"""rollups: exact hourly rollups of calls per number, the stale-hour log and its triggers

`call_rollups` holds each (number, UTC hour)'s calls summed by what the KPI figures split by;
`rollup_dirty` names the hours whose rollups are stale. Triggers on `calls` and `call_events` add a
stale hour for every insert, delete and relevant update, whoever writes (statement-level with
transition tables on PostgreSQL, row-level on SQLite), so the KPI engine reads a stale hour's rows.

Backfill: every hour that already has calls or events is marked stale, so every figure stays exact
(read from rows) until `flask rollups rebuild` makes their rollups (a deploy step, see the README).

Revision ID: 0023_rollups_hourly
Revises: 0022_account_profile
Create Date: 2026-12-06 05:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0023_rollups_hourly"
down_revision = "0022_account_profile"
branch_labels = None
depends_on = None

# What a call's rollup depends on; an update changing none of these leaves its hour as it was.
CALL_COLUMNS = (
    "phone_number_id",
    "started_at",
    "direction",
    "status",
    "duration_ms",
    "answered_at",
    "ring_ms",
    "agent_extension",
    "account_id",
    "external_id",
)
EVENT_COLUMNS = ("phone_number_id", "call_started_at", "event_type", "extension", "account_id", "call_external_id")

_PG_HOUR = "date_trunc('hour', {0} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
_SQLITE_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {0})"


def _pg_changed(columns) -> str:
    return " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in columns)


def _pg_triggers() -> list[str]:
    calls_hour, events_hour = _PG_HOUR.format("started_at"), _PG_HOUR.format("call_started_at")
    # An event marks its own hour and its call's (they differ only when the event is filed elsewhere).
    call_of = (
        "SELECT c.phone_number_id, {hour} FROM {rows} r JOIN calls c "
        "ON c.account_id = r.account_id AND c.external_id = r.call_external_id"
    ).format
    return [
        f"""
        CREATE FUNCTION vsync_calls_stale_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            INSERT INTO rollup_dirty (phone_number_id, hour_start, txid)
            SELECT DISTINCT phone_number_id, {calls_hour}, txid_current() FROM new_rows;
          ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO rollup_dirty (phone_number_id, hour_start, txid)
            SELECT DISTINCT phone_number_id, {calls_hour}, txid_current() FROM old_rows;
          ELSE
            INSERT INTO rollup_dirty (phone_number_id, hour_start, txid)
            SELECT DISTINCT number_id, {_PG_HOUR.format("at")}, txid_current() FROM (
              SELECT o.phone_number_id AS number_id, o.started_at AS at FROM old_rows o JOIN new_rows n ON n.id = o.id
              WHERE {_pg_changed(CALL_COLUMNS)}
              UNION ALL
              SELECT n.phone_number_id, n.started_at FROM old_rows o JOIN new_rows n ON n.id = o.id
              WHERE {_pg_changed(CALL_COLUMNS)}
            ) changed;
          END IF;
          RETURN NULL;
        END $$
        """,
        f"""
        CREATE FUNCTION vsync_call_events_stale_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            INSERT INTO rollup_dirty (phone_number_id, hour_start, txid)
            SELECT DISTINCT number_id, hour, txid_current() FROM (
              SELECT phone_number_id AS number_id, {events_hour} AS hour FROM new_rows
              UNION {call_of(hour=_PG_HOUR.format("c.started_at"), rows="new_rows")}) marked;
          ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO rollup_dirty (phone_number_id, hour_start, txid)
            SELECT DISTINCT number_id, hour, txid_current() FROM (
              SELECT phone_number_id AS number_id, {events_hour} AS hour FROM old_rows
              UNION {call_of(hour=_PG_HOUR.format("c.started_at"), rows="old_rows")}) marked;
          ELSE
            INSERT INTO rollup_dirty (phone_number_id, hour_start, txid)
            SELECT DISTINCT number_id, hour, txid_current() FROM (
              SELECT o.phone_number_id AS number_id, {_PG_HOUR.format("o.call_started_at")} AS hour
              FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_pg_changed(EVENT_COLUMNS)}
              UNION
              SELECT n.phone_number_id, {_PG_HOUR.format("n.call_started_at")}
              FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_pg_changed(EVENT_COLUMNS)}
              UNION {call_of(hour=_PG_HOUR.format("c.started_at"), rows="new_rows")}
              WHERE r.id IN (SELECT n.id FROM old_rows o JOIN new_rows n ON n.id = o.id
                             WHERE {_pg_changed(EVENT_COLUMNS)})) marked;
          END IF;
          RETURN NULL;
        END $$
        """,
        *(
            f"CREATE TRIGGER {table}_stale_rollups_{op_name.lower()} AFTER {op_name} ON {table} "
            f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION vsync_{table}_stale_rollups()"
            for table in ("calls", "call_events")
            for op_name, refs in (
                ("INSERT", "NEW TABLE AS new_rows"),
                ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                ("DELETE", "OLD TABLE AS old_rows"),
            )
        ),
    ]


def _sqlite_triggers() -> list[str]:
    def mark(row: str, number: str, at: str) -> str:
        return (
            f"INSERT INTO rollup_dirty (phone_number_id, hour_start) "
            f"VALUES ({row}.{number}, {_SQLITE_HOUR.format(f'{row}.{at}')});"
        )

    def mark_call_of(row: str) -> str:
        return (
            f"INSERT INTO rollup_dirty (phone_number_id, hour_start) SELECT c.phone_number_id, "
            f"{_SQLITE_HOUR.format('c.started_at')} FROM calls c "
            f"WHERE c.account_id = {row}.account_id AND c.external_id = {row}.call_external_id;"
        )

    def changed(columns) -> str:
        return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)

    return [
        f"CREATE TRIGGER calls_stale_rollups_insert AFTER INSERT ON calls BEGIN "
        f"{mark('NEW', 'phone_number_id', 'started_at')} END",
        f"CREATE TRIGGER calls_stale_rollups_update AFTER UPDATE ON calls WHEN {changed(CALL_COLUMNS)} BEGIN "
        f"{mark('OLD', 'phone_number_id', 'started_at')} {mark('NEW', 'phone_number_id', 'started_at')} END",
        f"CREATE TRIGGER calls_stale_rollups_delete AFTER DELETE ON calls BEGIN "
        f"{mark('OLD', 'phone_number_id', 'started_at')} END",
        f"CREATE TRIGGER call_events_stale_rollups_insert AFTER INSERT ON call_events BEGIN "
        f"{mark('NEW', 'phone_number_id', 'call_started_at')} {mark_call_of('NEW')} END",
        f"CREATE TRIGGER call_events_stale_rollups_update AFTER UPDATE ON call_events "
        f"WHEN {changed(EVENT_COLUMNS)} BEGIN "
        f"{mark('OLD', 'phone_number_id', 'call_started_at')} {mark('NEW', 'phone_number_id', 'call_started_at')} "
        f"{mark_call_of('NEW')} END",
        f"CREATE TRIGGER call_events_stale_rollups_delete AFTER DELETE ON call_events BEGIN "
        f"{mark('OLD', 'phone_number_id', 'call_started_at')} {mark_call_of('OLD')} END",
    ]


TRIGGERS = [f"{t}_stale_rollups_{o}" for t in ("calls", "call_events") for o in ("insert", "update", "delete")]


def upgrade():
    op.create_table(
        "call_rollups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("direction", sa.String(length=12), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("agent_extension", sa.String(length=20), nullable=True),
        sa.Column("ring_account_id", sa.Integer(), nullable=True),
        sa.Column("ring_extension", sa.String(length=20), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("voicemail", sa.Integer(), nullable=False),
        sa.Column("talk_n", sa.Integer(), nullable=False),
        sa.Column("talk_ms", sa.BigInteger(), nullable=False),
        sa.Column("answer_n", sa.Integer(), nullable=False),
        sa.Column("answer_ms", sa.BigInteger(), nullable=False),
        sa.Column("answer_max_ms", sa.BigInteger(), nullable=True),
        sa.Column("ring_n", sa.Integer(), nullable=False),
        sa.Column("ring_max_ms", sa.BigInteger(), nullable=True),
        sa.Column("abandon_n", sa.Integer(), nullable=False),
        sa.Column("answer_edge_1", sa.Integer(), nullable=True),
        sa.Column("answer_edge_2", sa.Integer(), nullable=True),
        sa.Column("answer_edge_3", sa.Integer(), nullable=True),
        sa.Column("within_1", sa.Integer(), nullable=False),
        sa.Column("within_2", sa.Integer(), nullable=False),
        sa.Column("within_3", sa.Integer(), nullable=False),
        sa.Column("ring_edge_1", sa.Integer(), nullable=True),
        sa.Column("ring_edge_2", sa.Integer(), nullable=True),
        sa.Column("ring_edge_3", sa.Integer(), nullable=True),
        sa.Column("short_1", sa.Integer(), nullable=False),
        sa.Column("short_2", sa.Integer(), nullable=False),
        sa.Column("short_3", sa.Integer(), nullable=False),
        sa.Column("phone_number_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["phone_number_id"],
            ["phone_numbers.id"],
            name=op.f("fk_call_rollups_phone_number_id_phone_numbers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_rollups")),
    )
    op.create_index("ix_call_rollups_number_hour", "call_rollups", ["phone_number_id", "hour_start"])
    op.create_table(
        "rollup_dirty",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("phone_number_id", sa.BigInteger(), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_dirty")),
    )
    op.create_index("ix_rollup_dirty_number_hour", "rollup_dirty", ["phone_number_id", "hour_start"])
    op.create_index(op.f("ix_rollup_dirty_txid"), "rollup_dirty", ["txid"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in _pg_triggers() if postgresql else _sqlite_triggers():
        op.execute(statement)
    hour = _PG_HOUR if postgresql else _SQLITE_HOUR
    op.execute(
        "INSERT INTO rollup_dirty (phone_number_id, hour_start) "
        f"SELECT DISTINCT phone_number_id, {hour.format('started_at')} FROM calls "
        f"UNION SELECT DISTINCT phone_number_id, {hour.format('call_started_at')} FROM call_events"
    )


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        table = "call_events" if name.startswith("call_events") else "calls"
        op.execute(f"DROP TRIGGER {name} ON {table}" if postgresql else f"DROP TRIGGER {name}")
    if postgresql:
        op.execute("DROP FUNCTION vsync_calls_stale_rollups()")
        op.execute("DROP FUNCTION vsync_call_events_stale_rollups()")
    op.drop_index(op.f("ix_rollup_dirty_txid"), table_name="rollup_dirty")
    op.drop_index("ix_rollup_dirty_number_hour", table_name="rollup_dirty")
    op.drop_table("rollup_dirty")
    op.drop_index("ix_call_rollups_number_hour", table_name="call_rollups")
    op.drop_table("call_rollups")
