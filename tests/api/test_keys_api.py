"""GET/POST /orgs/{org}/api-keys and DELETE /orgs/{org}/api-keys/{id}: org admins manage their org's keys."""

from __future__ import annotations

from tests.api.helpers import audit_rows

KEYS = "/api/v1/orgs/{org}/api-keys"


def test_an_org_admin_creates_a_key_whose_secret_is_shown_once_and_which_then_works(app, world, as_):
    admin = as_("admin_a")
    response = admin.post(
        KEYS.format(org="org-a"), json={"name": "Wallboard", "scopes": ["write"], "expires_at": "2099-01-01T00:00:00Z"}
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["key"].startswith(created["prefix"] + "_") and created["scopes"] == ["read", "write"]
    assert created["status"] == "active" and created["expires_at"] == "2099-01-01T00:00:00Z"
    listed = admin.get(KEYS.format(org="org-a"))
    assert created["key"] not in listed.get_data(as_text=True)
    assert [key["name"] for key in listed.get_json()["data"]] == ["Wallboard", "write a", "read a"]
    assert "key" not in listed.get_json()["data"][0]
    used = app.test_client().get("/api/v1/orgs/org-a", headers={"Authorization": f"Bearer {created['key']}"})
    assert used.status_code == 200 and used.get_json()["role"] == "manager"
    row = audit_rows(app, world.a, "api_key.created")[-1]
    assert row.actor == "admin@a.test" and created["key"] not in row.summary


def test_a_platform_key_creates_a_key_in_the_org_of_the_url_only(app, world, as_):
    created = as_("platform").post(KEYS.format(org="org-b"), json={"name": "B's board"}).get_json()
    assert created["scopes"] == ["read"]
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert app.test_client().get("/api/v1/orgs/org-b", headers=headers).status_code == 200
    assert app.test_client().get("/api/v1/orgs/org-a", headers=headers).status_code == 404
    assert "B's board" not in as_("admin_a").get(KEYS.format(org="org-a")).get_data(as_text=True)


def test_a_key_needs_a_name_known_scopes_and_a_future_expiry(as_):
    admin = as_("admin_a")
    for body, field in (
        ({}, "name"),
        ({"name": "x", "scopes": ["admin"]}, "scopes.0"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "secret": "mine"}, "secret"),
    ):
        response = admin.post(KEYS.format(org="org-a"), json=body)
        assert response.status_code == 400, body
        assert field in response.get_json()["error"]["details"], response.get_json()


def test_revoking_a_key_refuses_it_at_once_and_a_second_revoke_changes_nothing(app, world, as_):
    admin = as_("admin_a")
    url = f"{KEYS.format(org='org-a')}/{world.key_ids['read_a']}"
    response = admin.delete(url)
    assert response.status_code == 200 and response.get_json()["status"] == "revoked"
    assert as_("read_a").get("/api/v1/orgs/org-a").status_code == 401
    assert admin.delete(url).get_json()["revoked_at"] == response.get_json()["revoked_at"]
    assert len(audit_rows(app, world.a, "api_key.revoked")) == 1


def test_another_orgs_key_and_a_platform_key_are_404_and_stay_usable(world, as_):
    admin = as_("admin_a")
    for name in ("read_b", "platform"):
        response = admin.delete(f"{KEYS.format(org='org-a')}/{world.key_ids[name]}")
        assert response.status_code == 404, name
        assert response.get_json()["error"]["message"] == f"No API key with id {world.key_ids[name]}."
    assert as_("read_b").get("/api/v1/orgs/org-b").status_code == 200


def test_managers_and_org_keys_may_neither_list_nor_mint_keys(as_):
    for principal in ("manager_a", "write_a"):
        client = as_(principal)
        assert client.get(KEYS.format(org="org-a")).status_code == 403
        response = client.post(KEYS.format(org="org-a"), json={"name": "more"})
        assert response.status_code == 403
        assert response.get_json()["error"]["details"] == {"role": "requires 'org_admin'"}
