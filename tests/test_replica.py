"""KPI reads on a replica (`DATABASE_REPLICA_URL`): the figures a replica answers equal the primary's
and stay each org's own (the replica runs on the request's session, tenant scope and hooks included),
an unreachable replica sends reads to the primary, and a lagging one is left by `usable`.

The "replica" here is the test database itself under a second engine (a streaming replica needs a
second cluster: `bench/cluster.py` runs one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from tests.helpers import DATABASE_URL, app_config
from tests.world import api_as
from vsync import create_app
from vsync.config import REPLICA_BIND, ConfigError, load_config
from vsync.extensions import db
from vsync.services import replica
from vsync.services.replica import ReplicaState, usable

WINDOW = {"from": "2026-11-01", "to": "2026-11-03"}
ROUTES = ("metrics", "metrics/agents", "metrics/numbers", "metrics/heatmap")
# A port of this worktree's range that nothing listens on: connecting is refused at once.
UNREACHABLE = "postgresql://postgres@127.0.0.1:5129/vsync"


def _replica_app(url: str):
    replica.forget_checks()
    return create_app(app_config(DATABASE_REPLICA_URL=url))


def _figures(app, world, principal: str, org: str) -> dict:
    client = api_as(app.test_client(), principal, world)
    answers = {}
    for route in ROUTES:
        response = client.get(f"/api/v1/orgs/{org}/{route}", query_string=WINDOW)
        assert response.status_code == 200, response.get_json()
        answers[route] = {k: v for k, v in response.get_json().items() if k != "window"}
    dashboard = client.get(f"/admin/orgs/{org}/data", query_string=WINDOW) if principal.startswith("admin") else None
    if dashboard is not None:
        assert dashboard.status_code == 200
        answers["dashboard"] = {k: v for k, v in dashboard.get_json().items() if k not in ("freshness", "today")}
    return answers


def test_figures_read_on_a_replica_equal_the_primarys_and_each_org_sees_only_its_own(app, world):
    on_replica = _replica_app(DATABASE_URL + "?application_name=vsync-replica")
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    with on_replica.app_context():
        engine = db.engines[REPLICA_BIND]
    event.listen(engine, "before_cursor_execute", record)
    try:
        for principal, org in (("read_a", "org-a"), ("read_b", "org-b"), ("admin_a", "org-a"), ("agent_a", "org-a")):
            assert _figures(on_replica, world, principal, org) == _figures(app, world, principal, org), principal
        # Both orgs see the shared number's traffic only while it was theirs: their hours differ.
        a = _figures(on_replica, world, "read_a", "org-a")["metrics/heatmap"]["data"]
        b = _figures(on_replica, world, "read_b", "org-b")["metrics/heatmap"]["data"]
        assert a != b
        assert any("FROM calls" in s for s in statements), "the figures were not read on the replica"
        # A key of org A asking for org B's figures through the replica is refused like on the primary.
        crossing = api_as(on_replica.test_client(), "read_a", world).get("/api/v1/orgs/org-b/metrics")
        assert crossing.status_code in (403, 404)
    finally:
        event.remove(engine, "before_cursor_execute", record)
        engine.dispose()


def test_an_unreachable_replica_sends_kpi_reads_to_the_primary(app, world):
    on_dead_replica = _replica_app(UNREACHABLE)
    assert _figures(on_dead_replica, world, "read_a", "org-a") == _figures(app, world, "read_a", "org-a")
    assert _figures(on_dead_replica, world, "admin_a", "org-a") == _figures(app, world, "admin_a", "org-a")


NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _state(*, recovery=True, replayed_ago: float | None = 0.0, replayed_all=True, streaming=True) -> ReplicaState:
    replayed_at = None if replayed_ago is None else NOW - timedelta(seconds=replayed_ago)
    return ReplicaState(recovery, NOW, replayed_at, replayed_all, streaming)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (_state(recovery=False, replayed_ago=None, replayed_all=False, streaming=False), True),  # a primary
        (_state(replayed_ago=3600), True),  # idle primary: nothing to replay, streaming and caught up
        (_state(replayed_ago=3, replayed_all=False), True),  # replaying, 3 s behind
        (_state(replayed_ago=5, replayed_all=False), True),  # at the bound
        (_state(replayed_ago=6, replayed_all=False), False),  # past the bound
        (_state(replayed_ago=3600, streaming=False), False),  # cut off from the primary: caught up with nothing
        (_state(replayed_ago=None, replayed_all=False), False),  # never replayed a transaction
    ],
)
def test_a_replica_is_used_while_caught_up_or_within_the_lag_bound(state, expected):
    assert usable(state, max_lag_seconds=5) is expected


def test_the_replica_setting_needs_postgresql_and_is_absent_by_default(tmp_path):
    assert "SQLALCHEMY_BINDS" not in load_config(str(tmp_path), environ={})
    with pytest.raises(ConfigError, match="DATABASE_REPLICA_URL"):
        load_config(str(tmp_path), environ={"DATABASE_REPLICA_URL": "sqlite:///replica.db"})
    config = load_config(str(tmp_path), environ={"DATABASE_URL": DATABASE_URL, "DATABASE_REPLICA_URL": UNREACHABLE})
    assert config["SQLALCHEMY_BINDS"][REPLICA_BIND]["url"] == UNREACHABLE
    assert config["VSYNC_REPLICA_MAX_LAG_SECONDS"] == 5
