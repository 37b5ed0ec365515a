"""GET/POST /orgs/{org}/members, PATCH/DELETE /orgs/{org}/members/{id}: org admins manage members; agents
see only themselves; the last org admin stays."""

from __future__ import annotations

from tests.api.helpers import audit_rows
from tests.world import EMAILS

MEMBERS = "/api/v1/orgs/{org}/members"


def _emails(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [member["email"] for member in response.get_json()["data"]]


def test_managers_and_keys_read_every_member_and_agents_only_themselves(as_):
    everyone = sorted([EMAILS["admin_a"], EMAILS["manager_a"], EMAILS["agent_a"], EMAILS["both"]])
    assert _emails(as_("manager_a").get(MEMBERS.format(org="org-a"))) == everyone
    assert _emails(as_("read_a").get(MEMBERS.format(org="org-a"))) == everyone
    assert _emails(as_("agent_a").get(MEMBERS.format(org="org-a"))) == [EMAILS["agent_a"]]
    assert _emails(as_("both").get(MEMBERS.format(org="org-b"))) == [EMAILS["both"]]  # an agent in B


def test_members_page_by_email(as_):
    client = as_("admin_a")
    first = client.get(MEMBERS.format(org="org-a") + "?limit=3").get_json()
    rest = client.get(MEMBERS.format(org="org-a") + f"?limit=3&cursor={first['next_cursor']}").get_json()
    assert len(first["data"]) == 3 and len(rest["data"]) == 1 and rest["next_cursor"] is None


def test_an_org_admin_adds_a_new_person_who_gets_a_one_time_set_password_link(app, world, as_):
    response = as_("admin_a").post(
        MEMBERS.format(org="org-a"), json={"email": "New@A.test", "role": "agent", "extension": "105"}
    )
    assert response.status_code == 201, response.get_json()
    added = response.get_json()
    assert (added["email"], added["role"], added["extension"]) == ("new@a.test", "agent", "105")
    link = added["set_password_url"]
    assert link.startswith("http://localhost/set-password/")
    page = app.test_client().get(link.removeprefix("http://localhost"))
    assert page.status_code == 200 and "new@a.test" in page.get_data(as_text=True)
    assert "set_password_url" not in as_("admin_a").get(MEMBERS.format(org="org-a")).get_data(as_text=True)
    assert [row.action for row in audit_rows(app, world.a)][-1:] == ["member.added"]


def test_a_person_with_an_account_elsewhere_gets_a_link_too_which_sets_nothing(app, world, as_):
    response = as_("admin_a").post(MEMBERS.format(org="org-a"), json={"email": EMAILS["agent_b"], "role": "manager"})
    assert response.status_code == 201
    page = app.test_client().get(response.get_json()["set_password_url"].removeprefix("http://localhost"))
    assert page.status_code == 410
    again = as_("admin_a").post(MEMBERS.format(org="org-a"), json={"email": EMAILS["agent_b"], "role": "agent"})
    assert again.status_code == 409 and "email" in again.get_json()["error"]["details"]


def test_a_new_member_needs_an_email_a_known_role_and_a_digit_extension(as_):
    client = as_("admin_a")
    for body, field in (
        ({"role": "agent"}, "email"),
        ({"email": "x@a.test", "role": "boss"}, "role"),
        ({"email": "not-an-email", "role": "agent"}, "email"),
        ({"email": "x@a.test", "role": "agent", "extension": "12a"}, "extension"),
        ({"email": "x@a.test", "role": "agent", "password": "chosen-by-admin"}, "password"),
    ):
        response = client.post(MEMBERS.format(org="org-a"), json=body)
        assert response.status_code == 400, body
        assert field in response.get_json()["error"]["details"], response.get_json()


def test_an_org_admin_changes_a_role_and_clears_an_extension(app, world, as_):
    url = f"{MEMBERS.format(org='org-a')}/{world.agent_memberships['a']}"
    response = as_("admin_a").patch(url, json={"role": "manager", "extension": None})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["role"], response.get_json()["extension"]) == ("manager", None)
    (row,) = audit_rows(app, world.a, "member.changed")
    assert row.summary == "agent@a.test: role agent → manager, extension 101 → none"


def test_the_last_org_admin_can_be_neither_demoted_nor_removed_but_one_of_two_can(world, as_):
    client = as_("root")
    admins = [m for m in client.get(MEMBERS.format(org="org-a")).get_json()["data"] if m["role"] == "org_admin"]
    (admin,) = admins
    url = f"{MEMBERS.format(org='org-a')}/{admin['id']}"
    for response in (client.patch(url, json={"role": "manager"}), client.delete(url)):
        assert response.status_code == 409 and response.get_json()["error"]["code"] == "last_org_admin"
    client.patch(f"{MEMBERS.format(org='org-a')}/{world.agent_memberships['a']}", json={"role": "org_admin"})
    assert client.patch(url, json={"role": "manager"}).status_code == 200


def test_an_org_admin_removes_a_member_and_their_account_stays_in_other_orgs(app, world, as_):
    both = next(
        m for m in as_("admin_a").get(MEMBERS.format(org="org-a")).get_json()["data"] if m["email"] == EMAILS["both"]
    )
    response = as_("admin_a").delete(f"{MEMBERS.format(org='org-a')}/{both['id']}")
    assert response.status_code == 204 and response.get_data() == b""
    assert EMAILS["both"] not in _emails(as_("admin_a").get(MEMBERS.format(org="org-a")))
    assert _emails(as_("both").get(MEMBERS.format(org="org-b"))) == [EMAILS["both"]]
    assert audit_rows(app, world.a, "member.removed")


def test_another_orgs_membership_is_a_404_to_change_or_remove(world, as_):
    client = as_("admin_a")
    url = f"{MEMBERS.format(org='org-a')}/{world.agent_memberships['b']}"
    assert client.patch(url, json={"role": "manager"}).status_code == 404
    assert client.delete(url).status_code == 404
    assert EMAILS["agent_b"] in _emails(as_("admin_b").get(MEMBERS.format(org="org-b")))


def test_managers_agents_and_org_keys_may_not_manage_members(world, as_):
    url = f"{MEMBERS.format(org='org-a')}/{world.agent_memberships['a']}"
    for principal in ("manager_a", "agent_a", "write_a"):
        client = as_(principal)
        added = client.post(MEMBERS.format(org="org-a"), json={"email": "x@a.test", "role": "agent"})
        assert added.status_code == 403
        assert client.patch(url, json={"role": "manager"}).status_code == 403
        assert client.delete(url).status_code == 403
