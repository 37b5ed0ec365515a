"""Scopes are entered once per request, and no statement reaches a scoped table past the tenant filter.

Two orgs in every test (`tests.world`). A probe app adds routes that try to cross, with and without an
org in their URL, on the request's own session and on a session of their own (as a job run inline in
the request opens one), for org principals and platform staff. Jobs run inline in that app (no Redis),
as in the embedded default, so the receiver's drain and an org's sync run inside the request that
starts them. A refused entry is a bug of the handler: the answer is a 500 that names no org, and
the log says what was refused.
"""

from __future__ import annotations

import random
import re
from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import delete, false, func, select, text

from tests.helpers import app_config
from tests.jobs.helpers import FAST, connect, serve
from tests.world import A_ONLY, T, api_as
from vsync import create_app
from vsync.extensions import db
from vsync.jobs import job_context
from vsync.metrics import summary
from vsync.mightycall.client import Token
from vsync.mightycall.simulator import WebhookEmitter
from vsync.models import Call, Integration, Organization, SyncRun, WebhookEvent
from vsync.query import Window, org_zone
from vsync.services import audit, members
from vsync.services.integrations import DatabaseTokenStore
from vsync.services.keys import create_api_key
from vsync.services.webhooks import rotate_webhook_token
from vsync.tenancy import (
    RefusedStatement,
    Scope,
    ScopeRefused,
    TenancyError,
    current_scope,
    enter_scope,
    fence_request,
    fix_request_org,
    platform_bypass,
    reviewed_sql,
    scoped_models,
    tenant,
    tenant_criterion_sql,
)

ORG_A_PRINCIPALS = ["read_a", "admin_a", "both"]  # org A's key, its org admin, and a person also in org B
PLATFORM_PRINCIPALS = ["platform", "root"]  # the platform key and a platform admin


def _session(how: str):
    """The request's own session, or a fresh one in an app context of its own, as a job run inline has."""
    return job_context() if how == "job" else nullcontext()


def _add_probes(app) -> None:
    @app.get("/api/probe/<how>/tenant/<int:other>")
    @app.get("/api/probe/<how>/orgs/<org>/tenant/<int:other>")
    def enter_tenant(how: str, other: int, org: str | None = None):
        with _session(how), tenant(other):
            return {"calls": db.session.scalar(select(func.count()).select_from(Call))}

    @app.get("/api/probe/<how>/bypass")
    @app.get("/api/probe/<how>/orgs/<org>/bypass")
    def enter_bypass(how: str, org: str | None = None):
        with _session(how), platform_bypass("probe"):
            return {"orgs": db.session.scalar(select(func.count()).select_from(Organization))}


@pytest.fixture(scope="module")
def probe_app(app):
    probe = create_app(app_config(REDIS_URL=None, **FAST))
    _add_probes(probe)
    return probe


def client_of(probe_app, principal: str, world):
    return api_as(probe_app.test_client(), principal, world)


def assert_refused(client, path: str, caplog, reason: str) -> None:
    caplog.clear()
    response = client.get(path)
    assert response.status_code == 500, path
    assert response.get_json()["error"]["message"] == "The request could not be scoped to an organisation."
    assert re.search(reason, caplog.text), caplog.text


# --- one request, one org ------------------------------------------------------------------------


@pytest.mark.parametrize("principal", ORG_A_PRINCIPALS)
@pytest.mark.parametrize(
    "path", ["/api/probe/job/orgs/org-a/tenant/{b}", "/api/probe/job/tenant/{b}", "/api/probe/request/tenant/{b}"]
)
def test_an_org_a_request_cannot_enter_org_bs_scope_with_or_without_an_org_in_its_url(
    probe_app, world, principal, path, caplog
):
    assert_refused(
        client_of(probe_app, principal, world), path.format(b=world.b), caplog, f"cannot enter org {world.b}"
    )


def test_an_org_a_request_cannot_turn_its_own_session_to_org_b_either(probe_app, world, caplog):
    assert_refused(
        client_of(probe_app, "admin_a", world),
        f"/api/probe/request/orgs/org-a/tenant/{world.b}",
        caplog,
        f"already in org {world.a}",
    )


def test_a_job_an_org_request_runs_inline_acts_in_its_org_and_a_route_without_an_org_in_none(probe_app, world, caplog):
    client = client_of(probe_app, "read_a", world)
    assert client.get(f"/api/probe/job/orgs/org-a/tenant/{world.a}").get_json() == {"calls": 4}
    assert_refused(client, f"/api/probe/job/tenant/{world.a}", caplog, "acts in no organisation")


@pytest.mark.parametrize("principal", ORG_A_PRINCIPALS)
@pytest.mark.parametrize(
    "path", ["/api/probe/job/bypass", "/api/probe/request/bypass", "/api/probe/job/orgs/org-a/bypass"]
)
def test_an_org_principal_never_takes_the_platform_bypass_on_any_route(probe_app, world, principal, path, caplog):
    assert_refused(client_of(probe_app, principal, world), path, caplog, "for platform staff only")


@pytest.mark.parametrize("principal", PLATFORM_PRINCIPALS)
def test_platform_staff_take_the_bypass_anywhere_and_any_orgs_scope_only_where_no_org_is_in_the_url(
    probe_app, world, principal, caplog
):
    client = client_of(probe_app, principal, world)
    for path in ("/api/probe/job/bypass", "/api/probe/request/bypass", "/api/probe/job/orgs/org-a/bypass"):
        assert client.get(path).get_json() == {"orgs": 2}, path
    for org_id in (world.a, world.b):
        assert client.get(f"/api/probe/job/tenant/{org_id}").get_json() == {"calls": 4}
        assert client.get(f"/api/probe/request/tenant/{org_id}").get_json() == {"calls": 4}
    assert_refused(client, f"/api/probe/job/orgs/org-a/tenant/{world.b}", caplog, f"cannot enter org {world.b}")


def test_a_request_without_a_principal_enters_only_the_org_its_credential_names_and_no_bypass(app, world):
    with app.test_request_context("/webhooks/mightycall/token", method="POST"):
        fence_request(None)
        for scope in (tenant(world.a), platform_bypass("sign-in")):
            with pytest.raises(ScopeRefused), scope:
                pass
        fix_request_org(world.a)
        with tenant(world.a):
            assert db.session.scalar(select(func.count()).select_from(Call)) == 4
        with pytest.raises(ScopeRefused, match=f"cannot enter org {world.b}"), tenant(world.b):
            pass
        with pytest.raises(ScopeRefused, match="for platform staff only"), platform_bypass("receiver"):
            pass
        with pytest.raises(ScopeRefused):
            fix_request_org(world.b)
        with pytest.raises(TenancyError, match="fenced already"):
            fence_request("someone", platform=True)


def test_a_principals_request_has_its_org_from_the_resolver_only(app, world):
    with app.test_request_context("/api/v1/me"):
        fence_request("admin@a.test")
        with pytest.raises(TenancyError, match="without a principal"):
            fix_request_org(world.a)


def test_the_receivers_inline_drain_applies_events_in_the_org_of_its_token(probe_app, world):
    with probe_app.app_context(), platform_bypass("test setup"):
        token = rotate_webhook_token(db.session.get(Integration, world.integrations["a"]))
        db.session.commit()
    events = WebhookEmitter("http://unused", f"test-api-key-{world.a}").events(
        "answered", business_number=A_ONLY, started_at=T + timedelta(minutes=5), rng=random.Random(3)
    )
    response = probe_app.test_client().post(f"/webhooks/mightycall/{token}", json=events)
    assert response.get_json() == {"received": len(events), "duplicates": 0}
    with probe_app.app_context(), tenant(world.a):
        statuses = db.session.scalars(select(WebhookEvent.status).where(WebhookEvent.guid != "guid-a")).all()
        assert statuses == ["processed"] * len(events)


def test_an_org_keys_sync_runs_inline_in_its_org_within_the_request(probe_app, world):
    with serve() as server:
        org_id, _ = connect(probe_app, "acme", server)
        with probe_app.app_context(), platform_bypass("test setup"):
            _, key = create_api_key(org_id=org_id, name="sync", scopes="write")
            db.session.commit()
        response = probe_app.test_client().post(
            "/api/v1/orgs/acme/sync", json={"kinds": ["numbers"]}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 202
    with probe_app.app_context(), tenant(org_id):
        assert db.session.scalars(select(SyncRun.status)).all() == ["succeeded"]


def test_the_platform_overview_reads_each_org_in_its_own_scope_within_one_request(probe_app, world):
    page = client_of(probe_app, "root", world).get("/admin/platform/overview/")
    assert page.status_code == 200
    assert "org-a" in page.get_data(as_text=True) and "org-b" in page.get_data(as_text=True)


# --- statements past the session -----------------------------------------------------------------


def _on_engine(statement):
    with db.engine.connect() as connection:
        return connection.execute(statement).all()


RAW_SHAPES = {
    "core on the session's connection": lambda model: db.session.connection().execute(select(model.__table__)).all(),
    "orm select on the session's connection": lambda model: db.session.connection().execute(select(model)).all(),
    "core on an engine connection": lambda model: _on_engine(select(model.__table__)),
    "text on an engine connection": lambda model: _on_engine(text(f"SELECT count(*) FROM {model.__table__.name}")),
    "text on the session's connection": lambda model: (
        db.session.connection().execute(text(f"SELECT count(*) FROM {model.__table__.name}")).all()
    ),
    "driver sql": lambda model: (
        db.session.connection().exec_driver_sql(f"SELECT count(*) FROM {model.__table__.name}").all()
    ),
    "text through the session": lambda model: db.session.execute(
        text(f"SELECT count(*) FROM {model.__table__.name}")
    ).all(),
    "core delete through the session": lambda model: db.session.execute(delete(model.__table__).where(false())),
}


@pytest.mark.parametrize("shape", RAW_SHAPES)
def test_a_statement_on_any_scoped_table_past_the_tenant_filter_is_refused_in_a_tenant_scope(ctx, world, shape):
    run = RAW_SHAPES[shape]
    for model in scoped_models():
        with pytest.raises(RefusedStatement, match=f"{model.__table__.name}|{model.__name__}"), tenant(world.a):
            run(model)
        db.session.rollback()


@pytest.mark.parametrize("shape", RAW_SHAPES)
def test_the_same_statements_run_in_the_platform_bypass_and_outside_any_scope(ctx, world, shape):
    run = RAW_SHAPES[shape]
    for model in scoped_models():
        with platform_bypass("reviewed by the test"):
            run(model)
        run(model)
        db.session.rollback()


def test_reviewed_statements_run_in_a_tenant_scope_and_scope_themselves(ctx, world):
    calls = Call.__table__
    with tenant(world.a):
        scope = current_scope()
        everyone = db.session.connection().execute(reviewed_sql(select(calls.c.external_id))).scalars().all()
        assert len(everyone) == 7  # unfiltered: a reviewed statement adds the criterion itself
        scoped = reviewed_sql(select(calls.c.external_id).where(tenant_criterion_sql(calls, scope)))
        assert set(db.session.connection().execute(scoped).scalars()) == {
            "a-1100",
            "a-1300",
            "shared-1200",
            "moved-before-1100",
        }
        with db.engine.connect() as connection:
            assert connection.execute(reviewed_sql(select(func.count()).select_from(calls))).scalar() == 7


def test_the_reviewed_modules_work_inside_a_tenant_scope(ctx, world):
    expires = T + timedelta(hours=1)
    with tenant(world.a):
        org = db.session.get(Organization, world.a)
        audit.record("test.reviewed", actor="test")
        members.add_member(org, "new@a.test", "agent", extension="150")
        store = DatabaseTokenStore(world.integrations["a"])
        store.save(Token(access_token="token-a", refresh_token=None, expires_at=expires))
        assert store.load().expires_at == expires
        assert summary(org, Window.local_days(org_zone(org), T.date(), T.date()))["total_calls"] == 4
    db.session.commit()


def test_a_scope_ends_with_its_session_and_the_innermost_scope_entered_decides(app, world):
    def raw_count() -> int:
        return db.session.connection().execute(select(func.count()).select_from(Call.__table__)).scalar()

    with app.app_context():
        enter_scope(Scope(org_id=world.a))
        with pytest.raises(RefusedStatement):
            raw_count()
        with job_context(), platform_bypass("a job of the platform, inside"):
            assert raw_count() == 7
        with pytest.raises(RefusedStatement):
            raw_count()
        db.session.remove()
        assert raw_count() == 7
