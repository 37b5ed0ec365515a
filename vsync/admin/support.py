"""Support in the consoles: the org's tickets (`/admin/orgs/<org>/tickets`) and the platform's queue
(`/admin/platform/tickets`).

Both act through `vsync.services.support`, as the API does. The org console shows a ticket's thread
through `support.org_thread`, never with internal notes; agents list and open only the tickets they
opened. The queue runs in the platform bypass (`platform_wide`, granted to platform admins only):
every org's tickets, filtered by org, status, priority, assignee and age, with the whole thread,
internal notes, assignment, statuses and the decision on number requests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import abort, flash, g, redirect, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateTimeSmallerFilter, FilterEqual
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired

from vsync.admin.access import OrgModelView, PlatformModelView, done, refused
from vsync.admin.display import time_column
from vsync.admin.forms import options
from vsync.admin.platform import org_column
from vsync.auth.principals import reachable_orgs
from vsync.errors import DomainError
from vsync.models import Organization, User
from vsync.models.orgs import AGENT
from vsync.models.support import CATEGORIES, NUMBER_ACTIONS, PRIORITIES, TICKET_STATUSES, Ticket
from vsync.services import support

TICKET_COLUMNS = ("id", "subject", "kind", "status", "priority", "created_at", "first_response", "resolution")
LABELS = {
    "id": "#",
    "created_at": "Opened",
    "first_response": "First response",
    "resolution": "Resolution",
    "org_id": "Organisation",
    "assignee": "Assignee",
}


def _choices(values: tuple[str, ...]):
    return options((value, value.replace("_", " ")) for value in values)


def _waited(start: datetime, end: datetime | None) -> str:
    if end is None:
        return "—"
    minutes = int((end - start) / timedelta(minutes=1))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _first_response(view, context, model, name) -> str:
    return _waited(model.created_at, model.first_response_at)


def _resolution(view, context, model, name) -> str:
    return _waited(model.created_at, model.resolved_at)


FORMATTERS = {"first_response": _first_response, "resolution": _resolution, "created_at": time_column}


class OpenTicketForm(FlaskForm):
    """Checked by the service (one set of rules for the API and the consoles), so the form has none."""

    subject = StringField("Subject")
    category = SelectField("Category", choices=_choices(CATEGORIES))
    priority = SelectField("Priority", choices=_choices(PRIORITIES), default="normal")
    message = TextAreaField("Message")


class NumberRequestForm(FlaskForm):
    action = SelectField(
        "Request",
        choices=options(
            zip(NUMBER_ACTIONS, ("a new number", "release a number", "move a number to another org"), strict=True)
        ),
    )
    country = StringField("Country (new)", description="Two-letter code, e.g. US.")
    area_code = StringField("Area code or pattern (new)")
    label = StringField("Label (new)")
    e164 = StringField("Number", description="E.164: the number wanted (optional), or the one to release or move.")
    to_org = SelectField("Move to", choices=[])
    message = TextAreaField("Message")


class TicketForm(FlaskForm):
    ticket = HiddenField(validators=[DataRequired()])


class ReplyForm(TicketForm):
    message = TextAreaField("Reply")


class NoteForm(TicketForm):
    note = TextAreaField("Internal note", description="Platform staff only; never shown to the organisation.")


class StatusForm(TicketForm):
    status = SelectField("Status", choices=_choices(TICKET_STATUSES))


class AssignTicketForm(TicketForm):
    assignee = SelectField("Assignee", choices=[])


class ApproveForm(TicketForm):
    e164 = StringField("Number to give", description="For a new-number request that named none.")


class RefuseForm(TicketForm):
    reason = TextAreaField("Reason")


def _principal():
    return current_user._get_current_object()


class TicketsView(OrgModelView):
    """The org's tickets; an agent's list and pages hold only the tickets they opened."""

    write_role = AGENT
    column_list = TICKET_COLUMNS
    column_details_list = [*TICKET_COLUMNS, "opened_by", "updated_at"]
    column_labels = LABELS
    column_formatters = column_formatters_detail = FORMATTERS
    column_searchable_list = ("subject",)
    column_default_sort = ("id", True)
    column_filters = (FilterEqual(Ticket.status, "Status", options=[(s, s) for s in TICKET_STATUSES]),)
    list_intro = "admin/console/ticket_open.html"
    details_extra = "admin/console/ticket_thread.html"

    def get_empty_list_message(self) -> str:
        return "No tickets yet: open one above to ask platform support for help or for a number."

    def _in_org(self, query):
        query = super()._in_org(query)
        if g.org_access.role == AGENT:
            query = query.filter(Ticket.opened_by_user_id == current_user.id)
        return query

    def open_forms(self) -> dict:
        request_form = NumberRequestForm(prefix="request")
        request_form.to_org.choices = options(
            [("", "—")]
            + [
                (access.slug, access.name)
                for access in reachable_orgs(_principal())
                if access.org_id != g.org_access.org_id
            ]
        )
        return {"ticket_form": OpenTicketForm(prefix="ticket"), "request_form": request_form}

    def thread(self, ticket: Ticket) -> list:
        return support.org_thread(ticket)

    def reply_form(self, ticket: Ticket) -> ReplyForm:
        return ReplyForm(prefix="reply", ticket=ticket.id)

    def _ticket(self, form: TicketForm) -> Ticket:
        row = form.ticket.data if form.validate_on_submit() else None
        if not row or not row.isdigit():
            abort(400)
        return support.get_org_ticket(int(row), g.org_access.role, _principal())

    @expose("/open", methods=["POST"])
    def open(self):
        form = self.open_forms()["ticket_form"]
        if form.validate_on_submit():
            try:
                ticket = support.open_ticket(
                    g.org_access.org_id,
                    _principal(),
                    subject=form.subject.data,
                    category=form.category.data,
                    priority=form.priority.data,
                    message=form.message.data,
                )
                done(f"Ticket #{ticket.id} opened; platform support will answer here.")
                return redirect(url_for(".details_view", id=ticket.id))
            except DomainError as exc:
                refused(form, exc)
        return redirect(url_for(".index_view"))

    @expose("/request-number", methods=["POST"])
    def request_number(self):
        form = self.open_forms()["request_form"]
        if form.validate_on_submit():
            try:
                destination = next(
                    (access.org_id for access in reachable_orgs(_principal()) if access.slug == form.to_org.data), None
                )
                ticket = support.open_number_request(
                    g.org_access.org_id,
                    _principal(),
                    action=form.action.data,
                    message=form.message.data,
                    country=form.country.data,
                    area_code=form.area_code.data,
                    label=form.label.data,
                    e164=form.e164.data,
                    to_org_id=destination,
                )
                done(f"Number request #{ticket.id} sent; platform support will decide on it here.")
                return redirect(url_for(".details_view", id=ticket.id))
            except DomainError as exc:
                refused(form, exc)
        return redirect(url_for(".index_view"))

    @expose("/reply", methods=["POST"])
    def reply(self):
        form = ReplyForm(prefix="reply")
        ticket = self._ticket(form)
        try:
            support.reply(ticket, _principal(), form.message.data or "")
            done("Reply sent.")
        except DomainError as exc:
            refused(form, exc)
        return redirect(url_for(".details_view", id=ticket.id))


def _staff_choices():
    return options([("", "nobody")] + [(str(user.id), user.email) for user in support.platform_staff()])


class _OrgSlugFilter(FilterEqual):
    """Tickets of the org with this slug (typed: the list of orgs changes, a view's options do not)."""

    def apply(self, query, value, alias=None):
        return query.filter(Ticket.org_id.in_(select(Organization.id).where(Organization.slug == value.strip())))


class _AssigneeEmailFilter(FilterEqual):
    def apply(self, query, value, alias=None):
        return query.filter(
            Ticket.assignee_user_id.in_(select(User.id).where(func.lower(User.email) == value.strip().lower()))
        )


class _OpenedBefore(DateTimeSmallerFilter):
    """The age filter: tickets opened before a UTC time the form gives without a zone."""

    def clean(self, value):
        return super().clean(value).replace(tzinfo=UTC)


def _assignee(view, context, model, name) -> str:
    return model.assignee.email if model.assignee is not None else "—"


class TicketQueueView(PlatformModelView):
    """Every org's tickets for platform staff, oldest open ones easy to find (filter "Opened before")."""

    column_list = (
        "id",
        "org_id",
        "subject",
        "kind",
        "status",
        "priority",
        "assignee",
        "created_at",
        "first_response",
        "resolution",
    )
    column_details_list = [*column_list, "opened_by", "updated_at"]
    column_labels = LABELS
    column_formatters = column_formatters_detail = {**FORMATTERS, "org_id": org_column, "assignee": _assignee}
    column_searchable_list = ("subject",)
    column_default_sort = ("id", True)
    column_filters = (
        _OrgSlugFilter(Ticket.org_id, "Organisation (slug)"),
        FilterEqual(Ticket.status, "Status", options=[(s, s) for s in TICKET_STATUSES]),
        FilterEqual(Ticket.priority, "Priority", options=[(p, p) for p in PRIORITIES]),
        _AssigneeEmailFilter(Ticket.assignee_user_id, "Assignee (email)"),
        _OpenedBefore(Ticket.created_at, "Opened before (UTC)"),
    )
    details_extra = "admin/platform/ticket_work.html"

    def get_empty_list_message(self) -> str:
        return "No tickets match."

    def thread(self, ticket: Ticket) -> list:
        return support.staff_thread(ticket)

    def work_forms(self, ticket: Ticket) -> dict:
        assign = AssignTicketForm(
            prefix="assign",
            ticket=ticket.id,
            assignee="" if ticket.assignee_user_id is None else str(ticket.assignee_user_id),
        )
        assign.assignee.choices = _staff_choices()
        return {
            "reply_form": ReplyForm(prefix="reply", ticket=ticket.id),
            "note_form": NoteForm(prefix="note", ticket=ticket.id),
            "status_form": StatusForm(prefix="status", ticket=ticket.id, status=ticket.status),
            "assign_form": assign,
            "approve_form": ApproveForm(prefix="approve", ticket=ticket.id),
            "refuse_form": RefuseForm(prefix="refuse", ticket=ticket.id),
        }

    def _act(self, form: TicketForm, act, message: str):
        """Run `act(ticket)` for the posted ticket, commit it with its audit rows, and go back to it."""
        row = form.ticket.data if form.validate_on_submit() else None
        if not row or not row.isdigit():
            flash("No such ticket.", "error")
            return redirect(url_for(".index_view"))
        ticket = support.get_any_ticket(int(row))
        try:
            act(ticket)
            done(message)
        except DomainError as exc:
            refused(form, exc)
        return redirect(url_for(".details_view", id=ticket.id))

    @expose("/reply", methods=["POST"])
    def reply(self):
        form = ReplyForm(prefix="reply")
        return self._act(form, lambda t: support.reply(t, _principal(), form.message.data or ""), "Reply sent.")

    @expose("/note", methods=["POST"])
    def note(self):
        form = NoteForm(prefix="note")
        return self._act(
            form, lambda t: support.add_internal_note(t, _principal(), form.note.data or ""), "Note added."
        )

    @expose("/status", methods=["POST"])
    def status(self):
        form = StatusForm(prefix="status")
        return self._act(form, lambda t: support.set_status(t, _principal(), form.status.data), "Status changed.")

    @expose("/assign", methods=["POST"])
    def assign(self):
        form = AssignTicketForm(prefix="assign")
        form.assignee.choices = _staff_choices()
        assignee = int(form.assignee.data) if str(form.assignee.data).isdigit() else None
        return self._act(form, lambda t: support.assign_ticket(t, _principal(), assignee), "Ticket assigned.")

    @expose("/approve", methods=["POST"])
    def approve(self):
        form = ApproveForm(prefix="approve")
        return self._act(
            form,
            lambda t: support.approve_number_request(t.id, _principal(), e164=form.e164.data),
            "Number request approved and carried out.",
        )

    @expose("/refuse", methods=["POST"])
    def refuse(self):
        form = RefuseForm(prefix="refuse")
        return self._act(
            form,
            lambda t: support.refuse_number_request(t.id, _principal(), form.reason.data or ""),
            "Number request refused.",
        )
