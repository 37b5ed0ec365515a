"""GET/PUT /orgs/{org}/integration and POST /orgs/{org}/integration/test: the org's MightyCall account,
with credentials write-only; connection checks against the simulator over real HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.api.helpers import audit_rows, caller
from tests.factories import make_org, make_user
from tests.helpers import csrf_token, login
from tests.jobs.helpers import API_KEY, USER_KEY, serve
from vsync import crypto
from vsync.extensions import db
from vsync.mightycall import CONTACT_CENTER_BASE_URL
from vsync.models import Integration
from vsync.services.accounts import learn_account
from vsync.tenancy import platform_bypass

URL = "/api/v1/orgs/{org}/integration"
SECRETS = ("test-api-key", "test-user-key", API_KEY, USER_KEY, "new-api-key", "credentials_encrypted")


@pytest.fixture
def sim_server():
    with serve() as server:
        yield server


def _no_secrets(response) -> None:
    body = response.get_data(as_text=True)
    assert not [secret for secret in SECRETS if secret in body], body


def test_managers_read_the_integration_without_any_credential(world, as_):
    response = as_("manager_a").get(URL.format(org="org-a"))
    assert response.status_code == 200
    _no_secrets(response)
    body = response.get_json()
    assert body["id"] == world.integrations["a"] and body["credentials_set"] is True
    assert body["webhook"] == {"token_set": False, "signatures_required": False}
    calls = next(kind for kind in body["sync"] if kind["kind"] == "calls")
    assert calls["last_run"]["id"] == world.runs["a"] and calls["last_succeeded_at"] is None


def test_an_org_admin_replaces_credentials_and_host_and_the_cached_token_goes(app, world, as_):
    with app.app_context(), platform_bypass("test"):
        db.session.get(Integration, world.integrations["a"]).access_token_encrypted = "cached"
        db.session.commit()
    response = as_("admin_a").put(
        URL.format(org="org-a"), json={"api_key": "new-api-key", "base_url": CONTACT_CENTER_BASE_URL}
    )
    assert response.status_code == 200, response.get_json()
    _no_secrets(response)
    assert response.get_json()["base_url"] == CONTACT_CENTER_BASE_URL and "webhook_url" not in response.get_json()
    with app.app_context(), platform_bypass("test"):
        integration = db.session.get(Integration, world.integrations["a"])
        assert integration.access_token_encrypted is None
        assert crypto.decrypt_json(integration.credentials_encrypted) == {
            "api_key": "new-api-key",
            "user_key": "test-user-key",
        }
    (row,) = audit_rows(app, world.a, "integration.updated")
    assert row.summary.endswith("api_key replaced") and "new-api-key" not in row.summary


@pytest.mark.parametrize("api_key", ["schlüssel", "two words", "x" * 513, "   "])
def test_a_key_that_cannot_travel_in_a_header_is_refused_and_the_stored_one_kept(app, world, as_, api_key):
    refused = as_("admin_a").put(URL.format(org="org-a"), json={"api_key": api_key})
    assert refused.status_code == 400 and "api_key" in refused.get_json()["error"]["details"]
    with app.app_context(), platform_bypass("test"):
        stored = crypto.decrypt_json(db.session.get(Integration, world.integrations["a"]).credentials_encrypted)
    assert stored["api_key"] == f"test-api-key-{world.a}"


def test_an_org_admin_may_only_choose_mightycalls_hosts_and_a_platform_admin_any(world, as_):
    elsewhere = {"base_url": "http://10.0.0.1:8080/v4"}
    refused = as_("admin_a").put(URL.format(org="org-a"), json=elsewhere)
    assert refused.status_code == 400 and "base_url" in refused.get_json()["error"]["details"]
    assert as_("root").put(URL.format(org="org-a"), json=elsewhere).get_json()["base_url"] == elsewhere["base_url"]
    bad = as_("root").put(URL.format(org="org-a"), json={"base_url": "ftp://x"})
    assert bad.status_code == 400 and "base_url" in bad.get_json()["error"]["details"]


def test_an_org_without_an_integration_gets_one_and_its_webhook_url_once(app, as_):
    with app.app_context():
        make_org("org-c")
        make_user("admin@c.test", org_slug="org-c")
    client = app.test_client()
    login(client, "admin@c.test")
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client, "/admin/")
    assert client.get(URL.format(org="org-c")).status_code == 404
    missing = client.put(URL.format(org="org-c"), json={"api_key": "new-api-key"})
    assert missing.status_code == 400 and "user_key" in missing.get_json()["error"]["details"]
    response = client.put(URL.format(org="org-c"), json={"api_key": "new-api-key", "user_key": "u"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["webhook_url"].startswith("http://localhost/webhooks/mightycall/")
    assert response.get_json()["base_url"] == "https://api.mightycall.com/v4"
    _no_secrets(response)
    again = client.get(URL.format(org="org-c"))
    assert again.get_json()["webhook"]["token_set"] is True and "webhook_url" not in again.get_json()


def test_several_integrations_are_named_by_id(app, world, as_):
    with app.app_context(), platform_bypass("test"):
        second = Integration(
            org_id=world.a,
            base_url="http://127.0.0.1:1/v4",
            name="Two",
            credentials_encrypted=crypto.encrypt_json({"api_key": "second", "user_key": "u"}),
        )
        learn_account(second)
        db.session.add(second)
        db.session.commit()
        second_id = second.id
    client = as_("admin_a")
    ambiguous = client.get(URL.format(org="org-a"))
    assert ambiguous.status_code == 400 and "integration" in ambiguous.get_json()["error"]["details"]
    assert client.get(URL.format(org="org-a") + f"?integration={second_id}").get_json()["name"] == "Two"
    other = client.get(URL.format(org="org-a") + f"?integration={world.integrations['b']}")
    assert other.status_code == 404


def test_connection_check_against_the_simulator_lists_its_numbers(app, world, as_, sim_server):
    as_("root").put(
        URL.format(org="org-a"), json={"base_url": sim_server.base_url, "api_key": API_KEY, "user_key": USER_KEY}
    )
    response = as_("admin_a").post(URL.format(org="org-a") + "/test")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["numbers"] == len(response.get_json()["phone_numbers"]) > 0
    assert response.get_json()["checked_at"].endswith("Z")
    assert audit_rows(app, world.a, "integration.tested")[-1].summary.startswith("ok")


def test_refused_credentials_are_a_502_naming_mightycalls_answer_and_kept_as_last_error(app, world, as_, sim_server):
    as_("root").put(
        URL.format(org="org-a"),
        json={"base_url": sim_server.base_url, "api_key": API_KEY, "user_key": "wrong-user-key"},
    )
    client = as_("admin_a")
    response = client.post(URL.format(org="org-a") + "/test")
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "mightycall_failed" and error["details"]["retryable"] is False
    _no_secrets(response)
    assert client.get(URL.format(org="org-a")).get_json()["last_error"] == error["details"]["mightycall"]
    assert audit_rows(app, world.a, "integration.tested")[-1].summary.startswith("failed")


def test_an_unreachable_host_is_a_502_too(world, as_):
    response = as_("platform").post(URL.format(org="org-b") + "/test")
    assert response.status_code == 502 and response.get_json()["error"]["details"]["retryable"] is True


def test_managers_and_write_keys_may_neither_set_nor_test_the_account(app, world, as_):
    for principal in ("manager_a", "write_a"):
        client = as_(principal)
        assert client.put(URL.format(org="org-a"), json={"api_key": "new-api-key"}).status_code == 403
        assert client.post(URL.format(org="org-a") + "/test").status_code == 403
    with app.app_context(), platform_bypass("test"):
        last_error = select(Integration.last_error).where(Integration.id == world.integrations["a"])
        assert db.session.scalar(last_error) is None


def test_an_agent_may_not_read_the_integration(app, world):
    assert caller(app, world, "agent_a").get(URL.format(org="org-a")).status_code == 403
