"""The platform console, for platform admins: every organisation, user, membership, integration,
phone number, API key, sync run, webhook event and audit row, and an overview of all orgs.

These views run in the platform bypass (they are `platform_wide`, granted by `vsync.auth` to
platform admins only). Work that belongs inside one org (its figures, replaying its webhook events)
runs in that org's tenant scope instead: those endpoints (`own_scope`) get no bypass, and enter the
org's scope themselves, one org at a time. Every change goes through the services, as in the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateTimeBetweenFilter, DateTimeGreaterFilter
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

# typeshed's WTForms stubs predate SelectChoice (WTForms 3.2).
from wtforms.fields.choices import SelectChoice  # pyright: ignore[reportAttributeAccessIssue]

from vsync.admin.access import PlatformModelView, PlatformPage, done, kept, member_added, refused
from vsync.admin.actions import ApiKeyActions, IntegrationActions, show_webhook_token
from vsync.admin.display import (
    KEY_TIMES,
    RUN_TIMES,
    ago,
    periods_column,
    raw_payload_column,
    secret_free_column,
    time_column,
)
from vsync.admin.forms import (
    ActiveForm,
    AssignForm,
    CreateIntegrationForm,
    IntegrationActionForm,
    NumberForm,
    OrgForm,
    PlatformApiKeyForm,
    PlatformMemberForm,
    ReplayForm,
    RowForm,
    SyncForm,
    UnassignForm,
    UserForm,
    UserRoleForm,
    options,
)
from vsync.auth.principals import current_principal, reachable_orgs
from vsync.errors import DomainError
from vsync.extensions import db
from vsync.metrics import for_display, summary
from vsync.mightycall import MightyCallError
from vsync.models import AuditEvent, Integration, NumberAssignment, Organization, PhoneNumber, SyncRun, User
from vsync.models.orgs import ORG_ADMIN
from vsync.query import Window, org_zone
from vsync.services import integrations, members, numbers, orgs, sessions, twofactor, webhooks
from vsync.services.notifications import alerts
from vsync.services.sync import start_syncs
from vsync.tenancy import tenant


def _org_choices() -> list[SelectChoice]:
    return options(
        (org.id, f"{org.name} ({org.slug})")
        for org in db.session.scalars(select(Organization).order_by(Organization.name))
    )


def org_column(view, context, model, name) -> str:
    """An org id shown as its slug; the slugs are read once per request."""
    if "platform_org_slugs" not in g:
        g.platform_org_slugs = dict(db.session.execute(select(Organization.id, Organization.slug)).tuples().all())
    org_id = getattr(model, name)
    return "—" if org_id is None else g.platform_org_slugs.get(org_id, str(org_id))


def _act_as(view, context, model, name) -> Markup:
    return Markup('<a class="btn btn-sm btn-outline-primary" href="{}">Act as</a>').format(
        url_for("org_dashboard.index", org=model.slug)
    )


class OrgsView(PlatformModelView):
    column_list = (
        "name",
        "slug",
        "timezone",
        "service_level_target",
        "service_level_threshold_seconds",
        "short_abandon_seconds",
        "created_at",
        "act_as",
    )
    column_labels = {
        "service_level_target": "SL target",
        "service_level_threshold_seconds": "SL threshold (s)",
        "short_abandon_seconds": "Short abandon (s)",
        "act_as": "",
    }
    column_formatters = {"created_at": time_column, "act_as": _act_as}
    column_searchable_list = ("name", "slug")
    column_default_sort = "name"
    column_details_list = list(column_list[:-1])
    column_formatters_detail = {"created_at": time_column}
    list_intro = "admin/platform/org_create.html"

    def get_empty_list_message(self) -> str:
        return "No organisations yet: create the first one above."

    def org_form(self) -> OrgForm:
        return kept(OrgForm(prefix="org"))

    @expose("/add", methods=["POST"])
    def new(self):
        form = OrgForm(prefix="org")
        if not form.validate_on_submit():
            flash("An organisation needs a name, a slug and a time zone.", "error")
            return self.list_again(form)
        try:
            org = orgs.create_org(
                form.name.data or "", (form.slug.data or "").strip(), (form.timezone.data or "").strip()
            )
        except DomainError as exc:
            refused(form, exc)
            return self.list_again(form)
        done(f"{org.name} created. Add its first org admin under Memberships.")
        return redirect(url_for(".index_view"))


class UsersView(PlatformModelView):
    column_list = ("email", "role", "active", "two_factor_enabled_at", "created_at", "last_login_at")
    column_labels = {"two_factor_enabled_at": "Two-factor since"}
    column_formatters = {"created_at": time_column, "last_login_at": time_column, "two_factor_enabled_at": time_column}
    column_searchable_list = ("email",)
    column_filters = ("role", "active")
    column_details_list = list(column_list)
    column_formatters_detail = column_formatters
    list_intro = "admin/platform/user_create.html"
    details_extra = "admin/platform/user_actions.html"

    def user_form(self) -> UserForm:
        return kept(UserForm(prefix="user"))

    def user_forms(self, user) -> dict:
        return {
            "active_form": ActiveForm(prefix="active", row_id=user.id, active=not user.active),
            "role_form": UserRoleForm(prefix="role", row_id=user.id, role=user.role),
            "reset_form": RowForm(prefix="reset", row_id=user.id),
            "sign_out_form": RowForm(prefix="signout", row_id=user.id),
            "two_factor_form": RowForm(prefix="twofactor", row_id=user.id),
        }

    def active_session_count(self, user) -> int:
        return len(sessions.list_active_sessions(user.id))

    def _user(self, form, *, not_yourself: str | None = None) -> User | None:
        """The user a form names; with `not_yourself`, refused when that is the signed-in admin, so
        nobody locks themselves out of the platform console."""
        row = form.row_id.data if form.validate_on_submit() else None
        user = db.session.get(User, int(row)) if row and row.isdigit() else None
        if user is None:
            flash("No such user.", "error")
        elif not_yourself and user.id == current_user.id:
            flash(f"You cannot {not_yourself} yourself; ask another platform admin.", "error")
            return None
        return user

    def _show_link(self, user: User, token: str) -> None:
        link = url_for("auth.set_password", token=token, _external=True)
        done(f"A set-password link for {user.email} is ready.")
        flash(
            Markup(
                "Pass this one-time link on (72 hours, works once; not shown again): "
                "<code class='password-link'>{}</code>"
            ).format(link),
            "warning",
        )

    @expose("/add", methods=["POST"])
    def new(self):
        form = UserForm(prefix="user")
        if not form.validate_on_submit():
            flash("A user needs an email and a global role.", "error")
            return self.list_again(form)
        try:
            user = orgs.create_user(form.email.data or "", None, role=form.role.data)
            self._show_link(user, members.issue_password_link(user))
        except DomainError as exc:
            refused(form, exc)
            return self.list_again(form)
        return redirect(url_for(".index_view"))

    @expose("/active", methods=["POST"])
    def active(self):
        form = ActiveForm(prefix="active")
        if (user := self._user(form, not_yourself=None if form.active.data else "deactivate")) is not None:
            try:
                orgs.set_user_active(user, form.active.data)
                done(f"{user.email} is {'active' if user.active else 'deactivated: they can no longer sign in'}.")
            except DomainError as exc:
                refused(form, exc)
        return redirect(request.referrer or url_for(".index_view"))

    @expose("/role", methods=["POST"])
    def role(self):
        form = UserRoleForm(prefix="role")
        if (user := self._user(form, not_yourself="change the global role of")) is not None:
            try:
                orgs.set_global_role(user, form.role.data)
                done(f"{user.email} is {user.role.replace('_', ' ')}.")
            except DomainError as exc:
                refused(form, exc)
        return redirect(request.referrer or url_for(".index_view"))

    @expose("/reset", methods=["POST"])
    def reset(self):
        """Every session of the user ends now; the link sets a new password."""
        form = RowForm(prefix="reset")
        if (user := self._user(form)) is not None:
            self._show_link(user, members.reset_password(user))
        return redirect(request.referrer or url_for(".index_view"))

    @expose("/sign-out", methods=["POST"])
    def sign_out(self):
        form = RowForm(prefix="signout")
        if (user := self._user(form)) is not None:
            count = sessions.sign_out_everywhere(user.id, user.email)
            done(f"{user.email} is signed out everywhere ({count} session(s) ended).")
        return redirect(request.referrer or url_for(".index_view"))

    @expose("/two-factor-reset", methods=["POST"])
    def two_factor_reset(self):
        """The person lost their device: two-factor goes off, every session of theirs ends, and they
        are emailed (`vsync.services.twofactor.reset`)."""
        form = RowForm(prefix="twofactor")
        if (user := self._user(form, not_yourself="reset the two-factor sign-in of")) is not None:
            ended, _ = twofactor.reset(user)
            done(f"Two-factor sign-in of {user.email} is off; {ended} session(s) ended; they are emailed.")
        return redirect(request.referrer or url_for(".index_view"))


class MembershipsView(PlatformModelView):
    column_list = ("org.slug", "user.email", "role", "extension", "created_at")
    column_labels = {"org.slug": "Organisation", "user.email": "Email"}
    column_formatters = {"created_at": time_column}
    column_filters = ("org.slug", "role")
    column_searchable_list = ("user.email",)
    list_intro = "admin/platform/member_add.html"

    def member_form(self) -> PlatformMemberForm:
        form = PlatformMemberForm(prefix="member")
        form.org.choices = _org_choices()
        return kept(form)

    @expose("/add", methods=["POST"])
    def new(self):
        form = self.member_form()
        if not form.validate_on_submit():
            flash("; ".join(e for errors in form.errors.values() for e in errors), "error")
            return self.list_again(form)
        try:
            org = db.session.get_one(Organization, form.org.data)  # the choice was validated against the orgs
            member_added(
                members.add_member(org, form.email.data or "", form.role.data, extension=form.extension.data), org.slug
            )
        except DomainError as exc:
            refused(form, exc)
            return self.list_again(form)
        return redirect(url_for(".index_view"))


class IntegrationsView(IntegrationActions, PlatformModelView):
    """Every org's integrations; credentials are write-only and never listed."""

    column_list = ("org.slug", "name", "base_url", "status", "last_error", "created_at")
    column_labels = {"org.slug": "Organisation"}
    column_formatters = {"created_at": time_column, "last_error": secret_free_column()}
    column_details_list = ["org.slug", "name", "base_url", "status", "last_error", "sync_cursors", "created_at"]
    column_formatters_detail = {"created_at": time_column, "last_error": secret_free_column(None)}
    list_intro = "admin/platform/integration_create.html"
    details_extra = "admin/platform/integration_actions.html"

    def create_integration_form(self) -> CreateIntegrationForm:
        form = CreateIntegrationForm(prefix="integration")
        form.org.choices = _org_choices()
        return kept(form)

    def action_forms(self, integration) -> dict:
        forms = {
            "test_form": IntegrationActionForm(prefix="test"),
            "sync_form": SyncForm(prefix="sync"),
            "rotate_form": IntegrationActionForm(prefix="rotate"),
        }
        for form in forms.values():
            form.integration.choices = options([(integration.id, integration.name)])
            form.integration.data = integration.id
        return forms

    def integration_choices(self) -> Sequence[Integration]:
        return db.session.scalars(select(Integration)).all()

    def back(self):
        return redirect(request.referrer or url_for(".index_view"))

    def refused_page(self, name: str, form):
        return self.back()

    @expose("/add", methods=["POST"])
    def new(self):
        form = self.create_integration_form()
        if not form.validate_on_submit():
            flash("; ".join(e for errors in form.errors.values() for e in errors), "error")
            return self.list_again(form)
        try:
            integration, token = integrations.create_integration(
                db.session.get_one(Organization, form.org.data),  # the choice was validated against the orgs
                api_key=form.api_key.data or "",
                user_key=form.user_key.data or "",
                base_url=form.base_url.data or "",
            )
        except DomainError as exc:
            refused(form, exc)
            return self.list_again(form)
        done(f"{integration.name} connected.")
        show_webhook_token(token)
        return redirect(url_for(".index_view"))


_history = periods_column(lambda period: f"{period.org.slug}: ", "<em>unassigned</em>")


class NumbersView(PlatformModelView):
    column_list = ("e164", "label", "history")
    column_labels = {"e164": "Number", "history": "Assignments (UTC)"}
    column_formatters = {"history": _history}
    column_searchable_list = ("e164", "label")
    column_default_sort = "e164"
    column_details_list = ["e164", "label", "history", "created_at"]
    column_formatters_detail = {"history": _history, "created_at": time_column}
    list_intro = "admin/platform/number_forms.html"
    details_extra = "admin/platform/number_unassign.html"

    def number_forms(self) -> dict:
        assign = AssignForm(prefix="assign")
        assign.numbers.choices = options(
            (n.id, n.e164) for n in db.session.scalars(select(PhoneNumber).order_by(PhoneNumber.e164))
        )
        assign.orgs.choices = _org_choices()
        return {"number_form": kept(NumberForm(prefix="number")), "assign_form": kept(assign)}

    def open_periods(self, number) -> list:
        return [
            (p, UnassignForm(prefix="unassign", assignment=p.id)) for p in number.assignments if p.unassigned_at is None
        ]

    @expose("/add", methods=["POST"])
    def new(self):
        form = NumberForm(prefix="number")
        if not form.validate_on_submit():
            return self.list_again(form)
        try:
            number = numbers.add_number(form.e164.data or "", label=form.label.data)
        except DomainError as exc:
            refused(form, exc)
            return self.list_again(form)
        done(f"{number.e164} added. Assign it to an organisation below.")
        return redirect(url_for(".index_view"))

    @expose("/assign", methods=["POST"])
    def assign(self):
        form = self.number_forms()["assign_form"]
        if not form.validate_on_submit():
            flash("Choose one or more numbers and one or more organisations.", "error")
            return self.list_again(form)
        at = form.at.data.replace(tzinfo=UTC) if form.at.data else None
        try:
            # Both choices were validated against the stored numbers and orgs.
            made = [
                numbers.assign_number(
                    db.session.get_one(Organization, org_id), db.session.get_one(PhoneNumber, number_id), at=at
                )
                for number_id in form.numbers.data
                for org_id in form.orgs.data
            ]
        except DomainError as exc:
            refused(form, exc)
            return self.list_again(form)
        done(f"{len(made)} assignment(s) made.")
        return redirect(url_for(".index_view"))

    @expose("/unassign", methods=["POST"])
    def unassign(self):
        form = UnassignForm(prefix="unassign")
        row = form.assignment.data if form.validate_on_submit() else None
        period = db.session.get(NumberAssignment, int(row)) if row and row.isdigit() else None
        if period is None:
            flash("No such assignment.", "error")
            return redirect(url_for(".index_view"))
        at = form.at.data.replace(tzinfo=UTC) if form.at.data else None
        try:
            numbers.unassign_number(period.org, period.phone_number, at=at)
            done(f"{period.phone_number.e164} unassigned from {period.org.slug}.")
        except DomainError as exc:
            refused(form, exc)
        return redirect(url_for(".details_view", id=period.phone_number_id))


class ApiKeysView(ApiKeyActions, PlatformModelView):
    column_list = ("org_id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    column_labels = {"org_id": "Organisation (none: platform key)"}
    column_formatters = {**dict.fromkeys(KEY_TIMES, time_column), "org_id": org_column}
    column_details_list = list(column_list)
    column_formatters_detail = column_formatters
    list_intro = "admin/platform/key_create.html"
    details_extra = "admin/console/key_revoke.html"
    key_not_found = "No such API key."

    def key_forms(self, key=None) -> dict:
        form = PlatformApiKeyForm(prefix="key")
        form.org.choices = options([(0, "every organisation (platform key)")]) + _org_choices()
        return {"create_form": kept(form), "revoke_form": RowForm(prefix="revoke", row_id=key.id if key else None)}

    def key_org(self, form) -> Organization | None:
        return db.session.get(Organization, form.org.data) if form.org.data else None


class SyncRunsView(PlatformModelView):
    column_list = ("org_id", "created_at", "kind", "trigger", "status", "progress", "retries", "error")
    column_labels = {"org_id": "Organisation", "created_at": "Queued"}
    column_formatters = {
        "org_id": org_column,
        "created_at": time_column,
        "progress": lambda v, c, m, n: f"{m.progress * 100:.0f} %",
        "error": secret_free_column(),
    }
    column_filters = ("org_id", "kind", "status")
    column_default_sort = ("id", True)
    column_formatters_detail = {
        **dict.fromkeys(RUN_TIMES, time_column),
        "org_id": org_column,
        "error": secret_free_column(None),
    }
    details_extra = "admin/platform/run_retry.html"

    @expose("/retry", methods=["POST"])
    def retry(self):
        form = RowForm(prefix="retry")
        row = form.row_id.data if form.validate_on_submit() else None
        run = db.session.get(SyncRun, int(row)) if row and row.isdigit() else None
        if run is None:
            flash("No such sync run.", "error")
            return redirect(url_for(".index_view"))
        integration = db.session.get_one(Integration, run.integration_id)  # a run's integration is a foreign key
        try:
            started = start_syncs(
                integration,
                [run.kind],
                since=run.window_start,
                until=run.window_end,
                requested_by_user_id=current_user.id,
            )
            flash(f"Sync {run.kind} started again ({started[0][0].status}).", "success")
        except (DomainError, MightyCallError) as exc:
            db.session.rollback()
            flash(getattr(exc, "message", str(exc)), "error")
        return redirect(url_for(".index_view"))


class WebhookEventsView(PlatformModelView):
    """Deliveries as stored: MightyCall's `ApiKey` was replaced before writing by whether it matched;
    the body and headers are shown redacted all the same (`vsync.redaction`)."""

    column_list = ("org_id", "received_at", "event_type", "status", "attempts", "error")
    column_formatters = {"org_id": org_column, "received_at": time_column, "error": secret_free_column()}
    column_filters = ("org_id", "status", "event_type")
    column_default_sort = ("id", True)
    column_details_list = [
        "org_id",
        "received_at",
        "processed_at",
        "guid",
        "event_type",
        "status",
        "attempts",
        "retry_at",
        "error",
        "headers",
        "body",
    ]
    column_labels = {"org_id": "Organisation", "retry_at": "Next attempt"}
    column_formatters_detail = {
        "org_id": org_column,
        "received_at": time_column,
        "processed_at": time_column,
        "retry_at": time_column,
        "error": secret_free_column(None),
        "headers": raw_payload_column,
        "body": raw_payload_column,
    }
    list_intro = "admin/platform/webhook_replay.html"
    own_scope = ("replay",)

    def replay_form(self) -> ReplayForm:
        form = ReplayForm(prefix="replay")
        form.org.choices = options(
            (access.org_id, f"{access.name} ({access.slug})") for access in reachable_orgs(current_principal())
        )
        return form

    @expose("/replay", methods=["POST"])
    def replay(self):
        """In the chosen org's own tenant scope (this endpoint gets no bypass): replay is that org's work."""
        form = self.replay_form()
        if not form.validate_on_submit():
            flash("Choose an organisation.", "error")
            return redirect(url_for(".index_view"))
        with tenant(form.org.data, role=ORG_ADMIN):
            count = webhooks.replay_events(form.org.data, failed_only=True)
        flash(f"{count} failed or unmatched event(s) queued again.", "success")
        return redirect(url_for(".index_view"))


class AuditView(PlatformModelView):
    column_list = ("created_at", "org_id", "actor", "action", "target_type", "target_id", "summary", "ip")
    column_labels = {"org_id": "Organisation"}
    column_formatters = {"org_id": org_column, "created_at": time_column, "summary": secret_free_column()}
    column_filters = (
        "org_id",
        "actor",
        "action",
        DateTimeBetweenFilter(AuditEvent.created_at, "Time (UTC)"),
        DateTimeGreaterFilter(AuditEvent.created_at, "Time (UTC)"),
    )
    column_searchable_list = ("actor", "action", "summary")
    column_default_sort = ("id", True)
    column_formatters_detail = {"org_id": org_column, "created_at": time_column, "summary": secret_free_column(None)}


class OverviewView(PlatformPage):
    """Every org side by side: today's figures (each computed in that org's own tenant scope, by the
    same `vsync.metrics.summary` as its dashboard) and how fresh its data is."""

    own_scope = ("index",)

    @expose("/")
    def index(self):
        rows = []
        for access in reachable_orgs(current_principal()):
            with tenant(access.org_id, role=ORG_ADMIN):
                org = db.session.get_one(Organization, access.org_id)  # reachable: it exists
                kpis = for_display(summary(org, Window.today(org_zone(org))))
                last = db.session.scalar(
                    select(SyncRun.finished_at)
                    .where(SyncRun.status == "succeeded")
                    .order_by(SyncRun.finished_at.desc())
                    .limit(1)
                )
                failed = db.session.scalar(
                    select(SyncRun.error).where(SyncRun.status == "failed").order_by(SyncRun.id.desc()).limit(1)
                )
                rows.append(
                    {"access": access, "kpis": kpis, "synced": ago(last) if last else "never", "failed": failed}
                )
        return self.render("admin/platform/overview.html", rows=rows)


class AlertsView(PlatformPage):
    """Every org's alert history: the firings of its own rules and of the platform's checks (a failing
    sync, silent webhooks) that platform admins are emailed, newest first."""

    @expose("/")
    def index(self):
        return self.render(
            "admin/platform/alerts.html",
            events=alerts.platform_history(),
            descriptions=alerts.DESCRIPTIONS,
            shown=alerts.shown,
        )
