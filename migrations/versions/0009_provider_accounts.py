"""provider identity: one row per MightyCall account and provider id

A MightyCall account gets an identity (`provider_accounts`, a keyed fingerprint of its host and API
key, see `vsync.services.accounts`), and each integration points at its account. Calls, call events,
recordings, SMS and agents become the account's: unique per (account, MightyCall id) instead of per
integration, so two organisations' integrations of one account store one row per call.

Rows stored twice before (once per integration of a shared account) are merged into one: a call
keeps the sync's fields from a copy the sync read and the answer, wait and ring times and answering
agent from the copy webhook events reached (the merge rules of `vsync.jobs.ingest`); duplicate
events, recordings, SMS and agent names keep one copy. Call events are filed under their call's start
(`call_started_at`) from now on.

Downgrade gives each row the account's first integration; merged copies do not come back.

Revision ID: 0009_provider_accounts
Revises: 0008_webhook_retry_at
Create Date: 2026-12-05 22:35:15

"""

import sqlalchemy as sa
from alembic import op

from vsync import crypto
from vsync.services.accounts import account_identity

revision = "0009_provider_accounts"
down_revision = "0008_webhook_retry_at"
branch_labels = None
depends_on = None

PROVIDER_TABLES = ("calls", "call_events", "recordings", "sms_messages")
# (table, its provider key besides account_id)
KEYS = {
    "calls": "external_id",
    "call_events": "guid",
    "recordings": "call_external_id",
    "sms_messages": "external_id",
    "agents": "extension",
}
# Which copy of a duplicate stays (first by this order), for the tables other than calls.
KEEP = {
    "call_events": "id",
    "recordings": "id DESC",
    "sms_messages": "synced_at DESC, id",
    "agents": "updated_at DESC, id",
}
EVENT_FIELDS = ("answered_at", "wait_ended_at", "ring_ms", "events_at")


def _foreign_keys(on: bool):
    """SQLite rebuilds a table to change its keys, and may not drop a table others reference while
    it checks foreign keys: the rebuilds run with the checks off (outside a transaction, where SQLite
    lets the setting change), and the rows they copy keep every reference."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    _foreign_keys(False)
    op.create_table(
        "provider_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_accounts")),
        sa.UniqueConstraint("identity", name=op.f("uq_provider_accounts_identity")),
    )
    for table in ("integrations", "agents", *PROVIDER_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_started_at", sa.DateTime(timezone=True), nullable=True))

    conn = op.get_bind()
    _learn_accounts(conn)
    for table in ("agents", *PROVIDER_TABLES):
        conn.execute(
            sa.text(
                f"UPDATE {table} SET account_id = (SELECT account_id FROM integrations "
                f"WHERE integrations.id = {table}.integration_id)"
            )
        )
    _merge_calls(conn)
    for table, order in KEEP.items():
        _drop_duplicates(conn, table, order)
    conn.execute(
        sa.text(
            "UPDATE call_events SET call_started_at = COALESCE((SELECT started_at FROM calls WHERE calls.account_id = "
            "call_events.account_id AND calls.external_id = call_events.call_external_id), occurred_at)"
        )
    )

    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f("ix_integrations_account_id"), ["account_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_integrations_account_id_provider_accounts"),
            "provider_accounts",
            ["account_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_agents_org_id"))
        batch_op.drop_constraint(batch_op.f("uq_agents_integration_id_extension"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_agents_account_id_extension"), ["account_id", "extension"])
        batch_op.drop_constraint(batch_op.f("fk_agents_org_id_organizations"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_agents_org_id_integrations"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_agents_account_id_provider_accounts"),
            "provider_accounts",
            ["account_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.drop_column("org_id")
        batch_op.drop_column("integration_id")

    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("call_started_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_index(batch_op.f("ix_call_events_number_occurred"))
        batch_op.drop_constraint(batch_op.f("uq_call_events_integration_id_guid"), type_="unique")
        batch_op.drop_index(
            batch_op.f("ix_call_events_call"), postgresql_include=["event_type", "extension", "phone_number_id"]
        )
        batch_op.create_index(
            "ix_call_events_call",
            ["account_id", "call_external_id", "occurred_at"],
            unique=False,
            postgresql_include=["event_type", "extension", "phone_number_id", "call_started_at"],
        )
        batch_op.create_index(
            "ix_call_events_number_call_started", ["phone_number_id", "call_started_at"], unique=False
        )
        batch_op.create_unique_constraint(batch_op.f("uq_call_events_account_id_guid"), ["account_id", "guid"])
        batch_op.drop_constraint(batch_op.f("fk_call_events_integration_id_integrations"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_call_events_account_id_provider_accounts"),
            "provider_accounts",
            ["account_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.drop_column("integration_id")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_calls_integration_started"))
        batch_op.drop_constraint(batch_op.f("uq_calls_integration_id_external_id"), type_="unique")
        batch_op.create_index("ix_calls_account_started", ["account_id", "started_at"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_calls_account_id_external_id"), ["account_id", "external_id"])
        batch_op.drop_constraint(batch_op.f("fk_calls_integration_id_integrations"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_calls_account_id_provider_accounts"),
            "provider_accounts",
            ["account_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.drop_column("integration_id")
    _recreate_calls_covering_index("account_id")

    for table, key in (("recordings", "call_external_id"), ("sms_messages", "external_id")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
            batch_op.drop_constraint(batch_op.f(f"uq_{table}_integration_id_{key}"), type_="unique")
            batch_op.create_unique_constraint(batch_op.f(f"uq_{table}_account_id_{key}"), ["account_id", key])
            batch_op.drop_constraint(batch_op.f(f"fk_{table}_integration_id_integrations"), type_="foreignkey")
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_account_id_provider_accounts"),
                "provider_accounts",
                ["account_id"],
                ["id"],
                ondelete="RESTRICT",
            )
            batch_op.drop_column("integration_id")
    _foreign_keys(True)


def _learn_accounts(conn):
    """Each integration's account, from its host and API key, one row per identity."""
    accounts = sa.table("provider_accounts", sa.column("id"), sa.column("identity"), sa.column("created_at"))
    known = {}
    for integration_id, base_url, credentials in conn.execute(
        sa.text("SELECT id, base_url, credentials_encrypted FROM integrations ORDER BY id")
    ).all():
        identity = account_identity(base_url, crypto.decrypt_json(credentials)["api_key"])
        if identity not in known:
            known[identity] = conn.execute(
                accounts.insert().values(identity=identity, created_at=sa.func.now()).returning(accounts.c.id)
            ).scalar_one()
        conn.execute(
            sa.text("UPDATE integrations SET account_id = :a WHERE id = :i"),
            {"a": known[identity], "i": integration_id},
        )


def _merge_calls(conn):
    """One call per (account, id): the sync's fields from the copy it read last, the events' fields
    from the copy they reached last (the answering agent with them), the rest deleted."""
    groups = conn.execute(
        sa.text("SELECT account_id, external_id FROM calls GROUP BY account_id, external_id HAVING COUNT(*) > 1")
    ).all()
    for account_id, external_id in groups:
        copies = conn.execute(
            sa.text(
                "SELECT id, synced_at, agent_extension, " + ", ".join(EVENT_FIELDS) + " FROM calls "
                "WHERE account_id = :a AND external_id = :x ORDER BY id"
            ),
            {"a": account_id, "x": external_id},
        ).all()
        synced = [c for c in copies if c.synced_at is not None]
        heard = [c for c in copies if c.events_at is not None]
        keeper = max(synced, key=lambda c: c.synced_at) if synced else max(heard, key=lambda c: c.events_at)
        if heard:
            events = max(heard, key=lambda c: c.events_at)
            values = {field: getattr(events, field) for field in EVENT_FIELDS}
            if events.answered_at is not None or not synced:
                values["agent_extension"] = events.agent_extension
            conn.execute(
                sa.text("UPDATE calls SET " + ", ".join(f"{f} = :{f}" for f in values) + " WHERE id = :id"),
                {**values, "id": keeper.id},
            )
        conn.execute(
            sa.text("DELETE FROM calls WHERE account_id = :a AND external_id = :x AND id <> :id"),
            {"a": account_id, "x": external_id, "id": keeper.id},
        )


def _drop_duplicates(conn, table, order):
    key = KEYS[table]
    groups = conn.execute(
        sa.text(f"SELECT account_id, {key} FROM {table} GROUP BY account_id, {key} HAVING COUNT(*) > 1")
    ).all()
    for account_id, value in groups:
        keep = conn.execute(
            sa.text(f"SELECT id FROM {table} WHERE account_id = :a AND {key} = :v ORDER BY {order} LIMIT 1"),
            {"a": account_id, "v": value},
        ).scalar_one()
        conn.execute(
            sa.text(f"DELETE FROM {table} WHERE account_id = :a AND {key} = :v AND id <> :id"),
            {"a": account_id, "v": value, "id": keep},
        )


def _recreate_calls_covering_index(key):
    """The KPI engine's covering index carries the call's provider key (PostgreSQL drops it with the
    column it included)."""
    op.execute("DROP INDEX IF EXISTS ix_calls_number_started")
    op.create_index(
        "ix_calls_number_started",
        "calls",
        ["phone_number_id", "started_at"],
        unique=False,
        postgresql_include=[
            "direction",
            "status",
            "duration_ms",
            "answered_at",
            "ring_ms",
            "agent_extension",
            key,
            "external_id",
        ],
    )


def downgrade():
    _foreign_keys(False)
    conn = op.get_bind()
    first_integration = "(SELECT MIN(id) FROM integrations WHERE integrations.account_id = {}.account_id)"
    for table, key in (("sms_messages", "external_id"), ("recordings", "call_external_id")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("integration_id", sa.INTEGER(), autoincrement=False, nullable=True))
        conn.execute(sa.text(f"UPDATE {table} SET integration_id = {first_integration.format(table)}"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("integration_id", existing_type=sa.INTEGER(), nullable=False)
            batch_op.drop_constraint(batch_op.f(f"fk_{table}_account_id_provider_accounts"), type_="foreignkey")
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_integration_id_integrations"),
                "integrations",
                ["integration_id"],
                ["id"],
                ondelete="RESTRICT",
            )
            batch_op.drop_constraint(batch_op.f(f"uq_{table}_account_id_{key}"), type_="unique")
            batch_op.create_unique_constraint(batch_op.f(f"uq_{table}_integration_id_{key}"), ["integration_id", key])
            batch_op.drop_column("account_id")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("integration_id", sa.INTEGER(), autoincrement=False, nullable=True))
    conn.execute(sa.text(f"UPDATE calls SET integration_id = {first_integration.format('calls')}"))
    _recreate_calls_covering_index("integration_id")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.alter_column("integration_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_constraint(batch_op.f("fk_calls_account_id_provider_accounts"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_calls_integration_id_integrations"),
            "integrations",
            ["integration_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.drop_constraint(batch_op.f("uq_calls_account_id_external_id"), type_="unique")
        batch_op.drop_index("ix_calls_account_started")
        batch_op.create_unique_constraint(
            batch_op.f("uq_calls_integration_id_external_id"), ["integration_id", "external_id"]
        )
        batch_op.create_index(
            batch_op.f("ix_calls_integration_started"), ["integration_id", "started_at"], unique=False
        )
        batch_op.drop_column("account_id")

    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("integration_id", sa.INTEGER(), autoincrement=False, nullable=True))
    conn.execute(sa.text(f"UPDATE call_events SET integration_id = {first_integration.format('call_events')}"))
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.alter_column("integration_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_constraint(batch_op.f("fk_call_events_account_id_provider_accounts"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_call_events_integration_id_integrations"),
            "integrations",
            ["integration_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.drop_constraint(batch_op.f("uq_call_events_account_id_guid"), type_="unique")
        batch_op.drop_index("ix_call_events_number_call_started")
        batch_op.drop_index(
            "ix_call_events_call", postgresql_include=["event_type", "extension", "phone_number_id", "call_started_at"]
        )
        batch_op.create_index(
            batch_op.f("ix_call_events_call"),
            ["integration_id", "call_external_id", "occurred_at"],
            unique=False,
            postgresql_include=["event_type", "extension", "phone_number_id"],
        )
        batch_op.create_unique_constraint(batch_op.f("uq_call_events_integration_id_guid"), ["integration_id", "guid"])
        batch_op.create_index(
            batch_op.f("ix_call_events_number_occurred"), ["phone_number_id", "occurred_at"], unique=False
        )
        batch_op.drop_column("call_started_at")
        batch_op.drop_column("account_id")

    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("integration_id", sa.INTEGER(), autoincrement=False, nullable=True))
        batch_op.add_column(sa.Column("org_id", sa.INTEGER(), autoincrement=False, nullable=True))
    conn.execute(sa.text(f"UPDATE agents SET integration_id = {first_integration.format('agents')}"))
    conn.execute(sa.text("DELETE FROM agents WHERE integration_id IS NULL"))
    conn.execute(
        sa.text(
            "UPDATE agents SET org_id = (SELECT org_id FROM integrations WHERE integrations.id = agents.integration_id)"
        )
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.alter_column("integration_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.alter_column("org_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_constraint(batch_op.f("fk_agents_account_id_provider_accounts"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_agents_org_id_integrations"),
            "integrations",
            ["org_id", "integration_id"],
            ["org_id", "id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_agents_org_id_organizations"), "organizations", ["org_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.drop_constraint(batch_op.f("uq_agents_account_id_extension"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_agents_integration_id_extension"), ["integration_id", "extension"]
        )
        batch_op.create_index(batch_op.f("ix_agents_org_id"), ["org_id"], unique=False)
        batch_op.drop_column("account_id")

    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_integrations_account_id_provider_accounts"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_integrations_account_id"))
        batch_op.drop_column("account_id")

    op.drop_table("provider_accounts")
    _foreign_keys(True)
