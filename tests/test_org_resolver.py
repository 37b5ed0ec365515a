"""One resolver: principal + org in the URL → the org, the role there, the scope entered once.

Every principal of the two-org world is walked against both orgs' URLs, by slug and by id.
"""

from __future__ import annotations

import pytest
from flask import g, jsonify
from sqlalchemy import func, select

from tests.helpers import app_config
from tests.world import EMAILS, api_as
from vsync import create_app
from vsync.api.access import requires
from vsync.extensions import db
from vsync.models import Call, Membership, User

# principal → (role in A, role in B); None: that org is a 404 for it
REACH = {
    "anonymous": (None, None),
    "admin_a": ("org_admin", None),
    "manager_a": ("manager", None),
    "agent_a": ("agent", None),
    "admin_b": (None, "org_admin"),
    "manager_b": (None, "manager"),
    "agent_b": (None, "agent"),
    "both": ("manager", "agent"),
    "root": ("org_admin", "org_admin"),
    "read_a": ("manager", None),
    "write_a": ("manager", None),
    "read_b": (None, "manager"),
    "write_b": (None, "manager"),
    "platform": ("org_admin", "org_admin"),
}


@pytest.fixture(scope="module")
def probe_app(app):
    """The app with probe routes that report what their request's scope shows."""
    probe = create_app(app_config())

    @probe.get("/api/v1/orgs/<org>/probe/visible")
    def visible(org):
        return jsonify(
            role=g.org_access.role,
            calls=sorted(db.session.scalars(select(Call.external_id))),
            members=db.session.scalar(select(func.count(Membership.id))),
            users=sorted(db.session.scalars(select(User.email))),
        )

    @probe.post("/api/v1/orgs/<org>/probe/admin")
    @requires(scope="write", role="org_admin")
    def admin_only(org):
        return jsonify(ok=True)

    return probe


@pytest.mark.parametrize("principal", sorted(REACH))
def test_every_principal_reaches_exactly_its_orgs_by_slug_and_by_id(probe_app, world, principal):
    client = api_as(probe_app.test_client(), principal, world)
    for org, role in zip(("a", "b"), REACH[principal], strict=True):
        for reference in (f"org-{org}", str(world.org(org))):
            response = client.get(f"/api/v1/orgs/{reference}")
            if principal == "anonymous":
                assert response.status_code == 401
            elif role is None:
                assert response.status_code == 404, (principal, reference)
                assert response.get_json()["error"]["message"] == f"No organisation {reference!r}."
            else:
                assert response.status_code == 200, (principal, reference)
                assert response.get_json()["role"] == role


def test_an_org_that_does_not_exist_and_one_out_of_reach_answer_the_same(probe_app, world):
    client = api_as(probe_app.test_client(), "admin_a", world)
    hidden, missing = client.get("/api/v1/orgs/org-b"), client.get("/api/v1/orgs/org-zzz")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json()["error"]["code"] == missing.get_json()["error"]["code"] == "not_found"


def test_a_user_in_two_orgs_acts_in_each_with_its_role_there_and_sees_only_that_org(probe_app, world):
    client = api_as(probe_app.test_client(), "both", world)
    in_a = client.get("/api/v1/orgs/org-a/probe/visible").get_json()
    in_b = client.get("/api/v1/orgs/org-b/probe/visible").get_json()
    assert in_a["role"] == "manager" and in_b["role"] == "agent"
    assert in_a["calls"] == ["a-1100", "a-1300", "moved-before-1100", "shared-1200"]
    assert in_b["calls"] == []  # an agent with extension 202, which handled no call
    assert "admin@b.test" not in in_a["users"] and "admin@a.test" not in in_b["users"]


def test_a_platform_admin_on_an_org_route_sees_only_that_org(probe_app, world):
    client = api_as(probe_app.test_client(), "root", world)
    body = client.get("/api/v1/orgs/org-b/probe/visible").get_json()
    assert body["calls"] == ["b-1100", "b-1300", "moved-after-1300", "shared-1200"]
    assert body["members"] == 4 and EMAILS["admin_a"] not in body["users"]


def test_an_agent_sees_only_the_calls_of_its_own_extension(probe_app, world):
    client = api_as(probe_app.test_client(), "agent_a", world)
    assert client.get("/api/v1/orgs/org-a/probe/visible").get_json()["calls"] == ["a-1100", "a-1300", "shared-1200"]


@pytest.mark.parametrize(
    "principal,status",
    [
        ("admin_a", 200),
        ("manager_a", 403),
        ("agent_a", 403),
        ("read_a", 403),
        ("write_a", 403),
        ("platform", 200),
        ("admin_b", 404),
    ],
)
def test_role_checks_read_the_resolvers_answer_and_org_keys_are_never_org_admins(probe_app, world, principal, status):
    client = api_as(probe_app.test_client(), principal, world)
    headers = {}
    if not principal.startswith(("read", "write", "platform")):
        from tests.helpers import csrf_token

        headers["X-CSRFToken"] = csrf_token(client, "/admin/")
    assert client.post("/api/v1/orgs/org-a/probe/admin", headers=headers).status_code == status


@pytest.mark.parametrize("principal", ["admin_a", "both", "root", "read_b", "platform"])
def test_me_lists_every_org_the_principal_can_reach_with_its_role(client, world, principal):
    body = api_as(client, principal, world).get("/api/v1/me").get_json()
    reach = {org["slug"]: org["role"] for org in body["orgs"]}
    expected = {f"org-{org}": role for org, role in zip("ab", REACH[principal], strict=True) if role}
    assert reach == expected
    assert body["platform"] is (principal in ("root", "platform"))


def test_orgs_lists_reachable_orgs_in_pages_with_a_cursor(client, world):
    api_as(client, "platform", world)
    first = client.get("/api/v1/orgs?limit=1").get_json()
    assert [o["slug"] for o in first["data"]] == ["org-a"] and first["next_cursor"]
    second = client.get(f"/api/v1/orgs?limit=1&cursor={first['next_cursor']}").get_json()
    assert [o["slug"] for o in second["data"]] == ["org-b"] and second["next_cursor"] is None
    for query, field in (("limit=0", "limit"), ("colour=blue", "colour"), ("cursor=2", "cursor")):
        refused = client.get(f"/api/v1/orgs?{query}")
        assert refused.status_code == 400 and field in refused.get_json()["error"]["details"], query


def test_a_signed_in_user_without_an_org_gets_answers_not_errors(client, world, in_app):
    from tests.factories import make_user

    with in_app():
        make_user("loner@nowhere.test")
    from tests.helpers import login

    login(client, "loner@nowhere.test")
    assert client.get("/api/v1/me").get_json()["orgs"] == []
    assert client.get("/api/v1/orgs/org-a").status_code == 404
    page = client.get("/admin/")
    assert page.status_code == 200 and "not a member of any organisation" in page.get_data(as_text=True)
