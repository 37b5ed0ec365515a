"""Security headers on every answer vsync gives: console pages and their refusals, sign-in, the API's
JSON, CSV and errors, the API reference, the webhook receiver, static files, a 404 anywhere and a
server error. HSTS in production only; never a redirect to HTTPS (`make run` is plain HTTP)."""

from __future__ import annotations

from werkzeug.exceptions import InternalServerError

from tests.helpers import app_config
from tests.world import api_as
from vsync import create_app
from vsync.extensions import db
from vsync.models import Integration
from vsync.services.webhooks import rotate_webhook_token
from vsync.tenancy import platform_bypass


def _directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return dict((part.strip() + " ").split(" ", 1) for part in policy.split(";"))


def assert_secured(response, *, hsts: bool = False) -> None:
    directives = _directives(response)
    assert directives["default-src"].strip() == "'none'"
    assert directives["frame-ancestors"].strip() == "'none'"
    for directive in ("script-src", "style-src"):
        assert directives[directive].startswith("'self'")
        assert "'unsafe-inline'" not in directives[directive] and "'unsafe-eval'" not in directives[directive]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert ("Strict-Transport-Security" in response.headers) is hsts


def _webhook_token(app, world) -> str:
    with app.app_context(), platform_bypass("test setup"):
        token = rotate_webhook_token(db.session.get(Integration, world.integrations["a"]))
        db.session.commit()
    return token


def test_every_kind_of_answer_carries_the_security_headers(app, world):
    token = _webhook_token(app, world)
    clients = {who: api_as(app.test_client(), who, world) for who in ("anonymous", "admin_a", "agent_a", "read_a")}
    other_orgs_call = world.calls["b"]["b-1100"]
    answers = [  # (what, who asks, method, path, request arguments, status)
        ("sign-in page", "anonymous", "GET", "/login", {}, 200),
        ("sign-in without a CSRF token", "anonymous", "POST", "/login", {"data": {"email": "x@y.test"}}, 400),
        ("console page", "admin_a", "GET", "/admin/orgs/org-a/", {}, 200),
        ("console list", "admin_a", "GET", "/admin/orgs/org-a/calls/", {}, 200),
        ("console refusal", "agent_a", "GET", "/admin/orgs/org-a/sms/", {}, 403),
        ("console, not signed in", "anonymous", "GET", "/admin/orgs/org-a/", {}, 302),
        (
            "console, another org's row",
            "admin_a",
            "GET",
            f"/admin/orgs/org-a/calls/details/?id={other_orgs_call}",
            {},
            404,
        ),
        ("dashboard data", "admin_a", "GET", "/admin/orgs/org-a/data", {}, 200),
        ("page that does not exist", "anonymous", "GET", "/no-such-page", {}, 404),
        ("API JSON", "read_a", "GET", "/api/v1/orgs/org-a/calls", {}, 200),
        ("API CSV", "read_a", "GET", "/api/v1/orgs/org-a/calls?format=csv", {}, 200),
        ("API without a principal", "anonymous", "GET", "/api/v1/me", {}, 401),
        ("API route that does not exist", "read_a", "GET", "/api/v1/no-such-route", {}, 404),
        ("API bad input", "read_a", "GET", "/api/v1/orgs/org-a/calls?limit=0", {}, 400),
        ("API reference", "anonymous", "GET", "/api/v1/docs", {}, 200),
        ("OpenAPI document", "anonymous", "GET", "/api/v1/openapi.json", {}, 200),
        ("health", "anonymous", "GET", "/api/v1/health", {}, 200),
        ("webhook validation", "anonymous", "POST", f"/webhooks/mightycall/{token}", {"headers": {"Echo": "e1"}}, 200),
        (
            "webhook refused",
            "anonymous",
            "POST",
            f"/webhooks/mightycall/{token}",
            {"data": "{", "content_type": "application/json"},
            400,
        ),
        ("webhook, unknown token", "anonymous", "POST", "/webhooks/mightycall/no-such-token", {"json": []}, 404),
        ("static file", "anonymous", "GET", "/static/console/console.css", {}, 200),
        ("Flask-Admin static file", "anonymous", "GET", "/admin/static/admin/css/bootstrap4/admin.css", {}, 200),
    ]
    for what, who, method, path, arguments, status in answers:
        response = clients[who].open(path, method=method, **arguments)
        response.close()  # at once: a streamed answer (CSV) holds its request open until closed
        assert response.status_code == status, what
        assert_secured(response)


def test_a_server_error_carries_the_security_headers(world):
    """On an app that answers errors as in production (not re-raised to the test)."""
    broken = create_app(app_config(TESTING=False))

    @broken.get("/admin/broken")
    def _broken():
        raise RuntimeError("a bug")

    response = api_as(broken.test_client(), "admin_a", world).get("/admin/broken")
    assert response.status_code == InternalServerError.code
    assert_secured(response)


def test_hsts_is_sent_in_production_only_and_vsync_never_redirects_to_https(app):
    production = create_app(app_config(VSYNC_ENV="production"))
    for served in (production, app):
        response = served.test_client().get("/login")
        assert response.status_code == 200
        assert_secured(response, hsts=served is production)
    assert production.test_client().get("/login").headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )
