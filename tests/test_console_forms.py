"""Console forms and pages as a person meets them: a refused form comes back with what was typed and
the error under its field in words, org names tell orgs apart, and an error page (not Werkzeug's)
keeps the console's look; the API keeps answering JSON."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape
from sqlalchemy import func, select
from werkzeug.exceptions import InternalServerError

from tests.helpers import csrf_token
from tests.world import api_as
from vsync.errors import Conflict
from vsync.extensions import db
from vsync.http import _http_error
from vsync.models import ApiKey, Membership, Organization, PhoneNumber
from vsync.services import orgs
from vsync.tenancy import platform_bypass

A = "/admin/orgs/org-a"


def _post(client, path: str, data: dict):
    token = csrf_token(client, path.rsplit("/", 1)[0] + "/")
    return client.post(path, data={**data, "csrf_token": token})


def _value(page: str, name: str) -> str | None:
    """The value an input of the page holds."""
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*value="([^"]*)"', page) or re.search(
        rf'<input[^>]*value="([^"]*)"[^>]*name="{re.escape(name)}"', page
    )
    return match.group(1) if match else None


def _error_of(page: str, name: str) -> str:
    """The error shown under an input (the form macro puts it right after the field)."""
    start = page.index(f'name="{name}"')
    match = re.search(r'<div class="invalid-feedback d-block field-error">([^<]*)</div>', page[start:])
    assert match, f"no error under {name}"
    return match.group(1)


def _count(model, *where) -> int:
    with platform_bypass("test"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_refused_new_org_comes_back_with_what_was_typed_and_the_error_under_its_field(app, world, in_app):
    client = api_as(app.test_client(), "root", world)
    typed = {"org-name": "Initech Europe", "org-slug": "initech-eu", "org-timezone": "Europe/Berlinn"}
    answer = _post(client, "/admin/platform/orgs/add", typed)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert [_value(page, name) for name in typed] == list(typed.values())
    assert "is not an IANA time zone" in _error_of(page, "org-timezone")
    assert re.search(r"<details[^>]*open", page)  # the form is shown open, not folded away
    assert 'list="time-zones"' in page and '<option value="Europe/Berlin">' in page
    with in_app():
        assert _count(Organization, Organization.slug == "initech-eu") == 0
    assert _post(client, "/admin/platform/orgs/add", {**typed, "org-timezone": "Europe/Berlin"}).status_code == 302


@pytest.mark.parametrize(
    ("path", "typed", "field", "said", "model"),
    [
        (
            "/admin/platform/users/add",
            {"user-email": "not-an-address", "user-role": "user"},
            "user-email",
            "is not an email address",
            None,
        ),
        (
            "/admin/platform/numbers/add",
            {"number-e164": "12", "number-label": "Front desk"},
            "number-e164",
            "",
            PhoneNumber,
        ),
        (
            "/admin/platform/api-keys/create",
            {"key-name": "Wallboard", "key-scope": "read", "key-org": "0", "key-expires": "2001-01-01"},
            "key-expires",
            "",
            ApiKey,
        ),
    ],
)
def test_every_refused_platform_form_keeps_what_was_typed(app, world, in_app, path, typed, field, said, model):
    client = api_as(app.test_client(), "root", world)
    with in_app():
        before = _count(model) if model else 0
    answer = _post(client, path, typed)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert _value(page, field) == typed[field]
    assert said in _error_of(page, field) if said else "field-error" in page
    with in_app():
        assert (_count(model) if model else 0) == before


def test_a_refused_new_member_keeps_the_typed_email_and_extension(app, world, in_app):
    client = api_as(app.test_client(), "admin_a", world)
    with in_app():
        before = _count(Membership)
    answer = _post(client, f"{A}/members/add", {"add-email": "x@", "add-role": "agent", "add-extension": "777"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert (_value(page, "add-email"), _value(page, "add-extension")) == ("x@", "777")
    with in_app():
        assert _count(Membership) == before


def test_a_settings_error_names_the_setting_in_words_not_its_column(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    form = {
        "name": "Org-A",
        "timezone": "UTC",
        "service_level_target": "0.8",
        "service_level_threshold_seconds": "-10",
        "short_abandon_seconds": "5",
    }
    page = _post(client, f"{A}/settings/", form).get_data(as_text=True)
    said = _error_of(page, "service_level_threshold_seconds")
    assert said == "The service-level threshold is between 1 and 3600 seconds."
    assert "service_level_threshold_seconds is" not in page
    assert _value(page, "service_level_threshold_seconds") == "-10"


def test_org_names_are_unique_ignoring_case_when_created_and_when_renamed(app, world, in_app):
    with in_app(), platform_bypass("test"):
        with pytest.raises(Conflict) as created:
            orgs.create_org("ORG-b", "org-c")
        assert created.value.field == "name"
        assert orgs.get_org_by_slug("org-b").name == "Org-B"  # nothing else written, the session usable
        with pytest.raises(Conflict) as renamed:
            orgs.update_org_settings(db.session.get_one(Organization, world.a), name="org-B")
        assert renamed.value.field == "name"
        db.session.rollback()
        orgs.update_org_settings(db.session.get_one(Organization, world.a), name="ORG-A")  # its own name, recased
        db.session.commit()
    client = api_as(app.test_client(), "admin_b", world)
    form = {
        "name": "org-a",
        "timezone": "UTC",
        "service_level_target": "0.8",
        "service_level_threshold_seconds": "20",
        "short_abandon_seconds": "5",
    }
    page = _post(client, "/admin/orgs/org-b/settings/", form).get_data(as_text=True)
    assert "exists already" in _error_of(page, "name")
    with in_app(), platform_bypass("test"):
        assert db.session.get_one(Organization, world.b).name == "Org-B"


def test_an_unknown_console_page_is_a_404_page_in_the_consoles_look(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    for path in (f"{A}/calls/details/?id=987654", f"{A}/no-such-page", "/no-such-page"):
        answer = client.get(path)
        page = answer.get_data(as_text=True)
        assert answer.status_code == 404, path
        assert "Page not found" in page and 'class="navbar-brand"' in page and "Back to your organisations" in page
        assert answer.headers["X-Request-ID"] in page
    api = client.get("/api/v1/no-such-route")
    assert api.status_code == 404 and api.json["error"]["code"]


def test_a_failure_is_a_500_page_that_renders_without_the_database(app):
    with app.test_request_context("/admin/orgs/org-a/calls/"):
        page, status, _headers = _http_error(InternalServerError())
    assert status == 500 and "Something went wrong" in page and "Sign in" in page
    assert str(escape("It is logged")) in page
