"""The org console: one organisation's calls, SMS, numbers, recordings, members, integration, sync
runs, API keys and settings (the dashboard is `vsync.admin.dashboard`).

Lists are Flask-Admin model views over the tenant filter (`vsync.admin.access`); every change is a
small form posted to the view, which calls the one service function the CLI and API use, commits,
and flashes what happened. A role that may not act is not shown the form, and a post from it is the
403 page. Rows named in a post are looked up in the org's own scope, so another org's id is a form
error and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from vsync.admin.access import OrgModelView, OrgPage, done, member_added, refused
from vsync.admin.actions import ApiKeyActions, IntegrationActions, show_webhook_token
from vsync.admin.display import (
    KEY_TIMES,
    RUN_TIMES,
    duration_column,
    periods_column,
    secret_free_column,
    time_column,
)
from vsync.admin.forms import (
    WEEKDAYS,
    AlertRuleForm,
    ApiKeyForm,
    BusinessHoursForm,
    ChangeMemberForm,
    CredentialsForm,
    IntegrationActionForm,
    MemberForm,
    PreferencesForm,
    RowForm,
    SettingsForm,
    SmsForm,
    SyncForm,
    options,
)
from vsync.errors import DomainError
from vsync.extensions import db
from vsync.models import Call, CallEvent, Integration, Membership, Organization, PhoneNumber, Recording
from vsync.models.orgs import MANAGER, ORG_ADMIN
from vsync.query import Filters, Window, number_ref, org_zone
from vsync.services import integrations, members, orgs, sms, traffic
from vsync.services.notifications import alerts, preferences
from vsync.services.traffic import Search, call_criteria

CALL_FILTERS = ("from", "to", "direction", "status", "number", "agent", "q")
CALL_STATUSES = ("answered", "missed", "voicemail", "dropped", "other")


def org_url(endpoint: str, **values) -> str:
    return url_for(endpoint, org=g.org_access.slug, **values)


def _call_filters() -> dict[str, str]:
    return {name: value for name in CALL_FILTERS if (value := request.args.get(name, "").strip())}


class CallsView(OrgModelView):
    """Calls with the API's filters (window, direction, status, number, agent, search); the same
    query string exports them as CSV through the API. The detail page names the call's fields, its
    events and its recording (played through the API's audio route), never MightyCall's record."""

    column_list = ("started_at", "direction", "status", "from_number", "to_number", "agent_extension", "duration_ms")
    column_details_list = [
        "external_id",
        "started_at",
        "answered_at",
        "ended_at",
        "direction",
        "status",
        "from_number",
        "to_number",
        "agent_extension",
        "duration_ms",
        "ring_ms",
    ]
    column_labels = {
        "started_at": "Started",
        "agent_extension": "Agent",
        "duration_ms": "Duration",
        "from_number": "From",
        "to_number": "To",
        "external_id": "MightyCall call id",
        "answered_at": "Answered",
        "ended_at": "Ended",
        "ring_ms": "Rang",
    }
    column_formatters = {"started_at": time_column, "duration_ms": duration_column}
    column_formatters_detail = {
        **dict.fromkeys(("started_at", "answered_at", "ended_at"), time_column),
        "duration_ms": duration_column,
        "ring_ms": duration_column,
    }
    column_sortable_list = ("started_at", "direction", "status", "duration_ms")
    column_default_sort = ("started_at", True)
    list_intro = "admin/console/calls_filters.html"
    details_template = "admin/console/call_details.html"

    def get_empty_list_message(self) -> str:
        if _call_filters():
            return "No calls match these filters. Widen the window or clear a filter."
        return "No calls yet: connect MightyCall under Integration and run a sync."

    def _criteria(self) -> list | None:
        """The criteria of the page's filters, read once per request; None when they are refused,
        which is said once, as a flashed form error (the window by the API's parser, with its message)."""
        if "call_criteria" in g:
            return g.call_criteria
        args, criteria = _call_filters(), []
        try:
            if "from" in args or "to" in args:
                window = Window.parse(org_zone(self.org), args.get("from"), args.get("to"))
                criteria += [Call.started_at >= window.start, Call.started_at < window.end]
            filters = Filters(
                number=number_ref(args.get("number")), agent=args.get("agent"), direction=args.get("direction")
            )
            search = Search(args["q"]) if "q" in args else None
        except DomainError as exc:
            flash(exc.message, "error")
            criteria = None
        else:
            status = args["status"] if args.get("status") in CALL_STATUSES else None
            criteria += [*filters.criteria(), *call_criteria(status=status, search=search)]
        g.call_criteria = criteria
        return criteria

    def _filtered(self, query):
        criteria = self._criteria()
        return query.filter(False) if criteria is None else query.filter(*criteria)

    @expose("/")
    def index_view(self):
        page = super().index_view()
        return (page, 400) if self._criteria() is None else page

    def get_query(self):
        return self._filtered(super().get_query())

    def get_count_query(self):
        return self._filtered(super().get_count_query())

    def _get_list_url(self, view_args):
        url = super()._get_list_url(view_args)
        extra = {k: v for k, v in _call_filters().items() if k not in view_args.extra_args}
        return f"{url}{'&' if '?' in url else '?'}{urlencode(extra)}" if extra else url

    def filter_context(self) -> dict:
        numbers = db.session.scalars(select(PhoneNumber).order_by(PhoneNumber.e164)).all()
        query = urlencode({"format": "csv", **_call_filters()})
        return {
            "args": _call_filters(),
            "numbers": numbers,
            "statuses": CALL_STATUSES,
            "csv_url": f"/api/v1/orgs/{g.org_access.slug}/calls?{query}",
        }

    def call_extras(self, call: Call) -> dict:
        events = db.session.scalars(
            select(CallEvent)
            .where(CallEvent.account_id == call.account_id, CallEvent.call_external_id == call.external_id)
            .order_by(CallEvent.occurred_at, CallEvent.id)
        ).all()
        recordings = db.session.scalars(
            select(Recording)
            .where(Recording.account_id == call.account_id, Recording.call_external_id == call.external_id)
            .order_by(Recording.id)
        ).all()
        return {"events": events, "recordings": recordings}


def audio_url(recording_id: int) -> str:
    """The API's authorised audio route: the provider's URL is never handed to a browser."""
    return f"/api/v1/orgs/{g.org_access.slug}/recordings/{recording_id}/audio"


def _player(view, context, model, name) -> Markup:
    return Markup('<audio controls preload="none" src="{}"></audio>').format(audio_url(model.id))


class RecordingsView(OrgModelView):
    column_list = ("started_at", "call_external_id", "duration_ms", "player")
    column_labels = {"started_at": "Started", "call_external_id": "Call", "duration_ms": "Length", "player": "Play"}
    column_formatters = {"started_at": time_column, "duration_ms": duration_column, "player": _player}
    column_sortable_list = ("started_at",)
    column_default_sort = ("started_at", True)
    column_details_list = ["started_at", "call_external_id", "file_name", "duration_ms", "player"]
    column_formatters_detail = column_formatters

    def get_empty_list_message(self) -> str:
        return "No recordings yet: they arrive with the calls a sync brings in."


class SmsView(OrgPage):
    """Text messages as conversations (`vsync.services.sms`): the list, most recently active first
    and searchable by number or text, and each conversation's thread with a reply form; a new message
    to anyone from one of the org's numbers. Managers and org admins only, like the messages."""

    least_role = MANAGER
    write_role = MANAGER

    def _form(self, from_number: str | None = None, to: str | None = None) -> SmsForm:
        form = SmsForm(prefix="sms")
        form.from_number.choices = options((e, e) for e in sms.sendable_numbers(self.org))
        if not form.is_submitted():
            form.from_number.data = from_number
            form.to.data = to
        return form

    def _list(self, form: SmsForm | None = None, status: int = 200):
        q = request.args.get("q", "").strip()
        try:
            found = sms.conversations(Search(q) if q else None)
        except DomainError as exc:
            flash(exc.message, "error")
            found, status = [], 400
        return self.render(
            "admin/console/sms.html",
            conversations=found,
            numbers=traffic.number_e164s({c.number_id for c in found}),
            q=q,
            limit=sms.CONVERSATIONS_SHOWN,
            form=form or self._form(),
        ), status

    def _thread(self, number, counterpart: str, form: SmsForm | None = None, status: int = 200):
        return self.render(
            "admin/console/sms_thread.html",
            number=number,
            counterpart=counterpart,
            messages=sms.thread(number, counterpart or None),
            form=form or self._form(number.e164, counterpart),
        ), status

    @expose("/")
    def index(self):
        return self._list()

    @expose("/conversation")
    def conversation(self):
        try:
            number = sms.org_number(request.args.get("number", ""))
        except DomainError:
            abort(404)
        return self._thread(number, request.args.get("with", "").strip())

    @expose("/send", methods=["POST"])
    def send(self):
        """Send, then show the conversation; a refusal shows the page it came from with the form as typed."""
        if not self.may_write():
            return self.refuse_write()
        form = self._form()
        origin = request.args.get("origin") == "conversation"
        number = None
        if origin:
            try:
                number = sms.org_number(form.from_number.data or "")
            except DomainError:
                number = None
        status = 400
        if form.validate_on_submit():
            try:
                sent = sms.send_sms(
                    self.org, from_number=form.from_number.data or "", to=form.to.data or "", text=form.text.data or ""
                )
            except DomainError as exc:
                db.session.rollback()
                field = {"from": form.from_number, "to": form.to, "text": form.text}.get(exc.field or "")
                if field is not None:
                    field.errors = [*field.errors, exc.message]
                flash(exc.message, "error")
                status = exc.status
            else:
                done(f"Sent to {sent.to} from {sent.from_number}.")
                return redirect(org_url(".conversation", number=sent.from_number, **{"with": sent.to}))
        if number is not None:
            return self._thread(number, form.to.data or "", form, status)
        return self._list(form, status)


class NumbersView(OrgModelView):
    column_list = ("e164", "label", "periods")
    column_labels = {"e164": "Number", "periods": "This organisation's periods"}
    column_formatters = {"periods": periods_column()}  # the tenant filter leaves this org's own
    column_searchable_list = ("e164", "label")
    column_default_sort = "e164"
    column_details_list = ["e164", "label", "periods", "created_at"]
    column_formatters_detail = {"periods": periods_column(), "created_at": time_column}

    def get_empty_list_message(self) -> str:
        return "No numbers yet: a sync of numbers brings in the account's numbers, or ask your platform admin."


class MembersView(OrgModelView):
    """Everyone sees who is in the org; org admins add, change and remove members."""

    write_role = ORG_ADMIN
    column_list = ("user.email", "role", "extension", "created_at")
    column_labels = {"user.email": "Email", "created_at": "Added"}
    column_formatters = {"created_at": time_column}
    column_sortable_list = ("role", "extension", "created_at")
    column_details_list = ["user.email", "role", "extension", "created_at"]
    column_formatters_detail = {"created_at": time_column}
    list_intro = "admin/console/members_add.html"
    details_extra = "admin/console/member_change.html"

    def member_forms(self, membership=None) -> dict:
        change = ChangeMemberForm(prefix="change")
        if membership is not None and not change.is_submitted():
            change.row_id.data, change.role.data, change.extension.data = (
                membership.id,
                membership.role,
                membership.extension or "",
            )
        return {
            "add_form": MemberForm(prefix="add"),
            "change_form": change,
            "remove_form": RowForm(prefix="remove", row_id=membership.id if membership else None),
        }

    def _membership(self, form) -> Membership | None:
        row = form.row_id.data
        found = self.get_query().filter(Membership.id == int(row)).one_or_none() if str(row).isdigit() else None
        if found is None:
            form.row_id.errors = ["That member is not in this organisation."]
            flash("That member is not in this organisation.", "error")
        return found

    @expose("/add", methods=["POST"])
    def add(self):
        if not self.may_write():
            return self.refuse_write()
        form = MemberForm(prefix="add")
        if not form.validate_on_submit():
            flash(
                "Check the member's details: " + "; ".join(e for errors in form.errors.values() for e in errors),
                "error",
            )
            return redirect(org_url(".index_view"))
        try:
            member_added(
                members.add_member(self.org, form.email.data or "", form.role.data, extension=form.extension.data),
                self.org.slug,
            )
        except DomainError as exc:
            refused(form, exc)
        return redirect(org_url(".index_view"))

    @expose("/change", methods=["POST"])
    def change(self):
        if not self.may_write():
            return self.refuse_write()
        form = ChangeMemberForm(prefix="change")
        if not form.validate_on_submit() or (membership := self._membership(form)) is None:
            return self.render_details_with(form), 400
        try:
            members.change_member(self.org, membership, role=form.role.data, extension=form.extension.data or None)
            done(
                f"{membership.user.email} is {membership.role.replace('_', ' ')}"
                + (f", extension {membership.extension}." if membership.extension else ".")
            )
        except DomainError as exc:
            refused(form, exc)
        return redirect(org_url(".details_view", id=membership.id))

    @expose("/remove", methods=["POST"])
    def remove(self):
        if not self.may_write():
            return self.refuse_write()
        form = RowForm(prefix="remove")
        if not form.validate_on_submit() or (membership := self._membership(form)) is None:
            return self.render_details_with(None, remove_form=form), 400
        email = membership.user.email
        try:
            members.remove_member(self.org, membership)
            done(f"{email} is no longer a member.")
        except DomainError as exc:
            refused(form, exc)
            return redirect(org_url(".details_view", id=membership.id))
        return redirect(org_url(".index_view"))

    def render_details_with(self, change_form, remove_form=None):
        """The refusal page of a post naming no member of this org: the form and its error."""
        return self.render("admin/console/form_refused.html", forms=[f for f in (change_form, remove_form) if f])


class SyncRunsView(OrgModelView):
    least_role = MANAGER
    column_list = ("created_at", "kind", "trigger", "status", "progress", "fetched", "inserted", "error")
    column_labels = {"created_at": "Queued"}
    column_formatters = {
        "created_at": time_column,
        "progress": lambda v, c, m, n: f"{m.progress * 100:.0f} %",
        "error": secret_free_column(),
    }
    column_default_sort = ("id", True)
    column_filters = ("kind", "status")
    column_details_list = [
        "kind",
        "trigger",
        "status",
        "window_start",
        "window_end",
        "progress",
        "pages",
        "fetched",
        "inserted",
        "updated",
        "skipped",
        "retries",
        "error",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    ]
    column_formatters_detail = {
        **dict.fromkeys(RUN_TIMES, time_column),
        "progress": column_formatters["progress"],
        "error": secret_free_column(None),
    }

    def get_empty_list_message(self) -> str:
        return "No sync runs yet: start one with “Sync now” under Integration."


class ApiKeysView(ApiKeyActions, OrgModelView):
    """The org's keys: created here with the secret shown once; revoked, never deleted."""

    least_role = ORG_ADMIN
    write_role = ORG_ADMIN
    column_list = ("name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    column_formatters = dict.fromkeys(KEY_TIMES, time_column)
    column_details_list = list(column_list)
    column_formatters_detail = column_formatters
    list_intro = "admin/console/keys_create.html"
    details_extra = "admin/console/key_revoke.html"

    def get_empty_list_message(self) -> str:
        return "No API keys yet: create one above for a dashboard or script that reads this organisation's data."

    def key_forms(self, key=None) -> dict:
        return {
            "create_form": ApiKeyForm(prefix="key"),
            "revoke_form": RowForm(prefix="revoke", row_id=key.id if key else None),
        }

    def key_org(self, form) -> Organization:
        return self.org


def _integrations() -> Sequence[Integration]:
    return db.session.scalars(
        select(Integration).where(Integration.org_id == g.org_access.org_id).order_by(Integration.id)
    ).all()


class IntegrationView(IntegrationActions, OrgPage):
    """The org's MightyCall connection. Managers see it and may sync now; org admins also set the
    credentials (write-only: never shown back), test the connection and rotate the webhook token."""

    least_role = MANAGER
    write_role = ORG_ADMIN

    def integration_choices(self) -> Sequence[Integration]:
        return _integrations()

    def _forms(self) -> dict:
        choices = options((i.id, f"{i.name} ({i.base_url})") for i in _integrations())
        sync_form, test_form, rotate_form = (
            SyncForm(prefix="sync"),
            IntegrationActionForm(prefix="test"),
            IntegrationActionForm(prefix="rotate"),
        )
        for form in (sync_form, test_form, rotate_form):
            form.integration.choices = choices
        return {
            "sync_form": sync_form,
            "test_form": test_form,
            "rotate_form": rotate_form,
            "credentials_form": CredentialsForm(prefix="credentials"),
        }

    def _page(self, status: int = 200, **forms):
        context = {**self._forms(), **forms}
        return self.render(
            "admin/console/integration.html", integrations=_integrations(), org=self.org, **context
        ), status

    def back(self):
        return redirect(org_url(".index"))

    def refused_page(self, name: str, form):
        return self._page(400, **{name: form})

    @expose("/")
    def index(self):
        return self._page()

    @expose("/credentials", methods=["POST"])
    def credentials(self):
        if not self.may_write():
            return self.refuse_write()
        form = CredentialsForm(prefix="credentials")
        if not form.validate_on_submit():
            return self._page(400, credentials_form=form)
        try:
            _, token = integrations.save_account(
                self.org,
                api_key=form.api_key.data,
                user_key=form.user_key.data,
                base_url=form.base_url.data,
                mightycall_hosts_only=not current_user.is_platform,
            )
        except DomainError as exc:
            refused(form, exc)
            return self._page(400, credentials_form=form)
        if token is None:
            done("The MightyCall credentials are replaced. Test the connection to check them.")
            return self.back()
        done("Connected to MightyCall. Test the connection, then sync.")
        show_webhook_token(token)
        return self.back()


class SettingsView(OrgPage):
    least_role = MANAGER
    write_role = ORG_ADMIN

    @expose("/", methods=["GET", "POST"])
    def index(self):
        org = self.org
        form = SettingsForm(obj=org)
        if request.method == "POST":
            if not self.may_write():
                return self.refuse_write()
            if form.validate_on_submit():
                try:
                    orgs.update_org_settings(
                        org,
                        name=form.name.data,
                        timezone=(form.timezone.data or "").strip(),
                        service_level_target=form.service_level_target.data,
                        service_level_threshold_seconds=form.service_level_threshold_seconds.data,
                        short_abandon_seconds=form.short_abandon_seconds.data,
                    )
                    done("Settings saved.")
                    return redirect(org_url(".index"))
                except DomainError as exc:
                    refused(form, exc)
            return self.render("admin/console/settings.html", form=form, org=org), 400
        return self.render("admin/console/settings.html", form=form, org=org)


class NotificationsView(OrgPage):
    """The signed-in person's own notification preferences in this org (every role): shown, and
    changed by them only. Someone acting in an org they are not a member of has none here."""

    @expose("/", methods=["GET", "POST"])
    def index(self):
        membership = db.session.scalar(
            select(Membership).where(Membership.org_id == self.org.id, Membership.user_id == current_user.id)
        )
        if membership is None:
            return self.render("admin/console/notifications.html", form=None, org=self.org)
        form = PreferencesForm(data=preferences.preferences_of(membership))
        if request.method == "POST":
            if form.validate_on_submit():
                try:
                    preferences.set_preferences(membership, {name: form[name].data for name in preferences.CHOICES})
                    done("Your notification preferences are saved.")
                    return redirect(org_url(".index"))
                except DomainError as exc:
                    refused(form, exc)
            return self.render("admin/console/notifications.html", form=form, org=self.org), 400
        return self.render("admin/console/notifications.html", form=form, org=self.org)


class AlertsView(OrgPage):
    """The org's alert rules, business hours and alert history. Managers see them; org admins change
    them (the conditions are those of `vsync.services.notifications.alerts`)."""

    least_role = MANAGER
    write_role = ORG_ADMIN

    def _page(self, rule_form=None, hours_form=None, status: int = 200):
        hours = alerts.business_hours(self.org)
        hours_form = hours_form or BusinessHoursForm(
            prefix="hours", data={day.lower(): alerts.format_span(hours.get(i)) for i, day in enumerate(WEEKDAYS)}
        )
        return self.render(
            "admin/console/alerts.html",
            org=self.org,
            rules=alerts.rules(self.org),
            events=alerts.history(self.org),
            rule_form=rule_form or AlertRuleForm(prefix="rule"),
            hours_form=hours_form,
            descriptions=alerts.DESCRIPTIONS,
        ), status

    @expose("/")
    def index(self):
        return self._page()

    @expose("/rule", methods=["POST"])
    def rule(self):
        if not self.may_write():
            return self.refuse_write()
        form = AlertRuleForm(prefix="rule")
        if not form.validate_on_submit():
            return self._page(rule_form=form, status=400)
        try:
            alerts.save_rule(
                self.org,
                form.kind.data,
                window_minutes=form.window_minutes.data or 0,
                threshold=form.threshold.data or 0.0,
                enabled=form.enabled.data,
            )
        except DomainError as exc:
            refused(form, exc)
            return self._page(rule_form=form, status=400)
        done("The alert rule is saved.")
        return redirect(org_url(".index"))

    @expose("/hours", methods=["POST"])
    def hours(self):
        if not self.may_write():
            return self.refuse_write()
        form = BusinessHoursForm(prefix="hours")
        try:
            if not form.validate_on_submit():
                return self._page(hours_form=form, status=400)
            alerts.set_business_hours(
                self.org,
                {i: alerts.parse_span(form[day.lower()].data, field=day.lower()) for i, day in enumerate(WEEKDAYS)},
            )
        except DomainError as exc:
            refused(form, exc)
            return self._page(hours_form=form, status=400)
        done("Business hours are saved.")
        return redirect(org_url(".index"))
