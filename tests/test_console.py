"""The console, server side: every registered console view for every signed-in principal of the
two-org world in org A and org B, tampered posts carrying org B's ids, the actions through the
services, and the dashboard against `vsync.metrics` and the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from tests.factories import account_of
from tests.helpers import app_config, csrf_token
from tests.test_org_resolver import REACH
from tests.world import EMAILS, T, api_as
from vsync import create_app
from vsync.auth.permissions import ROLE_RANK
from vsync.extensions import db
from vsync.metrics import by_agent, by_number, for_display, summary
from vsync.models import ApiKey, AuditEvent, Membership, NumberAssignment, Organization, SyncRun, User, WebhookEvent
from vsync.query import Window, org_zone
from vsync.tenancy import Scope, platform_bypass, tenant

A = "/admin/orgs/org-a"
# The signed-in principals of the two-org world (a key is no console principal: see the API matrix).
USERS = ("anonymous", "admin_a", "manager_a", "agent_a", "admin_b", "manager_b", "agent_b", "both", "root")


def _console_views(app, prefix: str) -> dict[str, object]:
    """Every registered console view under `prefix`, by the path of its index page: a new view joins
    the walks below by being registered."""
    (admin,) = app.extensions["admin"]
    return {
        view.url.removeprefix(prefix).rstrip("/") + "/": view for view in admin._views if view.url.startswith(prefix)
    }


def _expected_org_view(principal: str, role: str | None, least: str) -> int | str:
    if principal == "anonymous":
        return "login"
    if role is None:
        return "picker"  # an org out of reach: back to the org picker, never its data
    return 200 if ROLE_RANK[role] >= ROLE_RANK[least] else 403


def _outcome(response) -> int | str:
    if response.status_code == 302:
        location = response.headers["Location"]
        return "login" if location.startswith("/login") else "picker" if location == "/admin/" else location
    return response.status_code


@pytest.mark.parametrize("principal", USERS)
def test_every_org_view_opens_exactly_for_the_roles_it_is_for_in_either_org(app, world, principal):
    client = api_as(app.test_client(), principal, world)
    views = _console_views(app, "/admin/orgs/<org>")
    assert {"/", "/calls/", "/members/", "/api-keys/", "/settings/"} <= views.keys()
    for org, role in zip(("a", "b"), REACH[principal], strict=True):
        seen = {path: _outcome(client.get(f"/admin/orgs/org-{org}{path}")) for path in views}
        assert seen == {path: _expected_org_view(principal, role, view.least_role) for path, view in views.items()}, org


@pytest.mark.parametrize("principal", USERS)
def test_platform_views_are_for_platform_admins_only(app, world, principal):
    client = api_as(app.test_client(), principal, world)
    paths = _console_views(app, "/admin/platform")
    assert {"/overview/", "/orgs/", "/numbers/", "/audit/"} <= paths.keys()
    expected = "login" if principal == "anonymous" else 200 if principal == "root" else 403
    assert {path: _outcome(client.get(f"/admin/platform{path}")) for path in paths} == dict.fromkeys(paths, expected)


def _ids(world) -> dict[str, dict[str, int]]:
    """One row of each listed kind per org: (view path, id)."""
    with platform_bypass("test"):

        def first(model, org_id, *where):
            return db.session.scalar(select(model.id).where(model.org_id == org_id, *where).order_by(model.id))

        return {
            org: {
                "members": first(Membership, org_id),
                "api-keys": first(ApiKey, org_id),
                "sync-runs": first(SyncRun, org_id),
                "calls": world.calls[org]["a-1100" if org == "a" else "b-1100"],
            }
            for org, org_id in (("a", world.a), ("b", world.b))
        }


@pytest.mark.parametrize("principal", ["admin_a", "root"])
def test_a_detail_page_of_another_orgs_row_is_a_404_and_of_ones_own_a_page(app, world, principal, in_app):
    with in_app():
        ids = _ids(world)
    client = api_as(app.test_client(), principal, world)
    for view in ("members", "api-keys", "sync-runs", "calls"):
        assert client.get(f"{A}/{view}/details/?id={ids['a'][view]}").status_code == 200, view
        assert client.get(f"{A}/{view}/details/?id={ids['b'][view]}").status_code == 404, view


def test_lists_show_only_the_orgs_rows(app, world):
    page = api_as(app.test_client(), "admin_a", world).get(f"{A}/members/").get_data(as_text=True)
    assert EMAILS["agent_a"] in page and EMAILS["agent_b"] not in page and EMAILS["admin_b"] not in page
    calls = api_as(app.test_client(), "admin_a", world).get(f"{A}/calls/?from=2026-10-01&to=2026-12-01")
    # a-1100, a-1300, shared-1200, moved-before-1100; none of B's
    assert len(re.findall(r"calls/details/\?id=", calls.get_data(as_text=True))) == 4


@pytest.mark.parametrize("q", ["a-11", "1100", "a_1", "A-1%"])
def test_the_calls_search_finds_what_the_apis_search_finds(app, world, q):
    window = {"from": "2026-10-01", "to": "2026-12-01"}
    client = api_as(app.test_client(), "admin_a", world)
    page = client.get(f"{A}/calls/", query_string={**window, "q": q}).get_data(as_text=True)
    api = client.get("/api/v1/orgs/org-a/calls", query_string={**window, "q": q}).get_json()["data"]
    assert sorted(map(int, re.findall(r"calls/details/\?id=(\d+)", page))) == sorted(call["id"] for call in api)


def test_an_agent_sees_only_the_calls_of_their_extension(app, world, in_app):
    client = api_as(app.test_client(), "agent_a", world)
    own, unhandled = world.calls["a"]["a-1100"], world.calls["a"]["moved-before-1100"]
    assert client.get(f"{A}/calls/details/?id={own}").status_code == 200
    assert client.get(f"{A}/calls/details/?id={unhandled}").status_code == 404
    page = client.get(f"{A}/calls/?from=2026-10-01&to=2026-12-01").get_data(as_text=True)
    assert len(re.findall(r"calls/details/\?id=", page)) == 3  # a-1100, a-1300, shared-1200


def test_a_user_in_both_orgs_acts_in_each_with_that_orgs_role(app, world):
    client = api_as(app.test_client(), "both", world)
    assert "Org-A as manager;" in client.get(f"{A}/").get_data(as_text=True)
    assert "Org-B as agent;" in client.get("/admin/orgs/org-b/").get_data(as_text=True)
    assert client.get("/admin/orgs/org-b/sms/").status_code == 403


@pytest.mark.parametrize("principal", ["root", "both"])
def test_every_link_of_a_console_page_names_the_org_of_its_own_request(app, world, principal):
    """Flask-Admin kept each menu link as first built in the process, so every later org's menu led
    to the first org's pages. Page after page, org after org and back, every console and API link
    of an org page (menu, navigation, the page's own) names that page's org, refused pages included."""
    client = api_as(app.test_client(), principal, world)
    views = _console_views(app, "/admin/orgs/<org>")
    for org in ("org-a", "org-b", "org-a"):
        for path in views:
            page = client.get(f"/admin/orgs/{org}{path}").get_data(as_text=True)
            menu = re.findall(r'class="nav-link\s*" href="/admin/orgs/([^/"]+)/', page)
            assert menu and set(menu) == {org}, (org, path)
            assert set(re.findall(r"/(?:admin|api/v1)/orgs/([^/\"'?]+)", page)) == {org}, (org, path)


def _console_state(app) -> dict:
    """Every attribute of the admin, its views, their classes and its menu items: the object it is,
    and for a container the objects it holds."""
    (admin,) = app.extensions["admin"]

    def menu_items(items):
        for item in items:
            yield item
            yield from menu_items(item._children)

    def held(value):
        if isinstance(value, dict):
            return id(value), tuple((key, id(item)) for key, item in value.items())
        if isinstance(value, list | tuple | set | frozenset):
            return id(value), tuple(id(item) for item in value)
        return id(value)

    classes = {cls for view in admin._views for cls in type(view).__mro__ if cls is not object}
    return {
        (repr(holder), name): held(value)
        for holder in (admin, *admin._views, *menu_items(admin.menu()), *classes)
        for name, value in vars(holder).items()
    }


def test_serving_every_console_page_keeps_nothing_on_the_views_or_the_menu(world):
    """Nothing one request sees may be kept for the next (Flask-Admin's menu kept the first org's
    links that way): on a fresh app, every console page served to several principals in both orgs
    changes no attribute of the admin, its views, their classes or its menu items."""
    fresh = create_app(app_config())
    before = _console_state(fresh)
    org_pages, platform_pages = _console_views(fresh, "/admin/orgs/<org>"), _console_views(fresh, "/admin/platform")
    for principal in ("root", "both", "agent_b"):
        client = api_as(fresh.test_client(), principal, world)
        for org in ("org-a", "org-b"):
            for path in (*org_pages, f"/calls/details/?id={world.calls[org[-1]][f'{org[-1]}-1100']}"):
                client.get(f"/admin/orgs/{org}{path}")
        for path in platform_pages:
            client.get(f"/admin/platform{path}")
    assert _console_state(fresh) == before


def test_flask_admins_generic_create_edit_and_delete_change_nothing(app, world, in_app):
    with in_app():
        ids = _ids(world)
    client = api_as(app.test_client(), "admin_a", world)
    token = csrf_token(client, f"{A}/members/")
    for path in ("/members/new/", f"/members/edit/?id={ids['a']['members']}"):
        assert client.get(f"{A}{path}").status_code == 302
    client.post(f"{A}/members/delete/", data={"id": ids["a"]["members"], "csrf_token": token})
    client.post(f"{A}/members/action/", data={"action": "delete", "rowid": ids["a"]["members"], "csrf_token": token})
    with in_app(), tenant(world.a):
        assert db.session.get(Membership, ids["a"]["members"]) is not None


def _post(client, path: str, data: dict, token_page: str | None = None):
    token = csrf_token(client, token_page or path.rsplit("/", 1)[0] + "/")
    return client.post(path, data={**data, "csrf_token": token})


def test_a_post_without_a_csrf_token_is_refused(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    assert client.post(f"{A}/settings/", data={"name": "x"}).status_code == 400


def _membership_of(org_id: int, email: str) -> Membership:
    return db.session.scalar(select(Membership).join(User).where(Membership.org_id == org_id, User.email == email))


def test_a_tampered_member_change_naming_org_bs_member_is_a_form_error_and_changes_nothing(app, world, in_app):
    with in_app(), platform_bypass("test"):
        of_b = _membership_of(world.b, EMAILS["agent_b"]).id
    client = api_as(app.test_client(), "admin_a", world)
    for path, data in (
        ("/members/change", {"change-row_id": of_b, "change-role": "org_admin"}),
        ("/members/remove", {"remove-row_id": of_b}),
    ):
        response = _post(client, f"{A}{path}", data, f"{A}/members/")
        assert response.status_code == 400
        assert "That member is not in this organisation." in response.get_data(as_text=True)
    with in_app(), platform_bypass("test"):
        member = db.session.get(Membership, of_b)
        assert (member.role, member.extension) == ("agent", "201")


def test_tampered_posts_naming_org_bs_integration_or_key_are_refused(app, world, in_app):
    with in_app():
        ids = _ids(world)
        with platform_bypass("test"):
            runs_before = db.session.scalar(select(func.count()).select_from(SyncRun))
    client = api_as(app.test_client(), "admin_a", world)
    b_integration = world.integrations["b"]
    for path, data in (
        ("/integration/sync", {"sync-integration": b_integration, "sync-kinds": "calls"}),
        ("/integration/test", {"test-integration": b_integration}),
        ("/integration/rotate", {"rotate-integration": b_integration}),
    ):
        response = _post(client, f"{A}{path}", data, f"{A}/integration/")
        assert response.status_code == 400, path
        assert "That integration is not one of this organisation&#39;s." in response.get_data(as_text=True)
    revoke = _post(client, f"{A}/api-keys/revoke", {"revoke-row_id": ids["b"]["api-keys"]}, f"{A}/api-keys/")
    assert revoke.status_code == 400 and "not one of this organisation" in revoke.get_data(as_text=True)
    with in_app(), platform_bypass("test"):
        assert db.session.get(ApiKey, ids["b"]["api-keys"]).revoked_at is None
        assert db.session.scalar(select(func.count()).select_from(SyncRun)) == runs_before


def _flashes(client, path: str) -> str:
    return client.get(path).get_data(as_text=True)


def test_an_org_admin_adds_a_new_member_and_is_shown_a_one_time_link(app, world, in_app):
    client = api_as(app.test_client(), "admin_a", world)
    response = _post(
        client,
        f"{A}/members/add",
        {"add-email": "new@a.test", "add-role": "agent", "add-extension": "150"},
        f"{A}/members/",
    )
    assert response.status_code == 302
    page = _flashes(client, f"{A}/members/")
    link = re.search(r"http://localhost/set-password/[\w-]+", page)
    assert "new@a.test is now agent of org-a." in page and link
    assert "set-password" not in _flashes(client, f"{A}/members/")  # shown once
    assert client.get(link.group(0).replace("http://localhost", "")).status_code == 200


def test_org_admin_changes_and_removes_members_but_never_the_last_admin(app, world, in_app):
    client = api_as(app.test_client(), "admin_a", world)
    with in_app(), platform_bypass("test"):
        agent, admin = (_membership_of(world.a, EMAILS[who]).id for who in ("agent_a", "admin_a"))
    _post(
        client,
        f"{A}/members/change",
        {"change-row_id": agent, "change-role": "manager", "change-extension": "111"},
        f"{A}/members/",
    )
    demote = _post(client, f"{A}/members/change", {"change-row_id": admin, "change-role": "manager"}, f"{A}/members/")
    assert demote.status_code == 302
    page = _flashes(client, f"{A}/members/details/?id={admin}")
    assert "the last org admin of org-a" in page
    _post(client, f"{A}/members/remove", {"remove-row_id": agent}, f"{A}/members/")
    with in_app(), platform_bypass("test"):
        assert db.session.get(Membership, admin).role == "org_admin"
        assert db.session.get(Membership, agent) is None
        actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.org_id == world.a)))
    assert {"member.changed", "member.removed"} <= actions


def test_a_manager_is_not_offered_member_changes_and_cannot_post_them(app, world, in_app):
    client = api_as(app.test_client(), "manager_a", world)
    assert "Add a member" not in client.get(f"{A}/members/").get_data(as_text=True)
    with in_app(), platform_bypass("test"):
        agent = _membership_of(world.a, EMAILS["agent_a"]).id
    assert _post(client, f"{A}/members/remove", {"remove-row_id": agent}, f"{A}/members/").status_code == 403
    assert _post(client, f"{A}/settings/", {"name": "Taken"}, f"{A}/settings/").status_code == 403


def test_settings_are_saved_through_the_service_and_validated(app, world, in_app):
    client = api_as(app.test_client(), "admin_a", world)
    form = {
        "name": "Org A Ltd",
        "timezone": "Europe/London",
        "service_level_target": "0.9",
        "service_level_threshold_seconds": "30",
        "short_abandon_seconds": "4",
    }
    assert _post(client, f"{A}/settings/", form).status_code == 302
    bad = _post(client, f"{A}/settings/", {**form, "timezone": "Mars/Olympus"})
    assert bad.status_code == 400 and "is not an IANA time zone" in bad.get_data(as_text=True)
    with in_app(), tenant(world.a):
        org = db.session.get(Organization, world.a)
        assert (org.name, org.timezone, org.service_level_target) == ("Org A Ltd", "Europe/London", 0.9)


def test_an_api_key_is_shown_once_and_never_again(app, world, in_app):
    client = api_as(app.test_client(), "admin_a", world)
    _post(client, f"{A}/api-keys/create", {"key-name": "wallboard", "key-scope": "read"}, f"{A}/api-keys/")
    first = _flashes(client, f"{A}/api-keys/")
    key = re.search(r"vsk_\w+_[\w-]+", first).group(0)
    assert key not in _flashes(client, f"{A}/api-keys/")
    with in_app(), platform_bypass("test"):
        assert not any(key in (summary or "") for summary in db.session.scalars(select(AuditEvent.summary)))


EXPIRES = "2099-06-30"  # a summer date: org B's New York is UTC-4 that day


def _key_expiry(in_app, name: str):
    with in_app(), platform_bypass("test"):
        return db.session.scalar(select(ApiKey.expires_at).where(ApiKey.name == name))


def test_an_org_keys_expiry_date_is_the_end_of_that_day_in_the_orgs_own_zone(app, world, in_app):
    for principal, org in (("admin_a", "org-a"), ("admin_b", "org-b")):
        page = f"/admin/orgs/{org}/api-keys/"
        client = api_as(app.test_client(), principal, world)
        zone = "UTC" if org == "org-a" else "America/New_York"
        assert f"time zone ({zone})" in client.get(page).get_data(as_text=True)
        _post(
            client,
            f"/admin/orgs/{org}/api-keys/create",
            {"key-name": f"{org} wall", "key-scope": "read", "key-expires": EXPIRES},
            page,
        )
    assert _key_expiry(in_app, "org-a wall") == datetime(2099, 7, 1, tzinfo=UTC)
    assert _key_expiry(in_app, "org-b wall") == datetime(2099, 7, 1, 4, tzinfo=UTC)


def test_a_platform_keys_expiry_date_is_the_end_of_that_day_in_its_orgs_zone_or_utc(app, world, in_app):
    client = api_as(app.test_client(), "root", world)
    page = "/admin/platform/api-keys/"
    assert "(a platform key: UTC)" in client.get(page).get_data(as_text=True)
    for org_id, name in ((world.a, "a"), (world.b, "b"), (0, "platform")):
        _post(
            client,
            f"{page}create",
            {"key-org": org_id, "key-name": f"{name} wall", "key-scope": "read", "key-expires": EXPIRES},
            page,
        )
    assert _key_expiry(in_app, "a wall") == datetime(2099, 7, 1, tzinfo=UTC)
    assert _key_expiry(in_app, "b wall") == datetime(2099, 7, 1, 4, tzinfo=UTC)
    assert _key_expiry(in_app, "platform wall") == datetime(2099, 7, 1, tzinfo=UTC)


def test_a_platform_admin_revokes_any_orgs_key_and_rotates_any_orgs_webhook_token(app, world, in_app):
    with in_app():
        ids = _ids(world)
    client = api_as(app.test_client(), "root", world)
    keys_page, integrations_page = "/admin/platform/api-keys/", "/admin/platform/integrations/"
    revoked = _post(client, f"{keys_page}revoke", {"revoke-row_id": ids["b"]["api-keys"]}, keys_page)
    assert revoked.headers["Location"] == f"{keys_page}details/?id={ids['b']['api-keys']}"
    missing = _post(client, f"{keys_page}revoke", {"revoke-row_id": 10**9}, keys_page)
    assert missing.status_code == 400 and "No such API key." in missing.get_data(as_text=True)
    _post(client, f"{integrations_page}rotate", {"rotate-integration": world.integrations["a"]}, integrations_page)
    assert "webhook-url" in _flashes(client, integrations_page)
    with in_app(), platform_bypass("test"):
        assert db.session.get(ApiKey, ids["b"]["api-keys"]).revoked_at is not None
        assert db.session.get(ApiKey, ids["a"]["api-keys"]).revoked_at is None


def test_integration_credentials_are_never_rendered(app, world):
    page = api_as(app.test_client(), "admin_a", world).get(f"{A}/integration/").get_data(as_text=True)
    assert "test-api-key" not in page and "test-user-key" not in page
    root = api_as(app.test_client(), "root", world)
    detail = root.get(f"/admin/platform/integrations/details/?id={world.integrations['a']}").get_data(as_text=True)
    assert "test-api-key" not in detail and "credentials_encrypted" not in detail.lower()


def test_a_webhook_event_waiting_for_a_retry_shows_its_next_attempt_to_the_platform(app, world):
    next_attempt = T + timedelta(minutes=1)
    with app.app_context(), tenant(world.a):
        event = WebhookEvent(
            integration_id=world.integrations["a"],
            guid="retrying",
            event_type="IncomingCall",
            headers={},
            body="{broken",
            status="received",
            attempts=1,
            received_at=T,
            error="Attempt 1 failed, retrying: JSONDecodeError",
            retry_at=next_attempt,
        )
        db.session.add(event)
        db.session.commit()
        event_id = event.id
    root = api_as(app.test_client(), "root", world)
    page = root.get(f"/admin/platform/webhook-events/details/?id={event_id}").get_data(as_text=True)
    assert "Next attempt" in page and f"{next_attempt:%Y-%m-%d %H:%M} UTC" in page


def test_an_org_out_of_reach_falls_back_to_the_picker_with_a_flash(app, world):
    client = api_as(app.test_client(), "admin_b", world)
    response = client.get(f"{A}/calls/")
    assert response.headers["Location"] == "/admin/"
    assert "not available to you" in client.get("/admin/orgs/org-b/").get_data(as_text=True)
    switch = _post(client, "/admin/switch", {"org": "org-a"}, "/admin/orgs/org-b/")
    assert switch.headers["Location"] == "/admin/"


def test_a_platform_admin_acting_as_an_org_is_audited(app, world, in_app):
    client = api_as(app.test_client(), "root", world)
    response = _post(client, "/admin/switch", {"org": "org-b"}, "/admin/")
    assert response.headers["Location"] == "/admin/orgs/org-b/"
    with in_app(), platform_bypass("test"):
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "console.acted_as"))
        assert event.org_id == world.b and event.actor == EMAILS["root"]


def test_platform_admin_creates_an_org_adds_its_admin_and_assigns_a_number(app, world, in_app):
    client = api_as(app.test_client(), "root", world)
    _post(
        client,
        "/admin/platform/orgs/add",
        {"org-name": "Initech", "org-slug": "initech", "org-timezone": "Europe/Berlin"},
        "/admin/platform/orgs/",
    )
    with in_app(), platform_bypass("test"):
        initech = db.session.scalar(select(Organization.id).where(Organization.slug == "initech"))
    _post(
        client,
        "/admin/platform/memberships/add",
        {"member-org": initech, "member-email": "boss@initech.test", "member-role": "org_admin"},
        "/admin/platform/memberships/",
    )
    assert "set-password" in _flashes(client, "/admin/platform/memberships/")
    _post(
        client,
        "/admin/platform/numbers/assign",
        {"assign-numbers": [world.numbers["+12125550101"]], "assign-orgs": [initech, world.b]},
        "/admin/platform/numbers/",
    )
    with in_app(), platform_bypass("test"):
        holders = set(
            db.session.scalars(
                select(NumberAssignment.org_id).where(NumberAssignment.phone_number_id == world.numbers["+12125550101"])
            )
        )
        assert holders == {world.a, world.b, initech}
        assert _membership_of(initech, "boss@initech.test").role == "org_admin"


WINDOW = {"from": "2026-11-01", "to": "2026-11-03"}


@pytest.mark.parametrize("principal,scope", [("admin_a", {}), ("agent_a", {"role": "agent", "extension": "101"})])
def test_dashboard_figures_equal_the_kpi_engine_for_the_same_window(app, world, in_app, principal, scope):
    client = api_as(app.test_client(), principal, world)
    data = client.get(f"{A}/data", query_string=WINDOW).get_json()
    with in_app():
        accounts = (account_of(world.integrations["a"]),) if scope else ()
    with in_app(), tenant(Scope(org_id=world.a, accounts=accounts, **scope)):
        org = db.session.get(Organization, world.a)
        window = Window.parse(org_zone(org), WINDOW["from"], WINDOW["to"])
        assert data["metrics"] == for_display(summary(org, window))
        assert data["by_agent"] == for_display(by_agent(org, window))
        assert data["by_number"] == for_display(by_number(org, window))
    assert data["metrics"]["total_calls"] == (4 if principal == "admin_a" else 3)
    assert sum(bucket["total_calls"] for bucket in data["series"]) == data["metrics"]["total_calls"]


@pytest.mark.parametrize("principal", ["admin_a", "agent_a"])
def test_dashboard_figures_equal_the_apis_for_the_same_window(app, world, principal):
    client = api_as(app.test_client(), principal, world)
    dashboard = client.get(f"{A}/data", query_string=WINDOW).get_json()

    def api(path: str) -> dict:
        return client.get(f"/api/v1/orgs/org-a/{path}", query_string=WINDOW).get_json()

    assert dashboard["metrics"] == api("metrics")["metrics"]
    assert dashboard["by_agent"] == api("metrics/agents")["data"]
    assert dashboard["by_number"] == api("metrics/numbers")["data"]


def test_dashboard_page_shows_the_window_figures_and_the_zone(app, world):
    page = api_as(app.test_client(), "admin_a", world).get(f"{A}/", query_string=WINDOW).get_data(as_text=True)
    assert 'data-scope="metrics" data-kpi="total_calls" data-kind="count">4<' in page
    assert "All times and days in UTC" in page
    assert T.strftime("%Y-%m-%d") in page


def test_the_console_refuses_a_too_long_window_as_the_api_does_and_renders_a_valid_one_in_either_org(app, world):
    too_long = {"from": "2025-01-01", "to": "2026-11-03"}
    for principal, org in (("admin_a", "org-a"), ("admin_b", "org-b")):
        client = api_as(app.test_client(), principal, world)
        refused = client.get(f"/api/v1/orgs/{org}/calls", query_string=too_long)
        message = refused.get_json()["error"]["message"]
        assert refused.status_code == 400 and refused.get_json()["error"]["details"] == {"from": message}
        for page in (f"/admin/orgs/{org}/", f"/admin/orgs/{org}/calls/"):
            response = client.get(page, query_string=too_long)
            assert response.status_code == 400 and str(escape(message)) in response.get_data(as_text=True), page
            assert client.get(page, query_string=WINDOW).status_code == 200, page
        other = "org-b" if org == "org-a" else "org-a"
        assert _outcome(client.get(f"/admin/orgs/{other}/", query_string=too_long)) == "picker"
        assert client.get(f"/api/v1/orgs/{other}/calls", query_string=too_long).status_code == 404
