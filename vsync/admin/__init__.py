"""The Flask-Admin console at /admin: the org console (`/admin/orgs/<org>/…`) and, for platform
admins, the platform console (`/admin/platform/…`).

The console acts in one org at a time, named in the URL, so every request says which org it is
for. `vsync.auth` resolves that org for every request through the API's resolver
(`vsync.auth.principals.resolve_org`) and enters its tenant scope, as for `/api/v1/orgs/<org>/…`;
a stale or forged org (one the user may no longer reach) falls back to the org picker with a flash,
never to another org's data. Building a console URL fills in the org of the request, so menus and
links stay in it; the menu builds its links at every render (`ConsoleAdmin`), never once per
process. Switching org is a posted form, audited (`console.org_switched`; for a platform
admin, "act as org": `console.acted_as`).

Platform views declare themselves platform-wide (`platform_wide`, read by `vsync.auth` at every
request) and get the platform bypass, except the endpoints a view lists in `own_scope`, which enter
one org's tenant scope themselves.
"""

from __future__ import annotations

from flask import Flask, current_app, flash, g, redirect, url_for
from flask_admin import Admin, AdminIndexView, BaseView, expose
from flask_admin.menu import MenuView
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import DataRequired

from vsync.admin import account, billing, dashboard, display, floor, org, outbox, platform, support
from vsync.admin.access import ConsoleAccess
from vsync.auth.principals import current_principal, reachable_orgs, resolve_org
from vsync.errors import NotFound
from vsync.extensions import db
from vsync.models import (
    ApiKey,
    AuditEvent,
    Call,
    Integration,
    Membership,
    Organization,
    OutboundEmail,
    PhoneNumber,
    Recording,
    SmsMessage,
    SyncRun,
    Ticket,
    User,
    WebhookEvent,
)
from vsync.services import audit, orgs

ORG_URL = "/admin/orgs/<org>"
PLATFORM_CATEGORY = "Platform"
# The org's own setup, one dropdown: the daily pages stay in the navigation bar, which fits one line at 1366 px.
ORG_CATEGORY = "Organisation"


class ConsoleAdmin(Admin):
    """Flask-Admin with a menu built for the request at every render.

    Flask-Admin's menu items keep the URL they built the first time they were rendered
    (`MenuView._cached_url`), for the life of the process. Console URLs carry the org of the request
    (`/admin/orgs/<org>/…`), so a kept one sent every later org's menu to the first org's pages:
    refused to its own members, and shown to a platform admin acting as another org as if it were
    that org's. Every view joins the menu here, the index included, so no menu link is ever kept.
    """

    def _add_view_to_menu(self, view: BaseView) -> None:
        self.add_menu_item(MenuView(view.name or "", view, cache=False), view.category)


class SwitchOrgForm(FlaskForm):
    org = HiddenField(validators=[DataRequired()])


class HomeView(ConsoleAccess, AdminIndexView):
    """The org picker. Someone in one org only goes straight to its dashboard. The brand links to it,
    so it takes no place in the menu."""

    def is_visible(self) -> bool:
        return False

    @expose("/")
    def index(self):
        orgs = reachable_orgs(current_principal())
        if len(orgs) == 1 and not current_user.is_platform:
            return redirect(url_for("org_dashboard.index", org=orgs[0].slug))
        return self.render("admin/home.html", orgs=orgs, switch_form=SwitchOrgForm())

    @expose("/switch", methods=["POST"])
    def switch(self):
        form = SwitchOrgForm()
        if not form.validate_on_submit():
            flash("Choose an organisation.", "error")
            return redirect(url_for(".index"))
        principal = current_principal()
        try:
            access = resolve_org(principal, form.org.data or "")
        except NotFound:
            flash("That organisation is not available to you. Choose one of yours.", "error")
            return redirect(url_for(".index"))
        action = "console.acted_as" if principal.is_platform else "console.org_switched"
        audit.record(action, org_id=access.org_id, summary=f"{principal.label} in {access.slug} as {access.role}")
        db.session.commit()
        flash(f"You are in {access.name} as {access.role.replace('_', ' ')}.", "info")
        return redirect(url_for("org_dashboard.index", org=access.slug))


def _org_views() -> list:
    def at(path: str, endpoint: str, **kwargs) -> dict:
        return {"url": f"{ORG_URL}{path}", "endpoint": endpoint, **kwargs}

    def setup(path: str, endpoint: str) -> dict:
        return at(path, endpoint, category=ORG_CATEGORY)

    return [
        dashboard.DashboardView(name="Dashboard", **at("/", "org_dashboard")),
        floor.FloorView(name="Live floor", **at("/floor", "org_floor")),
        org.CallsView(Call, name="Calls", **at("/calls", "org_calls")),
        org.RecordingsView(Recording, name="Recordings", **at("/recordings", "org_recordings")),
        org.SmsView(SmsMessage, name="SMS", **at("/sms", "org_sms")),
        support.TicketsView(Ticket, name="Support", **at("/tickets", "org_tickets")),
        org.NumbersView(PhoneNumber, name="Numbers", **setup("/numbers", "org_numbers")),
        org.MembersView(Membership, name="Members", **setup("/members", "org_members")),
        org.IntegrationView(name="Integration", **setup("/integration", "org_integration")),
        org.SyncRunsView(SyncRun, name="Sync runs", **setup("/sync-runs", "org_sync_runs")),
        org.ApiKeysView(ApiKey, name="API keys", **setup("/api-keys", "org_api_keys")),
        org.SettingsView(name="Settings", **setup("/settings", "org_settings")),
        org.AlertsView(name="Alerts", **setup("/alerts", "org_alerts")),
        billing.OrgBillingView(name="Billing", **setup("/billing", "org_billing")),
        org.NotificationsView(name="My notifications", **setup("/notifications", "org_notifications")),
    ]


def _platform_views() -> list:
    def at(path: str, endpoint: str, **kwargs) -> dict:
        return {"url": f"/admin/platform{path}", "endpoint": endpoint, "category": PLATFORM_CATEGORY, **kwargs}

    return [
        platform.OverviewView(name="Overview", **at("/overview", "platform_overview")),
        floor.PlatformFloorView(name="Live floor", **at("/floor", "platform_floor")),
        platform.OrgsView(Organization, name="Organisations", **at("/orgs", "platform_orgs")),
        platform.UsersView(User, name="Users", **at("/users", "platform_users")),
        platform.MembershipsView(Membership, name="Memberships", **at("/memberships", "platform_memberships")),
        platform.IntegrationsView(Integration, name="Integrations", **at("/integrations", "platform_integrations")),
        platform.NumbersView(PhoneNumber, name="Phone numbers", **at("/numbers", "platform_numbers")),
        platform.ApiKeysView(ApiKey, name="API keys", **at("/api-keys", "platform_api_keys")),
        platform.SyncRunsView(SyncRun, name="Sync runs", **at("/sync-runs", "platform_sync_runs")),
        platform.WebhookEventsView(WebhookEvent, name="Webhook events", **at("/webhook-events", "platform_webhooks")),
        platform.AuditView(AuditEvent, name="Audit log", **at("/audit", "platform_audit")),
        platform.AlertsView(name="Alerts", **at("/alerts", "platform_alerts")),
        outbox.OutboxView(OutboundEmail, name="Outbox", **at("/outbox", "platform_outbox")),
        support.TicketQueueView(Ticket, name="Support queue", **at("/tickets", "platform_tickets")),
        billing.PlatformBillingView(name="Billing", **at("/billing", "platform_billing")),
    ]


def _org_of_request(endpoint: str, values: dict) -> None:
    """`url_for` of a console endpoint with `<org>` fills in the org of this request."""
    access = g.get("org_access")
    if access is not None and "org" not in values and current_app.url_map.is_endpoint_expecting(endpoint, "org"):
        values["org"] = access.slug


def _console_globals() -> dict:
    def console_orgs():
        return reachable_orgs(current_principal()) if current_user.is_authenticated else []

    return {"console_orgs": console_orgs, "switch_form": SwitchOrgForm}


def init_app(app: Flask) -> None:
    admin = ConsoleAdmin(
        name="vsync", index_view=HomeView(), theme=Bootstrap4Theme(base_template="admin/vsync_base.html", fluid=True)
    )
    for view in (*_org_views(), *_platform_views()):
        admin.add_view(view)
    admin.add_view(account.AccountView(name="Your account", url="/account", endpoint="account"))
    admin.init_app(app)
    app.url_defaults(_org_of_request)
    app.context_processor(_console_globals)
    app.jinja_env.globals["time_zones"] = orgs.time_zones  # a global: the form macros are imported without context
    display.init_app(app)
