"""stored webhook deliveries and call events lose MightyCall's API key

The receiver now replaces every field of a delivery that names an API key (`ApiKey`) before writing
it, by whether it matched. This scrubs what was stored before: webhook event bodies and headers,
and the call events made from them, on PostgreSQL and SQLite. An accepted event's key had matched
(`[removed: matched]`); whether a refused request's did is not known here, so it says `[removed]`.
A body that is not JSON (a refused request: malformed, cut at the size limit) has the value after
each API key's name replaced in its text. Rows without a key are left as they are.

The rules are written out here rather than imported, so that this revision keeps doing what it did
whatever `vsync.redaction` becomes. Downgrading restores nothing: the keys are gone.

Revision ID: 0011_scrub_webhook_api_keys
Revises: 0010_user_sessions
Create Date: 2026-12-05 12:00:00

"""

import json
import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_scrub_webhook_api_keys"
down_revision = "0010_user_sessions"
branch_labels = None
depends_on = None

MATCHED = "[removed: matched]"
REMOVED = "[removed]"
BATCH = 1000
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_NOT_NAME = re.compile(r"[^a-z0-9]")
_TEXT_API_KEY = re.compile(
    r"""(?<![\w-])(?P<name>[\w-]{0,40}?api[\W_]?key)(?P<sep>["']?\s*[:=]\s*["']?)"""
    r"""(?!\[removed)(?P<value>[^"'&\s,;}]+)""",
    re.IGNORECASE,
)

webhook_events = sa.table(
    "webhook_events",
    sa.column("id", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("body", sa.Text),
    sa.column("headers", JSON_TYPE),
)
call_events = sa.table("call_events", sa.column("id", sa.BigInteger), sa.column("raw", JSON_TYPE))


def _is_api_key(name):
    return _NOT_NAME.sub("", str(name).lower()).endswith("apikey")


def _scrubbed(value, marker):
    if isinstance(value, dict):
        return {name: marker if _is_api_key(name) else _scrubbed(item, marker) for name, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, marker) for item in value]
    if isinstance(value, str):
        return _TEXT_API_KEY.sub(lambda m: f"{m['name']}{m['sep']}{marker}", value)
    return value


def _scrubbed_body(body, marker):
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return _TEXT_API_KEY.sub(lambda m: f"{m['name']}{m['sep']}{marker}", body)
    scrubbed = _scrubbed(parsed, marker)
    return body if scrubbed == parsed else json.dumps(scrubbed, separators=(",", ":"))


def _batches(bind, table, *columns, where):
    """Rows of `table` that may hold a key (their text mentions one), a batch at a time, by id."""
    after = 0
    while True:
        rows = bind.execute(
            sa.select(table.c.id, *columns).where(table.c.id > after, where).order_by(table.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _mentions_a_key(column):
    return sa.func.lower(sa.cast(column, sa.Text)).like("%key%")


def upgrade():
    bind = op.get_bind()
    events = webhook_events.c
    for rows in _batches(
        bind,
        webhook_events,
        events.status,
        events.body,
        events.headers,
        where=sa.or_(_mentions_a_key(events.body), _mentions_a_key(events.headers)),
    ):
        changed = []
        for row in rows:
            marker = REMOVED if row.status == "rejected" else MATCHED
            body, headers = _scrubbed_body(row.body, marker), _scrubbed(row.headers or {}, marker)
            if body != row.body or headers != (row.headers or {}):
                changed.append({"row_id": row.id, "new_body": body, "new_headers": headers})
        if changed:
            bind.execute(
                webhook_events.update()
                .where(events.id == sa.bindparam("row_id"))
                .values(body=sa.bindparam("new_body"), headers=sa.bindparam("new_headers")),
                changed,
            )
    for rows in _batches(bind, call_events, call_events.c.raw, where=_mentions_a_key(call_events.c.raw)):
        changed = [
            {"row_id": row.id, "new_raw": raw} for row in rows if (raw := _scrubbed(row.raw, MATCHED)) != row.raw
        ]
        if changed:
            bind.execute(
                call_events.update()
                .where(call_events.c.id == sa.bindparam("row_id"))
                .values(raw=sa.bindparam("new_raw")),
                changed,
            )


def downgrade():
    pass
