"""JSON answers on the API: 401 without a principal, 403 for a missing scope or role, 404/405 as JSON."""

from __future__ import annotations

import pytest
from flask import jsonify

from tests.factories import make_org, make_user
from tests.helpers import app_config, csrf_token, login
from vsync import create_app
from vsync.api.access import requires
from vsync.extensions import db
from vsync.services.keys import create_api_key
from vsync.tenancy import platform_bypass


@pytest.fixture(scope="module")
def probe_app(app):
    """The app with two probe routes guarded like real write endpoints will be."""
    probe = create_app(app_config())

    @probe.post("/api/v1/probe/write")
    @requires(scope="write")
    def write_probe():
        return jsonify(ok=True)

    @probe.post("/api/v1/probe/admin")
    @requires(scope="write", role="org_admin")
    def admin_probe():
        return jsonify(ok=True)

    return probe


@pytest.fixture
def keys(probe_app):
    with probe_app.app_context():
        org_id = make_org("org-a")
        make_user("agent@a.test", org_slug="org-a", role="agent")
        with platform_bypass("test"):
            read = create_api_key(org_id=org_id, name="read", scopes="read")[1]
            write = create_api_key(org_id=org_id, name="write", scopes="write")[1]
            db.session.commit()
    return {"read": read, "write": write}


def post(client, path, key=None):
    return client.post(path, headers={"Authorization": f"Bearer {key}"} if key else {})


def test_read_key_gets_403_naming_the_missing_scope(probe_app, keys):
    response = post(probe_app.test_client(), "/api/v1/probe/write", keys["read"])
    assert response.status_code == 403
    assert response.get_json()["error"]["details"] == {"scope": "requires 'write'"}


def test_write_key_passes(probe_app, keys):
    assert post(probe_app.test_client(), "/api/v1/probe/write", keys["write"]).status_code == 200


def test_member_below_the_role_gets_403_and_cookie_writes_need_csrf(probe_app, keys):
    client = probe_app.test_client()
    login(client, "agent@a.test")
    assert post(client, "/api/v1/probe/admin").get_json()["error"]["code"] == "csrf_failed"
    response = client.post("/api/v1/probe/admin", headers={"X-CSRFToken": csrf_token(client, "/admin/")})
    assert response.status_code == 403
    assert response.get_json()["error"]["details"] == {"role": "requires 'org_admin'"}


def test_unknown_api_url_and_wrong_method_answer_json(client):
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = client.delete("/api/v1/health")
    assert wrong.status_code == 405 and wrong.get_json()["error"]["code"] == "method_not_allowed"
