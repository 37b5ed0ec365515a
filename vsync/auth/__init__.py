"""Authentication and the per-request tenant scope.

Deny by default: every endpoint needs a principal unless it is on `PUBLIC_ENDPOINTS`. Pages
authenticate with the session cookie; the JSON API also takes `Authorization: Bearer vsk_…`
(never a query-string key). A key principal never gets a session cookie, and when a Bearer header
is present it alone decides: a bad key is a 401 even if a valid cookie rides along.

Once the principal is known, `_enter_request_scope` enters the tenant scope for the whole request:
an org key or a member user → that org; a platform admin or platform key → an explicit bypass.

CSRF (Flask-WTF) is checked on every unsafe request that a browser could forge: forms and
cookie-authenticated API calls. A request authenticated by a Bearer key is not checked, because a
browser never attaches one on its own; `CSRF_EXEMPT_ENDPOINTS` lists endpoints that authenticate
by other means.
"""
from __future__ import annotations

from flask import Flask, g, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user

from vsync.auth.keys import verify_api_key
from vsync.auth.principals import memberships_of
from vsync.auth.views import bp
from vsync.extensions import csrf, db, login_manager
from vsync.models import User
from vsync.tenancy import enter_platform_bypass, enter_tenant

PUBLIC_ENDPOINTS = {"static", "auth.login", "admin.static", "api.health", "webhooks.receive"}  # receiver: own auth
CSRF_EXEMPT_ENDPOINTS: set[str] = {"webhooks.receive"}  # MightyCall posts with no session: token+ApiKey auth
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
API_PREFIX = "/api/"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


class _NoCookieForKeys(SecureCookieSessionInterface):
    """The Flask-Login recipe for header-authenticated requests: never write their session."""

    def save_session(self, app, session, response):
        if g.get("login_via_header"):
            return
        super().save_session(app, session, response)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    if _is_api_request() and request.headers.get("Authorization"):
        return None  # the header decides for API requests (see module docstring)
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.is_active else None


@login_manager.request_loader
def _load_key(req):
    if not _is_api_request():
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
    if _is_api_request():
        from vsync.api.errors import error_response
        return error_response(401, "unauthorized",
                              g.get("auth_error") or "Sign in or send 'Authorization: Bearer <API key>'.")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _require_principal():
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    _enter_request_scope()
    return None


def _csrf_unless_key() -> None:
    if (request.method in SAFE_METHODS or request.endpoint is None  # no route: the 404/405 follows
            or g.get("login_via_header") or request.endpoint in CSRF_EXEMPT_ENDPOINTS):
        return
    csrf.protect()


def _enter_request_scope() -> None:
    principal = current_user._get_current_object()
    if principal.is_platform_admin:
        label = principal.label if getattr(principal, "is_api_key", False) else principal.email
        enter_platform_bypass(f"platform principal {label}")
        return
    if getattr(principal, "is_api_key", False):
        enter_tenant(principal.org_id)
        return
    memberships = memberships_of(principal.id)
    g.memberships = memberships
    if memberships:
        g.membership = memberships[0]
        enter_tenant(g.membership.org_id)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    app.session_interface = _NoCookieForKeys()
    app.register_blueprint(bp)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # `_csrf_unless_key` decides, after authentication
    app.before_request(_require_principal)
    app.before_request(_csrf_unless_key)
