"""Each principal's requests enter the right scope: its org, or an explicit platform bypass."""
from __future__ import annotations

import pytest

from tests.conftest import login
from tests.factories import make_org, make_user
from vsync.extensions import db
from vsync.services.keys import create_api_key
from vsync.tenancy import platform_bypass


@pytest.fixture
def people(in_app):
    with in_app():
        ids = {"a": make_org("org-a"), "b": make_org("org-b")}
        make_user("alice@a.test", org_slug="org-a")
        make_user("bob@b.test", org_slug="org-b", role="agent", extension="101")
        make_user("root@platform.test", platform_admin=True)
        make_user("loner@nowhere.test")
        with platform_bypass("test"):
            ids["key_a"] = create_api_key(org_id=ids["a"], name="a")[1]
            ids["key_platform"] = create_api_key(org_id=None, name="platform")[1]
            db.session.commit()
    return ids


def me(client, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_org_member_acts_in_their_own_org_only(client, people):
    login(client, "alice@a.test")
    body = me(client)
    assert body["org"]["slug"] == "org-a" and body["role"] == "org_admin" and body["platform"] is False


def test_member_of_the_other_org_acts_in_that_org(client, people):
    login(client, "bob@b.test")
    body = me(client)
    assert body["org"]["slug"] == "org-b" and body["role"] == "agent"


def test_platform_admin_gets_the_explicit_bypass(client, people):
    login(client, "root@platform.test")
    body = me(client)
    assert body["platform"] is True and body["org"] is None


def test_org_key_acts_in_its_org_and_platform_key_in_the_bypass(client, people):
    assert me(client, people["key_a"])["org"]["slug"] == "org-a"
    platform = me(client, people["key_platform"])
    assert platform["platform"] is True and platform["principal"]["type"] == "api_key"


def test_user_without_membership_acts_in_no_org(client, people):
    login(client, "loner@nowhere.test")
    body = me(client)
    assert body["org"] is None and body["role"] is None and body["platform"] is False
