"""Authentication and the per-request tenant scope.

Deny by default: every endpoint needs a principal unless it is on `PUBLIC_ENDPOINTS`. Pages
authenticate with the session cookie; the JSON API also takes `Authorization: Bearer vsk_…`
(never a query-string key). A key principal never gets a session cookie, and when a Bearer header
is present it alone decides: a bad key is a 401 even if a valid cookie rides along.

Authentication only establishes the principal, and comes first in every request (an API key's
check takes its own short platform bypass, before anything else is decided). Then
`_enter_request_scope` enters one scope for the whole request, once: a route with an org in its URL
(`<org>`) resolves it through `vsync.auth.principals.resolve_org` (404 for an org the principal may
not see, the same as for one that does not exist), stores the result in `g.org_access` and enters
that org's tenant scope, for platform admins and platform keys too. Only the routes whose views
declare them platform-wide by nature (`platform_wide`) enter the platform bypass, and only for
platform principals; so do the org routes on `PLATFORM_ORG_ENDPOINTS`, which change what only the
platform may (an org's number assignments). Any other route runs with no scope, so a tenant-scoped read there
fails closed.

Before any scope is entered, the request is fenced (`vsync.tenancy.fence_request`) with its
principal, whether that is platform staff, and the org the resolver found: nothing later in the
request, on any route, may enter another org's tenant scope, or, for anyone but platform staff, the
platform bypass (the rules are `vsync.tenancy`'s). Public routes and refused requests are fenced
without a principal: no bypass, and no org unless what authenticates them names one (the webhook
receiver's token).

Two-factor sign-in (`vsync.services.twofactor`) is checked here too (`_two_factor_gate`): a signed-in
person without it who must have it (a platform admin under `VSYNC_TWO_FACTOR_PLATFORM_ADMINS`, or
anyone acting in an org that requires it) is sent to the two-factor page from every console page, and
answered 403 `two_factor_required` by the API (`/me` excepted, which says so); API keys are not people
and are unaffected. The code step of sign-in is public: it is reached with a half-sign-in, not a session.

An org under a billing lock answers its members and keys "suspended" on every org route, API and
console alike, once its scope is entered (`_suspended`); platform staff still reach it, to lift it.

CSRF (Flask-WTF) is checked on every unsafe request that a browser could forge: forms and
cookie-authenticated API calls. A request authenticated by a Bearer key is not checked, because a
browser never attaches one on its own; `CSRF_EXEMPT_ENDPOINTS` lists endpoints that authenticate
by other means.
"""

from __future__ import annotations

from flask import Flask, current_app, flash, g, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue

from vsync.auth.keys import verify_api_key
from vsync.auth.principals import (
    AnonymousPrincipal,
    OrgAccess,
    UserPrincipal,
    current_principal,
    load_user,
    resolve_org,
)
from vsync.auth.views import bp
from vsync.extensions import csrf, login_manager
from vsync.http import error_response, is_api_request
from vsync.models.types import utcnow
from vsync.services import twofactor
from vsync.services.billing.locks import SUSPENDED_CODE, active_lock
from vsync.tenancy import enter_platform_bypass, enter_scope, fence_request

# The webhook receiver authenticates by its own means (the integration's token and MightyCall's
# ApiKey, optionally a signature): it needs no principal and carries no CSRF token, by design.
# The API's OpenAPI document and reference describe the API and hold no data.
# A set-password link is its own credential (a one-time token), for someone who cannot sign in yet; a
# digest's unsubscribe link too, and mail clients post its one-click form without a CSRF token (RFC 8058).
# A forgotten password is asked for by someone who cannot sign in; an email change is confirmed by its
# link, which only the new address received.
PUBLIC_ENDPOINTS = {
    "static",
    "auth.login",
    "auth.two_factor",
    "auth.set_password",
    "auth.forgot_password",
    "auth.confirm_email",
    "auth.unsubscribe",
    "admin.static",
    "api.health",
    "webhooks.receive",
    "api-docs.openapi_json",
    "api_reference.docs",
}
CSRF_EXEMPT_ENDPOINTS: set[str] = {"webhooks.receive", "auth.unsubscribe"}
# Routes that change one org's platform-owned rows (its number assignments, which decide what traffic
# it sees; no tenant scope may write them). A platform principal acts there in the platform bypass,
# with the org of the URL resolved as on any org route; anyone else gets the org's tenant scope (and
# the route's 403).
PLATFORM_ORG_ENDPOINTS: set[str] = {"api.start_assignment", "api.end_assignment"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
# What a person who must turn two-factor on still reaches: the page to do it, signing out, and `/me`.
TWO_FACTOR_ENROLMENT_ENDPOINTS = {
    "auth.two_factor_settings",
    "auth.two_factor_confirm",
    "auth.logout",
    "auth.logout_everywhere",
    "api.me",
}


def platform_wide(endpoint: str | None) -> bool:
    """Whether the route acts across every organisation by nature, as its view declares
    (`platform_wide = True`; for a Flask-Admin view, less the endpoints it lists in `own_scope`).

    Read from the app's own view functions at every request, so each app knows its own routes and
    none learns another's. Such a route gets the platform bypass, and only for platform principals;
    everything else acts in one org (from its URL) or in none.
    """
    if endpoint is None:
        return False
    view = current_app.view_functions.get(endpoint)
    owner = getattr(view, "__self__", view)  # a Flask-Admin view's route is a method bound to the view
    return getattr(owner, "platform_wide", False) is True and endpoint.rpartition(".")[2] not in getattr(
        owner, "own_scope", ()
    )


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class _NoCookieForKeys(SecureCookieSessionInterface):
    """The Flask-Login recipe for header-authenticated requests: never write their session."""

    def save_session(self, app, session, response):
        if g.get("login_via_header"):
            return
        super().save_session(app, session, response)


@login_manager.user_loader
def _load_user(session_token: str) -> UserPrincipal | None:
    """The cookie's `_user_id` is a session token (`vsync.services.sessions`): an ended or expired
    session, or a cookie from before sessions were rows, is nobody."""
    if is_api_request() and request.headers.get("Authorization"):
        return None  # the header decides for API requests (see module docstring)
    return load_user(session_token)


@login_manager.request_loader
def _load_key(req):
    if not is_api_request():
        return None
    token = bearer_token()
    if token is None:
        if req.headers.get("Authorization"):
            g.auth_error = "The Authorization header must be 'Bearer <API key>'."
        return None
    g.login_via_header = True
    principal = verify_api_key(token)
    if principal is None:
        g.auth_error = "The API key is invalid, expired or revoked."
    return principal


@login_manager.unauthorized_handler
def _unauthorized():
    if is_api_request():
        return error_response(
            401, "unauthorized", g.get("auth_error") or "Sign in or send 'Authorization: Bearer <API key>'."
        )
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _require_principal():
    principal = current_principal()  # authenticates, before the fence (see the module docstring)
    public = request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None
    if public or not principal.is_authenticated:
        fence_request(None)
        return None if public else login_manager.unauthorized()
    return _enter_request_scope(principal)


def _csrf_unless_key() -> None:
    if (
        request.method in SAFE_METHODS
        or request.endpoint is None  # no route: the 404/405 follows
        or g.get("login_via_header")
        or request.endpoint in CSRF_EXEMPT_ENDPOINTS
    ):
        return None
    csrf.protect()


def _enter_request_scope(principal) -> ResponseReturnValue | None:
    org_reference = (request.view_args or {}).get("org")
    access = resolve_org(principal, org_reference) if org_reference is not None else None
    fence_request(principal.label, platform=principal.is_platform, org_id=None if access is None else access.org_id)
    if (refused := _two_factor_gate(principal, access)) is not None:
        return refused
    if access is None:
        if principal.is_platform and platform_wide(request.endpoint):
            enter_platform_bypass(f"{request.endpoint} by {principal.label}")
        return None
    g.org_access = access
    if request.endpoint in PLATFORM_ORG_ENDPOINTS and principal.is_platform:
        enter_platform_bypass(f"{request.endpoint} in {access.slug} by {principal.label}")
        return None
    enter_scope(access.scope)
    lock = None if principal.is_platform else active_lock(access.org_id, utcnow())
    return None if lock is None else _suspended(access, lock)


def _two_factor_gate(principal, access: OrgAccess | None) -> ResponseReturnValue | None:
    """Send a person who must have two-factor on, and has not, to turn it on (see the module docstring)."""
    if not isinstance(principal, UserPrincipal) or principal.two_factor:
        return None
    if request.endpoint in TWO_FACTOR_ENROLMENT_ENDPOINTS:
        return None
    platform = principal.is_platform and twofactor.platform_admins_must()
    if not (platform or (access is not None and access.require_two_factor)):
        return None
    why = "Platform admins" if platform else f"Everyone acting in {access.name if access else 'this org'}"
    message = f"{why} must have two-factor sign-in on. Turn it on to go on."
    if is_api_request():
        return error_response(403, "two_factor_required", message)
    flash(message, "error")
    return redirect(url_for("auth.two_factor_settings"))


def _suspended(access, lock) -> ResponseReturnValue:
    """The answer to a member or key of an org under a billing lock (`vsync.services.billing.locks`):
    on the API a 403 with its own code, in the console a page that says so."""
    until = f"{lock.ends_at:%Y-%m-%d %H:%M}" if lock.ends_at else None
    if is_api_request():
        return error_response(
            403,
            SUSPENDED_CODE,
            f"{access.name} is suspended for billing: {lock.reason}.",
            {"org": "suspended" + (f" until {until}Z" if until else "")},
        )
    return render_template("suspended.html", org_name=access.name, reason=lock.reason, until=until), 403


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.anonymous_user = AnonymousPrincipal
    # Flask-Login is untyped and its constructor sets None here, so a type checker takes the attribute for None.
    login_manager.login_view = "auth.login"  # pyright: ignore[reportAttributeAccessIssue]
    login_manager.session_protection = "strong"
    app.session_interface = _NoCookieForKeys()
    app.register_blueprint(bp)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # `_csrf_unless_key` decides, after authentication
    app.before_request(_require_principal)
    app.before_request(_csrf_unless_key)
