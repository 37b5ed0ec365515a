"""calls known only from webhook events get the duration their events give

Revision ID: 0021_callsui_call_durations
Revises: 0020_notifyapi_sync_failures
Create Date: 2026-12-06 05:20:00.000000

A call that no sync has read (`synced_at` empty) and that has ended takes its duration from its
events, as `vsync.mightycall.webhook_events.derive_call` now gives it: from the first Connected
(`answered_at`) to the first Completed (`ended_at`) when answered, 0 when not. Until now such calls
were stored without one. The downgrade empties the durations of unsynced calls again, which is what
every such call had before.
"""

from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0021_callsui_call_durations"
down_revision = "0020_notifyapi_sync_failures"
branch_labels = None
depends_on = None

calls = sa.table(
    "calls",
    sa.column("id", sa.BigInteger),
    sa.column("answered_at", sa.DateTime(timezone=True)),
    sa.column("ended_at", sa.DateTime(timezone=True)),
    sa.column("duration_ms", sa.BigInteger),
    sa.column("synced_at", sa.DateTime(timezone=True)),
)
BATCH = 1000


def _aware(value):
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def upgrade():
    connection = op.get_bind()
    unsynced = sa.and_(calls.c.synced_at.is_(None), calls.c.ended_at.is_not(None), calls.c.duration_ms.is_(None))
    # Unanswered: they completed without a Connected.
    connection.execute(calls.update().where(unsynced, calls.c.answered_at.is_(None)).values(duration_ms=0))
    after = 0
    while True:
        rows = connection.execute(
            sa.select(calls.c.id, calls.c.answered_at, calls.c.ended_at)
            .where(unsynced, calls.c.answered_at.is_not(None), calls.c.id > after)
            .order_by(calls.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for call_id, answered_at, ended_at in rows:
            talk = max(_aware(ended_at) - _aware(answered_at), timedelta(0))
            connection.execute(
                calls.update().where(calls.c.id == call_id).values(duration_ms=round(talk / timedelta(milliseconds=1)))
            )
        after = rows[-1][0]


def downgrade():
    op.get_bind().execute(calls.update().where(calls.c.synced_at.is_(None)).values(duration_ms=None))
