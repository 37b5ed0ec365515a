"""The org console: one organisation's calls, SMS, numbers, recordings, members, integration, sync
runs, API keys and settings (the dashboard is `vsync.admin.dashboard`).

Lists are Flask-Admin model views over the tenant filter (`vsync.admin.access`); every change is a
small form posted to the view, which calls the one service function the CLI and API use, commits,
and flashes what happened. A role that may not act is not shown the form, and a post from it is the
403 page. Rows named in a post are looked up in the org's own scope, so another org's id is a form
error and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlencode

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from vsync.admin.access import OrgModelView, OrgPage, done, kept, member_added, refused
from vsync.admin.actions import ApiKeyActions, IntegrationActions, show_webhook_token
from vsync.admin.display import (
    KEY_TIMES,
    RUN_TIMES,
    agent_html,
    duration_column,
    number_html,
    periods_column,
    seconds_text,
    secret_free_column,
    time_column,
)
from vsync.admin.forms import (
    WEEKDAYS,
    AlertRuleForm,
    AlertWebhookForm,
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
from vsync.errors import DomainError, ValidationError
from vsync.extensions import db
from vsync.models import Call, Integration, Membership, Organization, PhoneNumber, Recording
from vsync.models.orgs import MANAGER, ORG_ADMIN
from vsync.models.traffic import CALL_STATUSES
from vsync.models.types import utcnow
from vsync.query import FILTER_DIRECTIONS, Window, org_zone, parse_filters, parse_status
from vsync.services import integrations, members, orgs, sms, traffic
from vsync.services.live import in_progress, live_staleness
from vsync.services.notifications import alert_webhooks, alerts, preferences
from vsync.services.traffic import Search, call_criteria
from vsync.timeutil import isoformat_z

CALL_FILTERS = ("from", "to", "direction", "status", "number", "agent", "q")
RECORDING_FILTERS = ("from", "to", "direction", "number", "agent", "min_length")
STATUS_WORDS = {
    "answered": "Answered",
    "missed": "Missed",
    "voicemail": "Went to voicemail",
    "dropped": "Dropped",
    "other": "Other",
}
DIRECTION_WORDS = {"inbound": "Inbound", "outbound": "Outbound", "callback": "Callback", "other": "Other"}


def org_url(endpoint: str, **values) -> str:
    return url_for(endpoint, org=g.org_access.slug, **values)


def _in_progress(call: Call) -> bool:
    """Whether the list shows the call as in progress (`live.in_progress`), at one `now` per request."""
    if "floor_now" not in g:
        g.floor_now = utcnow()
    return in_progress(call, g.floor_now, live_staleness())


def _call_status(view, context, model, name) -> str:
    return "In progress" if _in_progress(model) else model.status


def _call_duration(view, context, model, name) -> Markup | str:
    """A call in progress: its running duration since it started, ticking in the page (`console/live.js`)."""
    if _in_progress(model):
        return Markup('<span class="call-running" data-since="{}" data-as-of="{}">{}</span>').format(
            isoformat_z(model.started_at),
            isoformat_z(g.floor_now),
            seconds_text((g.floor_now - model.started_at).total_seconds()),
        )
    return duration_column(view, context, model, name)


def _call_filters(names: Sequence[str] = CALL_FILTERS) -> dict[str, str]:
    return {name: value for name in names if (value := request.args.get(name, "").strip())}


def _traffic_criteria(org: Organization, args: dict[str, str], time_column) -> list:
    """The criteria of a console list's filters, read by the API's parsers (`vsync.query`): the
    window on `time_column`, then the number, agent and direction, each refused as the API refuses it."""
    criteria = []
    if "from" in args or "to" in args:
        window = Window.parse(org_zone(org), args.get("from"), args.get("to"))
        criteria += [time_column >= window.start, time_column < window.end]
    filters = parse_filters(args.get("number"), args.get("agent"), args.get("direction"))
    return criteria + filters.criteria()


def _refused_filters(key: str, build) -> list | None:
    """`build()`'s criteria, read once per request; None when a filter is refused, which is said once,
    as a flashed form error, and the page answers 400."""
    if key not in g:
        try:
            setattr(g, key, build())
        except DomainError as exc:
            flash(exc.message, "error")
            setattr(g, key, None)
    return g.get(key)


def _agent_column(view, context, model, name) -> Markup:
    return agent_html(model.agent_extension, g.get("agent_names", {}).get((model.account_id, model.agent_extension)))


def _with_agent_names(rows):
    """Remember the names of the agents of a list page's rows, for `_agent_column`."""
    g.agent_names = traffic.agent_names((row.account_id, row.agent_extension) for row in rows)
    return rows


def _filter_choices() -> dict:
    """The org's numbers (by label) and agents (by name), for the filter forms."""
    return {
        "numbers": db.session.scalars(select(PhoneNumber).order_by(PhoneNumber.label, PhoneNumber.e164)).all(),
        "agents": traffic.known_agents(),
        "directions": FILTER_DIRECTIONS,
    }


class FilteredListView(OrgModelView):
    """A list narrowed by its page's filters, `_criteria()` of the view (None when a filter is refused:
    the list is empty and the page answers 400, its message flashed once)."""

    _criteria: Callable[[], list | None]  # the view's own method

    def _joined(self, query):
        """The list's query with what its criteria name beyond the listed model (none by default)."""
        return query

    def _filtered(self, query):
        criteria = self._criteria()
        return query.filter(False) if criteria is None else self._joined(query).filter(*criteria)

    @expose("/")
    def index_view(self):
        page = super().index_view()
        return (page, 400) if self._criteria() is None else page

    def get_query(self):
        return self._filtered(super().get_query())

    def get_count_query(self):
        return self._filtered(super().get_count_query())


class CallsView(FilteredListView):
    """Calls with the API's filters (window, direction, status, number, agent, search), each refused
    as the API refuses it; the same query string exports them as CSV through the API. Agents show by
    name, the extension on hover. The detail page is the call as people read it: its times in the
    org's zone (UTC on hover), who called whom, the agent, the number's label, wait, ring and talk
    times, the events as a timeline and the recording's player; never MightyCall's record."""

    column_list = ("started_at", "direction", "status", "from_number", "to_number", "agent_extension", "duration_ms")
    column_labels = {
        "started_at": "Started",
        "agent_extension": "Agent",
        "duration_ms": "Duration",
        "from_number": "From",
        "to_number": "To",
    }
    column_formatters = {
        "started_at": time_column,
        "status": _call_status,
        "duration_ms": _call_duration,
        "agent_extension": _agent_column,
    }
    column_details_list = list(column_list)  # the detail page shows them curated (`call_extras`)
    column_sortable_list = ("started_at", "direction", "status", "duration_ms")
    column_default_sort = ("started_at", True)
    list_intro = "admin/console/calls_filters.html"
    list_scripts = ("console/live.js",)  # a call in progress shows its running duration
    details_template = "admin/console/call_details.html"

    def get_empty_list_message(self) -> str:
        if _call_filters():
            return "No calls match these filters. Widen the window or clear a filter."
        return "No calls yet: connect MightyCall under Integration and run a sync."

    def _criteria(self) -> list | None:
        def build() -> list:
            args = _call_filters()
            criteria = _traffic_criteria(self.org, args, Call.started_at)
            search = Search(args["q"]) if "q" in args else None
            return criteria + call_criteria(status=parse_status(args.get("status")), search=search)

        return _refused_filters("call_criteria", build)

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        return count, _with_agent_names(rows)

    def _get_list_url(self, view_args):
        url = super()._get_list_url(view_args)
        extra = {k: v for k, v in _call_filters().items() if k not in view_args.extra_args}
        return f"{url}{'&' if '?' in url else '?'}{urlencode(extra)}" if extra else url

    def filter_context(self) -> dict:
        query = urlencode({"format": "csv", **_call_filters()})
        return {
            **_filter_choices(),
            "args": _call_filters(),
            "statuses": CALL_STATUSES,
            "csv_url": f"/api/v1/orgs/{g.org_access.slug}/calls?{query}",
        }

    def call_extras(self, call: Call) -> dict:
        """What the detail page shows of a call besides its row: its number, its agent's name, its
        waits, and its events (each with the name of the extension it names) and recordings."""
        _, events, _ = traffic.get_call(call.id)
        recordings = db.session.scalars(
            select(Recording)
            .where(Recording.account_id == call.account_id, Recording.call_external_id == call.external_id)
            .order_by(Recording.id)
        ).all()
        mentioned = [(call.account_id, call.agent_extension), *((e.account_id, e.extension) for e in events)]
        names = traffic.agent_names(mentioned)

        def agent_of(account_id: int, extension: str | None) -> Markup:
            return agent_html(extension, names.get((account_id, extension)))

        talked = call.duration_ms is not None and call.status == "answered"
        waited_until = call.answered_at or call.wait_ended_at
        return {
            "number": db.session.get(PhoneNumber, call.phone_number_id),
            "agent": agent_of(call.account_id, call.agent_extension),
            "status": STATUS_WORDS.get(call.status, call.status),
            "direction": DIRECTION_WORDS.get(call.direction, call.direction),
            "wait_seconds": (waited_until - call.started_at).total_seconds() if waited_until else None,
            "ring_seconds": call.ring_ms / 1000 if call.ring_ms is not None else None,
            "talk_seconds": call.duration_ms / 1000 if talked and call.duration_ms is not None else None,
            "timeline": [
                (e, _event_words(e.kind, e.event_type), agent_of(e.account_id, e.extension) if e.extension else None)
                for e in events
            ],
            "recordings": recordings,
        }


EVENT_WORDS = {
    "call": "Call began",
    "ringing": "Rang",
    "stop_ringing": "Stopped ringing",
    "connected": "Connected",
    "completed": "Ended",
}


def _event_words(kind: str, event_type: str) -> str:
    return EVENT_WORDS.get(kind, event_type)


def audio_url(recording_id: int) -> str:
    """The API's authorised audio route: the provider's URL is never handed to a browser."""
    return f"/api/v1/orgs/{g.org_access.slug}/recordings/{recording_id}/audio"


def _recording_call(model: Recording) -> dict:
    return g.get("recording_calls", {}).get((model.account_id, model.call_external_id), {})


def _play_column(view, context, model, name) -> Markup:
    """A Play button for the page's one player (`recordings.js`), which loads the audio only when
    clicked, and the download, both through the API's audio route."""
    url = audio_url(model.id)
    return Markup(
        '<button type="button" class="btn btn-sm btn-outline-primary play-recording" data-src="{}">Play</button> '
        '<a class="btn btn-sm btn-link" href="{}" download>Download</a>'
    ).format(url, url)


def _parse_min_length(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) > 86_400:
        raise ValidationError("min_length is a whole number of seconds, 0 to 86400.", field="min_length")
    return int(text)


class RecordingsView(FilteredListView):
    """The org's recordings with the calls list's filters (window, number, agent, direction) and a
    minimum length: when, who called, on which number (by label), the agent (by name), the length,
    and a Play button. One player serves the page: nothing loads until Play is clicked, and playing
    another recording stops the first. Audio and downloads go through the API's audio route."""

    column_list = ("player", "started_at", "caller", "number", "agent", "duration_ms")
    column_labels = {
        "started_at": "When",
        "caller": "Caller",
        "number": "Number",
        "agent": "Agent",
        "duration_ms": "Length",
        "player": "Play",
    }
    column_formatters = {
        "started_at": time_column,
        "duration_ms": duration_column,
        "caller": lambda v, c, m, n: _recording_call(m).get("caller") or "—",
        "number": lambda v, c, m, n: _recording_call(m).get("number") or "—",
        "agent": lambda v, c, m, n: _recording_call(m).get("agent") or agent_html(None, None),
        "player": _play_column,
    }
    column_sortable_list = ("started_at", "duration_ms")
    column_default_sort = ("started_at", True)
    column_details_list = ["started_at", "caller", "number", "agent", "duration_ms", "file_name", "player"]
    column_formatters_detail = column_formatters
    list_intro = "admin/console/recordings_filters.html"

    def get_empty_list_message(self) -> str:
        if _call_filters(RECORDING_FILTERS):
            return "No recordings match these filters. Widen the window or clear a filter."
        return "No recordings yet: they arrive with the calls a sync brings in."

    def _criteria(self) -> list | None:
        def build() -> list:
            args = _call_filters(RECORDING_FILTERS)
            criteria = _traffic_criteria(self.org, args, Recording.started_at)
            shortest = _parse_min_length(args.get("min_length"))
            if shortest is not None:
                criteria.append(Recording.duration_ms >= shortest * 1000)
            return criteria

        return _refused_filters("recording_criteria", build)

    def _joined(self, query):
        return query.join(Call, traffic.CALL_OF_RECORDING)

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        self._remember_calls(rows)
        return count, rows

    def get_one(self, id):
        recording = super().get_one(id)
        if recording is not None:
            self._remember_calls([recording])
        return recording

    def _remember_calls(self, recordings) -> None:
        """The caller, number label and agent name of each recording's call, for the columns."""
        g.recording_calls = {
            (call.account_id, call.external_id): {
                "caller": call.from_number,
                "number": number_html(call.e164, call.label),
                "agent": agent_html(call.agent_extension, call.agent_name),
            }
            for call in traffic.recording_calls([(r.account_id, r.call_external_id) for r in recordings])
        }

    def _get_list_url(self, view_args):
        url = super()._get_list_url(view_args)
        extra = {k: v for k, v in _call_filters(RECORDING_FILTERS).items() if k not in view_args.extra_args}
        return f"{url}{'&' if '?' in url else '?'}{urlencode(extra)}" if extra else url

    def filter_context(self) -> dict:
        return {**_filter_choices(), "args": _call_filters(RECORDING_FILTERS)}


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
            "add_form": kept(MemberForm(prefix="add")),
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
            return self.list_again(form)
        try:
            member_added(
                members.add_member(self.org, form.email.data or "", form.role.data, extension=form.extension.data),
                self.org.slug,
            )
        except DomainError as exc:
            refused(form, exc)
            return self.list_again(form)
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
            "create_form": kept(ApiKeyForm(prefix="key")),
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
                        require_two_factor=form.require_two_factor.data,
                    )
                    done("Settings saved.")
                    return redirect(org_url(".index"))
                except DomainError as exc:
                    refused(form, exc)
            return self.render("admin/console/settings.html", form=form, org=org), 400
        return self.render("admin/console/settings.html", form=form, org=org)


class NotificationsView(OrgPage):
    """The signed-in person's own notification preferences in this org (every role): shown, and
    changed by them only, here or from their own page (`/account`), whose form for this org posts
    here with `next=account` and is sent back there. Someone acting in an org they are not a member
    of has none here."""

    @expose("/", methods=["GET", "POST"])
    def index(self):
        membership = db.session.scalar(
            select(Membership).where(Membership.org_id == self.org.id, Membership.user_id == current_user.id)
        )
        if membership is None:
            return self.render("admin/console/notifications.html", form=None, org=self.org)
        from_account = request.args.get("next") == "account"
        form = PreferencesForm(
            prefix=f"org{self.org.id}" if from_account else "", data=preferences.preferences_of(membership)
        )
        if request.method == "POST":
            if form.validate_on_submit():
                try:
                    preferences.set_preferences(membership, {name: form[name].data for name in preferences.CHOICES})
                    done("Your notification preferences are saved.")
                    if from_account:
                        return redirect(url_for("account.index") + f"#notifications-{self.org.slug}")
                    return redirect(org_url(".index"))
                except DomainError as exc:
                    refused(form, exc)
            return self.render("admin/console/notifications.html", form=form, org=self.org), 400
        return self.render("admin/console/notifications.html", form=form, org=self.org)


class AlertsView(OrgPage):
    """The org's alert rules, business hours, outbound alert webhook and alert history (with each
    webhook delivery's outcome). Managers see them; org admins change them (the conditions are those
    of `vsync.services.notifications.alerts`). The webhook's signing secret is shown once, when made."""

    least_role = MANAGER
    write_role = ORG_ADMIN

    def _page(self, rule_form=None, hours_form=None, webhook_form=None, status: int = 200):
        hours = alerts.business_hours(self.org)
        hours_form = hours_form or BusinessHoursForm(
            prefix="hours", data={day.lower(): alerts.format_span(hours.get(i)) for i, day in enumerate(WEEKDAYS)}
        )
        webhook = alert_webhooks.webhook_of(self.org)
        webhook_form = webhook_form or AlertWebhookForm(prefix="webhook", data={"url": webhook.url if webhook else ""})
        return self.render(
            "admin/console/alerts.html",
            org=self.org,
            rules=alerts.rules(self.org),
            events=alerts.history(self.org),
            rule_form=rule_form or AlertRuleForm(prefix="rule"),
            hours_form=hours_form,
            webhook=webhook,
            webhook_form=webhook_form,
            descriptions=alerts.DESCRIPTIONS,
            condition=alerts.condition,
            shown=alerts.shown,
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

    @expose("/webhook", methods=["POST"])
    def webhook(self):
        if not self.may_write():
            return self.refuse_write()
        form = AlertWebhookForm(prefix="webhook")
        if not form.validate_on_submit():
            return self._page(webhook_form=form, status=400)
        try:
            secret = alert_webhooks.save_webhook(self.org, form.url.data, new_secret=form.new_secret.data)
        except DomainError as exc:
            refused(form, exc)
            return self._page(webhook_form=form, status=400)
        done("The alert webhook is saved." if form.url.data else "The alert webhook is removed.")
        if secret is not None:
            flash(
                Markup(
                    "Verify each POST with this signing secret; it is not shown again: "
                    "<code class='webhook-secret'>{}</code>"
                ).format(secret),
                "warning",
            )
        return redirect(org_url(".index"))
