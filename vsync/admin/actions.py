"""The console actions both consoles offer, written once: an API key's create and revoke, and an
integration's connection test, webhook-token rotation and sync now, with the one-time displays of a
new key and a new webhook URL.

Each action set is a mixin of exposed endpoints, subclassed by a view of the org console
(`vsync.admin.org`) and one of the platform console (`vsync.admin.platform`). A view says only what
differs between them: the rows a post may name (its own `get_query`, `integration_choices`), the org a
new key is for (`key_org`), and where the answer goes (`back`, `refused_page`). Who may act is the
view's `may_write`: the role's in the org console, every platform admin in the platform console.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.orm import Query

from vsync.admin.access import done, refused
from vsync.admin.forms import ApiKeyForm, IntegrationActionForm, RowForm, SyncForm, options
from vsync.errors import DomainError
from vsync.extensions import db
from vsync.mightycall import MightyCallError
from vsync.models import ApiKey, Integration, Organization
from vsync.query import local_day_start, org_zone
from vsync.services import integrations, keys, webhooks
from vsync.services.sync import start_syncs

UTC_ZONE = ZoneInfo("UTC")


def key_expiry(day: date | None, org: Organization | None) -> datetime | None:
    """The instant a key chosen to expire on `day` stops working: the end of that day in the org's
    time zone (in UTC for a platform key, which has no org), so it works through the whole day its
    org calls by that date, in either console."""
    if day is None:
        return None
    return local_day_start(day, org_zone(org) if org is not None else UTC_ZONE, end=True)


def show_api_key(plaintext: str) -> None:
    flash(
        Markup("Copy the key now; it is not shown again: <code class='api-key'>{}</code>").format(plaintext), "warning"
    )


def show_webhook_token(token: str) -> None:
    url = url_for("webhooks.receive", token=token, _external=True)
    flash(
        Markup(
            "Give MightyCall this webhook URL now; it is not shown again: <code class='webhook-url'>{}</code>"
        ).format(url),
        "warning",
    )


class ApiKeyActions:
    """Create a key (its secret shown once) and revoke one (keys are never deleted).

    The view gives `key_forms(key)` (the create form as `create_form`, for the list's template, and
    the revoke form) and `key_org(form)`, the org a new key is for (None: a platform key). A revoke
    names a key among the view's own rows, so another org's key is a form error and changes nothing.
    """

    key_not_found = "That API key is not one of this organisation's."
    # What the view gives (declared here for type checkers only: the view's own methods answer).
    may_write: Callable[[], bool]
    refuse_write: Callable[[], ResponseReturnValue]
    key_forms: Callable[[], dict[str, Any]]
    key_org: Callable[[ApiKeyForm], Organization | None]
    get_query: Callable[[], Query]
    render: Callable[..., str]
    list_again: Callable[[Any], ResponseReturnValue]

    @expose("/create", methods=["POST"])
    def create(self):
        if not self.may_write():
            return self.refuse_write()
        form: ApiKeyForm = self.key_forms()["create_form"]
        if not form.validate_on_submit():
            flash("An API key needs a name and a scope.", "error")
            return self.list_again(form)
        org = self.key_org(form)
        try:
            key, plaintext = keys.create_api_key(
                org_id=org.id if org else None,
                name=form.name.data or "",
                scopes=form.scope.data,
                expires_at=key_expiry(form.expires.data, org),
                created_by_user_id=current_user.id,
            )
            done(f"API key {key.prefix} created.")
        except DomainError as exc:
            refused(form, exc)
            return self.list_again(form)
        show_api_key(plaintext)
        return redirect(url_for(".index_view"))

    @expose("/revoke", methods=["POST"])
    def revoke(self):
        if not self.may_write():
            return self.refuse_write()
        form = RowForm(prefix="revoke")
        row = form.row_id.data if form.validate_on_submit() else None
        key = self.get_query().filter(ApiKey.id == int(row)).one_or_none() if row and row.isdigit() else None
        if key is None:
            form.row_id.errors = [self.key_not_found]
            flash(self.key_not_found, "error")
            return self.render("admin/console/form_refused.html", forms=[form]), 400
        keys.revoke_api_key(key.id)
        done(f"API key {key.prefix} revoked; it no longer authenticates.")
        return redirect(url_for(".details_view", id=key.id))


class IntegrationActions:
    """Test an integration's connection, rotate its webhook token (the new URL shown once), and sync
    it now over local dates of its org.

    The view gives `integration_choices()` (the integrations a post may name: another org's is a form
    error), `back()` (the answer to a post that was carried out or refused by MightyCall) and
    `refused_page(name, form)` (the answer to a form that names no integration of its own). Testing
    and rotating need `may_write`; syncing needs only the view itself.
    """

    # What the view gives (declared here for type checkers only: the view's own methods answer).
    may_write: Callable[[], bool]
    refuse_write: Callable[[], ResponseReturnValue]
    integration_choices: Callable[[], Iterable[Integration]]
    back: Callable[[], ResponseReturnValue]
    refused_page: Callable[[str, Any], ResponseReturnValue]

    def _chosen(self, form) -> Integration | None:
        form.integration.choices = options((i.id, i.name) for i in self.integration_choices())
        if not form.validate_on_submit():
            flash("; ".join(e for errors in form.errors.values() for e in errors), "error")
            return None
        return db.session.get(Integration, form.integration.data)

    @expose("/test", methods=["POST"])
    def test(self):
        if not self.may_write():
            return self.refuse_write()
        form = IntegrationActionForm(prefix="test")
        if (integration := self._chosen(form)) is None:
            return self.refused_page("test_form", form)
        result = integrations.check_connection(integration)
        db.session.commit()
        if result["ok"]:
            flash(f"MightyCall answered: {result.get('numbers', 0)} number(s) on the account.", "success")
        else:
            flash(f"MightyCall refused or could not be reached: {result['error']}", "error")
        return self.back()

    @expose("/rotate", methods=["POST"])
    def rotate(self):
        if not self.may_write():
            return self.refuse_write()
        form = IntegrationActionForm(prefix="rotate")
        if (integration := self._chosen(form)) is None:
            return self.refused_page("rotate_form", form)
        token = webhooks.rotate_webhook_token(integration)
        done("A new webhook token is set; the old one is refused from now on.")
        show_webhook_token(token)
        return self.back()

    @expose("/sync", methods=["POST"])
    def sync(self):
        form = SyncForm(prefix="sync")
        if (integration := self._chosen(form)) is None:
            return self.refused_page("sync_form", form)
        zone = org_zone(integration.org)
        since, until = form.since.data, form.until.data
        try:
            started = start_syncs(
                integration,
                form.kinds.data or [],
                since=None if since is None else local_day_start(since, zone),
                until=None if until is None else local_day_start(until, zone, end=True),
                requested_by_user_id=current_user.id,
            )
        except (DomainError, MightyCallError) as exc:
            db.session.rollback()
            flash(getattr(exc, "message", str(exc)), "error")
            return self.refused_page("sync_form", form)
        flash(
            "Sync "
            + ", ".join(
                f"{run.kind} ({'joined the run under way' if joined else run.status})" for run, joined in started
            )
            + ". Progress is under Sync runs.",
            "success",
        )
        return self.back()
