"""What every /api/v1 route shares: 400 with per-field details for bad input (never a 500), 415 and
400 for bodies that are not JSON, signed cursors, rate limits per caller with 429 and Retry-After,
X-Request-ID everywhere, and one OpenAPI document that lists every route."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import T0
from tests.helpers import app_config
from tests.openapi_check import openapi_path
from tests.world import api_as, build_world
from vsync import create_app, metrics
from vsync.extensions import db
from vsync.models import AuditEvent, Organization
from vsync.query import Filters, Window, org_zone
from vsync.tenancy import platform_bypass, tenant

DAY = T0.date().isoformat()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-03-02T10:00:00", "from"),  # no offset: refused rather than guessed
        (f"from={DAY}&to=2020-01-01", "from"),
        ("from=2024-01-01&to=2025-12-31", "from"),  # more than 400 days
        ("colour=blue", "colour"),
        ("direction=sideways", "direction"),
        ("number=%2B1999", "number"),
        ("agent=", "agent"),
    ],
)
def test_a_bad_metrics_parameter_is_a_400_naming_it(client, world, query, field):
    api_as(client, "admin_a", world)
    response = client.get(f"/api/v1/orgs/org-a/metrics?{query}")
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["details"] and error["message"]


def test_a_bad_series_bucket_is_a_400_naming_it(client, world):
    api_as(client, "admin_a", world)
    response = client.get("/api/v1/orgs/org-a/metrics/series?bucket=fortnight")
    assert response.status_code == 400 and "bucket" in response.get_json()["error"]["details"]


def test_a_forged_cursor_is_a_400_and_a_cursor_of_another_org_too(client, world):
    api_as(client, "platform", world)
    cursor = client.get("/api/v1/orgs?limit=1").get_json()["next_cursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for bad in (tampered, "1", "x" * 600):
        response = client.get(f"/api/v1/orgs?limit=1&cursor={bad}")
        assert response.status_code == 400 and "cursor" in response.get_json()["error"]["details"], bad


def test_the_metrics_routes_answer_what_the_kpi_engine_computes(client, world, in_app):
    api_as(client, "admin_a", world)
    query = f"from={DAY}&to={DAY}&direction=inbound"
    summary = client.get(f"/api/v1/orgs/org-a/metrics?{query}").get_json()
    series = client.get(f"/api/v1/orgs/org-a/metrics/series?{query}&bucket=hour").get_json()
    agents = client.get(f"/api/v1/orgs/org-a/metrics/agents?{query}").get_json()
    numbers = client.get(f"/api/v1/orgs/org-a/metrics/numbers?{query}").get_json()
    with in_app(), tenant(world.a):
        org = db.session.get(Organization, world.a)
        window = Window.parse(org_zone(org), DAY, DAY)
        filters = Filters(direction="inbound")
        assert summary["metrics"] == metrics.for_display(metrics.summary(org, window, filters))
        expected = metrics.for_display(metrics.series(org, window, "hour", filters))
        assert [b["total_calls"] for b in series["data"]] == [b["total_calls"] for b in expected]
        assert [b["start"] for b in series["data"]] == [b["start"] for b in expected]
        assert agents["data"] == metrics.for_display(metrics.by_agent(org, window, filters))
        assert numbers["data"] == metrics.for_display(metrics.by_number(org, window, filters))
    assert summary["metrics"]["total_calls"] == 4  # A_ONLY twice, SHARED, MOVED before the move
    assert summary["org"] == "org-a" and summary["filters"] == {"number": None, "agent": None, "direction": "inbound"}
    assert summary["window"]["from"] == f"{DAY}T00:00:00Z" and summary["window"]["timezone"] == "UTC"
    assert summary["window"]["from_local"] == f"{DAY}T00:00:00+00:00"


def test_the_window_is_the_orgs_local_day_echoed_in_utc_and_local_time(client, world):
    api_as(client, "admin_b", world)  # org B is in America/New_York
    body = client.get(f"/api/v1/orgs/org-b/metrics?from={DAY}&to={DAY}").get_json()
    assert body["window"]["timezone"] == "America/New_York"
    assert body["window"]["from_local"].startswith(f"{DAY}T00:00:00-0")
    assert body["window"]["from"].endswith("Z") and not body["window"]["from"].startswith(f"{DAY}T00:")


def test_without_a_window_the_metrics_are_of_the_orgs_local_today(client, world, time_machine):
    time_machine.move_to(T0 + timedelta(hours=14), tick=False)  # 02:00 UTC on the 3rd: still the 2nd in New York
    api_as(client, "admin_b", world)  # org B is in America/New_York
    body = client.get("/api/v1/orgs/org-b/metrics").get_json()
    assert (body["window"]["from"], body["window"]["to"]) == ("2026-11-02T05:00:00Z", "2026-11-03T05:00:00Z")
    assert body["metrics"]["total_calls"] > 0
    assert body["metrics"] == client.get(f"/api/v1/orgs/org-b/metrics?from={DAY}&to={DAY}").get_json()["metrics"]


def test_an_agent_gets_the_figures_of_their_own_calls_only(client, world):
    api_as(client, "agent_a", world)
    own = client.get(f"/api/v1/orgs/org-a/metrics?from={DAY}&to={DAY}").get_json()["metrics"]
    assert own["total_calls"] == 3  # extension 101: A_ONLY twice and SHARED; not the MOVED call
    agents = client.get(f"/api/v1/orgs/org-a/metrics/agents?from={DAY}&to={DAY}").get_json()["data"]
    assert [row["extension"] for row in agents] == ["101"]


# PATCH /orgs/{org}


def _patch(client, org: str, body):
    return client.patch(
        f"/api/v1/orgs/{org}",
        data=body if isinstance(body, str) else json.dumps(body),
        headers={"Content-Type": "application/json"},
    )


def test_an_org_admin_changes_the_settings_and_the_change_is_audited(client, world, in_app):
    api_as(client, "admin_a", world, csrf=True)
    response = _patch(
        client, "org-a", {"timezone": "Europe/Berlin", "service_level_target": 0.9, "short_abandon_seconds": 10}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["timezone"] == "Europe/Berlin" and response.get_json()["short_abandon_seconds"] == 10
    with in_app(), platform_bypass("test"):
        org = db.session.get(Organization, world.a)
        assert (org.timezone, org.service_level_target) == ("Europe/Berlin", 0.9)
        assert db.session.scalar(
            select(AuditEvent.summary).where(AuditEvent.action == "org.updated", AuditEvent.org_id == world.a)
        )


@pytest.mark.parametrize(
    ("principal", "status"),
    [
        ("manager_a", 403),
        ("agent_a", 403),
        ("read_a", 403),
        ("write_a", 403),
        ("admin_b", 404),
        ("read_b", 404),
        ("platform", 200),
    ],
)
def test_only_org_admins_and_platform_principals_change_an_orgs_settings(client, world, in_app, principal, status):
    api_as(client, principal, world, csrf=True)
    response = _patch(client, "org-a", {"name": "Renamed"})
    assert response.status_code == status, response.get_json()
    with in_app(), platform_bypass("test"):
        renamed = db.session.get(Organization, world.a).name == "Renamed"
    assert renamed is (status == 200)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ("name=x", "application/x-www-form-urlencoded", 415, None),
        ("{not json", "application/json", 400, "body"),
        ('{"colour": "blue"}', "application/json", 400, "colour"),
        ('{"timezone": "Mars/Olympus"}', "application/json", 400, "timezone"),
        ('{"timezone": "' + "0" * 300 + '"}', "application/json", 400, "timezone"),
        ('{"timezone": "../../../etc/passwd"}', "application/json", 400, "timezone"),
        ('{"service_level_target": 80}', "application/json", 400, "service_level_target"),
        ('{"short_abandon_seconds": "soon"}', "application/json", 400, "short_abandon_seconds"),
        ('["a", "list"]', "application/json", 400, None),
    ],
)
def test_a_bad_body_is_refused_clearly_and_changes_nothing(client, world, in_app, body, content_type, status, field):
    api_as(client, "platform", world)
    response = client.patch("/api/v1/orgs/org-a", data=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["message"] and (field is None or field in error["details"]), error
    with in_app(), platform_bypass("test"):
        org = db.session.get(Organization, world.a)
        assert (org.timezone, org.service_level_target, org.short_abandon_seconds) == ("UTC", 0.8, 5)


# Rate limits


@pytest.fixture
def limited_app():
    app = create_app(
        app_config(
            VSYNC_RATE_LIMIT_READ="3 per minute",
            VSYNC_RATE_LIMIT_WRITE="1 per minute",
            RATELIMIT_KEY_PREFIX=f"test-{uuid.uuid4().hex}",
        )
    )
    with app.app_context():
        world = build_world()
        db.session.remove()
    return app, world


def test_a_caller_over_its_read_limit_gets_429_with_retry_after_and_others_do_not(app, limited_app):
    limited, world = limited_app
    client = api_as(limited.test_client(), "read_a", world)
    assert [client.get("/api/v1/orgs/org-a").status_code for _ in range(3)] == [200] * 3
    refused = client.get("/api/v1/orgs/org-a/metrics")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["error"]["code"] == "rate_limited" and refused.headers["X-Request-ID"]
    other = api_as(limited.test_client(), "read_b", world)
    assert other.get("/api/v1/orgs/org-b").status_code == 200
    assert limited.test_client().get("/api/v1/health").status_code == 200  # never limited


def test_while_redis_is_unreachable_reads_answer_and_each_process_still_counts_its_limit(app):
    with socket.socket() as probe:  # a port nothing listens on: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cut_off = create_app(
        app_config(VSYNC_RATE_LIMIT_READ="3 per minute", RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0")
    )
    with cut_off.app_context():
        world = build_world()
        db.session.remove()
    client = api_as(cut_off.test_client(), "read_a", world)
    answers = [client.get("/api/v1/orgs/org-a").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]


def test_writes_have_a_tighter_limit_of_their_own(app, limited_app):
    limited, world = limited_app
    client = api_as(limited.test_client(), "platform", world)
    first = client.patch("/api/v1/orgs/org-a", json={"name": "One"})
    second = client.patch("/api/v1/orgs/org-a", json={"name": "Two"})
    assert (first.status_code, second.status_code) == (200, 429)
    assert client.get("/api/v1/orgs/org-a").get_json()["name"] == "One"


# Request ids and the document


def test_every_api_answer_carries_a_request_id_and_echoes_a_sane_one(client, world):
    for path in ("/api/v1/health", "/api/v1/me", "/api/v1/orgs/org-a", "/api/v1/nowhere"):
        assert client.get(path).headers.get("X-Request-ID")
    api_as(client, "admin_a", world)
    response = client.get("/api/v1/orgs/org-b", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 404 and response.headers["X-Request-ID"] == "trace-42"
    assert response.get_json()["error"]["request_id"] == "trace-42"


def test_the_openapi_document_describes_every_registered_api_route(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.split(".")[0] in ("api-docs", "api_reference"):
            continue
        operations = spec["paths"].get(openapi_path(rule.rule))
        assert operations is not None, f"{rule.rule} is not in the document"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = operations.get(method.lower())
            assert operation is not None and operation.get("summary"), f"{method} {rule.rule} undocumented"


def test_the_reference_lists_every_route_and_every_kpi_and_needs_nothing_from_the_network(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    page = client.get("/api/v1/docs").get_data(as_text=True)
    for path in spec["paths"]:
        assert f"<code>{path}</code>" in page, path
    for kpi in ("answer_rate", "abandon_rate", "service_level", "avg_speed_of_answer_seconds", "busiest_hour"):
        assert f"<code>{kpi}</code>" in page
    assert "<script" not in page and "https://cdn" not in page and "curl -H" in page


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("get", "/api/v1/orgs/org-a/metrics?agent=%00", None, "agent"),
        ("get", "/api/v1/orgs/org%00a", None, "path"),
        ("patch", "/api/v1/orgs/org-a", {"name": "a\x00b"}, "name"),
        ("patch", "/api/v1/orgs/org-a", {"name": "ok", "timezone": ["x\x00"]}, "timezone.0"),
    ],
)
def test_a_nul_character_anywhere_in_a_request_is_a_400_naming_where(client, world, method, url, body, field):
    api_as(client, "platform", world)
    response = getattr(client, method)(url, json=body)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["error"]["details"]


def test_a_nul_character_in_a_console_form_is_a_400_not_a_server_error(client, world):
    from tests.helpers import csrf_token

    token = csrf_token(client)
    response = client.post("/login", data={"email": "a\x00@b.test", "password": "x", "csrf_token": token})
    assert response.status_code == 400
