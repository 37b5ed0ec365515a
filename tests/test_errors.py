"""Every JSON error, whatever answers it (the API, the dashboard's data), is one envelope carrying
the request's id; log records say which request they belong to."""

from __future__ import annotations

import logging
import uuid

from tests.helpers import app_config, kept_log_records
from tests.world import api_as, build_world
from vsync import create_app
from vsync.extensions import db


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    return error


def test_every_kind_of_api_error_carries_the_request_id(app, client, world):
    def traced(status: int) -> dict:
        return {"X-Request-ID": f"trace-{status}"}

    assert _error(client.get("/api/v1/me", headers=traced(401)), 401, "unauthorized")["request_id"] == "trace-401"
    assert _error(client.get("/api/v1/nowhere", headers=traced(404)), 404, "not_found")["request_id"] == "trace-404"
    wrong = client.delete("/api/v1/health", headers=traced(405))
    assert _error(wrong, 405, "method_not_allowed")["request_id"] == "trace-405"
    api_as(client, "admin_a", world)
    bad = client.get("/api/v1/orgs/org-a/metrics?colour=blue", headers=traced(400))
    assert _error(bad, 400, "validation_error")["request_id"] == "trace-400"
    forged = client.patch("/api/v1/orgs/org-a", json={"name": "x"}, headers={"X-Request-ID": "trace-csrf"})
    assert _error(forged, 400, "csrf_failed")["request_id"] == "trace-csrf"
    hidden = client.get("/api/v1/orgs/org-b", headers=traced(404))
    assert _error(hidden, 404, "not_found")["request_id"] == "trace-404"
    keyed = api_as(app.test_client(), "platform", world)
    not_json = keyed.patch("/api/v1/orgs/org-a", data="name=x", headers={**traced(415), "Content-Type": "text/plain"})
    assert _error(not_json, 415, "unsupported_media_type")["request_id"] == "trace-415"


def test_a_rate_limited_api_call_carries_the_request_id(app):
    limited = create_app(
        app_config(VSYNC_RATE_LIMIT_READ="1 per minute", RATELIMIT_KEY_PREFIX=f"test-{uuid.uuid4().hex}")
    )
    with limited.app_context():
        world = build_world()
        db.session.remove()
    client = api_as(limited.test_client(), "read_a", world)
    assert client.get("/api/v1/orgs/org-a").status_code == 200
    refused = client.get("/api/v1/orgs/org-a", headers={"X-Request-ID": "trace-429"})
    assert _error(refused, 429, "rate_limited")["request_id"] == "trace-429"


def test_a_refused_dashboard_window_carries_the_request_id(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    data = client.get(
        "/admin/orgs/org-a/data", query_string={"from": "2026-13-01"}, headers={"X-Request-ID": "trace-dash"}
    )
    assert _error(data, 400, "validation_error")["request_id"] == "trace-dash"


def test_a_requests_log_records_carry_its_request_id(app):
    with kept_log_records() as records:
        logged = create_app(app_config())  # puts the context on the root logger's handlers, this one too
        with logged.test_request_context(headers={"X-Request-ID": "trace-log"}):
            logged.preprocess_request()
            logging.getLogger("vsync.probe").warning("inside")
        logging.getLogger("vsync.probe").warning("outside")
    assert [(r.getMessage(), r.context) for r in records if r.name == "vsync.probe"] == [
        ("inside", "request trace-log"),
        ("outside", "-"),
    ]
