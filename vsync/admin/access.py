"""Who may open which console view, and the queries every list and detail page runs.

The console acts in one organisation at a time, named in the URL (`/admin/orgs/<org>/…`). Nothing
here resolves it: `vsync.auth` does, for every request, through the same resolver as the API, and
enters that org's tenant scope before the view runs (a stale or forged org falls back to the org
picker, `vsync.admin.init_app`). A view only asks `g.org_access` for the role it was given.

Platform views (`/admin/platform/…`) run in the platform bypass, which `vsync.auth` grants to their
endpoints for platform admins only; for anyone else they are refused before any query runs.

`is_accessible` and `inaccessible_callback` guard every view: nobody signed in goes to sign in, a
signed-in user without the role gets the 403 page. List, count and detail queries are scoped
together: the tenant filter narrows them, and org views also name the org on org-owned rows, so a
detail URL with another org's id is a 404, never a redirect with a flash.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import BaseView
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import SecureForm
from flask_login import current_user
from markupsafe import Markup

from vsync.auth.permissions import has_role, request_org
from vsync.extensions import db
from vsync.models import Organization
from vsync.models.orgs import AGENT


def signed_in_user() -> bool:
    return current_user.is_authenticated and not current_user.is_api_key


def forbidden(view, message: str = "Your role does not give you this page."):
    """The 403 page, in the console's layout (the view's own render gives it the admin context)."""
    return view.render("admin/forbidden.html", message=message), 403


class ConsoleAccess:
    """What every console view shares: sign-in, the role it needs, and the refusal."""

    def is_accessible(self) -> bool:
        return signed_in_user()

    def inaccessible_callback(self, name, **kwargs):
        if not signed_in_user():
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return forbidden(self)


class OrgConsoleAccess(ConsoleAccess):
    """A view of one organisation's console. `least_role` is the role needed to open it;
    `write_role` the one needed for its actions (what a role cannot do is not offered)."""

    least_role = AGENT
    write_role: str | None = None

    def is_accessible(self) -> bool:
        return signed_in_user() and g.get("org_access") is not None and has_role(self.least_role)

    def is_visible(self) -> bool:
        return g.get("org_access") is not None and has_role(self.least_role)

    def may_write(self) -> bool:
        return self.write_role is not None and has_role(self.write_role)

    def _run_view(self, fn, *args, **kwargs):
        kwargs.pop("org", None)  # the org was resolved and its scope entered by vsync.auth
        return super()._run_view(fn, *args, **kwargs)  # pyright: ignore[reportAttributeAccessIssue]  # a mixin of BaseView

    @property
    def org(self) -> Organization:
        return request_org()

    def refuse_write(self):
        """The answer to a write by a role without it (the form was never offered to them)."""
        return forbidden(self, f"This needs the {(self.write_role or '').replace('_', ' ')} role.")


class PlatformAccess(ConsoleAccess):
    platform_wide = True  # the platform bypass for platform admins (`vsync.auth.platform_wide`)

    def is_accessible(self) -> bool:
        return signed_in_user() and current_user.is_platform

    def is_visible(self) -> bool:
        return signed_in_user() and current_user.is_platform

    def may_write(self) -> bool:
        """Every platform admin may act on all the platform console shows (the views the consoles
        share, `vsync.admin.actions`, ask each view)."""
        return True


class ReadOnlyModelView(ModelView):
    """A list and a detail page. Changes go through the views' own forms and the services, never
    through Flask-Admin's generic create, edit or (mass) delete."""

    can_create = can_edit = can_delete = False
    can_view_details = True
    can_export = False
    can_set_page_size = True
    page_size = 50
    form_base_class = SecureForm
    action_disallowed_list = ["delete"]
    list_template = "admin/console/list.html"
    list_scripts: tuple[str, ...] = ()  # static scripts the list page loads (e.g. running durations)
    details_template = "admin/console/details.html"

    def __init__(self, model, **kwargs):
        super().__init__(model, db, **kwargs)

    def list_again(self, form):
        """The list page again, answering a refused post (400) with `form` as it was posted: what was
        typed stays, each error under its field. The page's form getters return it through `kept`."""
        g.kept_forms = {**g.get("kept_forms", {}), form._prefix: form}
        return self.index_view(), 400

    def get_one(self, id):
        try:
            key = int(id)
        except (TypeError, ValueError):
            abort(404)
        # Flask-Admin types `model` as any declarative class; the console's are vsync's models, each with an id.
        found = self.get_query().filter(self.model.id == key).one_or_none()  # pyright: ignore[reportAttributeAccessIssue]
        if found is None:
            abort(404)
        return found


class OrgModelView(OrgConsoleAccess, ReadOnlyModelView):
    """An org's rows: the tenant filter narrows every statement; org-owned rows also name the org.

    Every org view names the fields its list and detail pages show: the org console shows curated,
    human fields only, never a raw provider payload (a call's MightyCall record holds its recording's
    link), whatever columns a model gains. Flask-Admin's default would be every column.
    """

    def __init__(self, model, **kwargs):
        if self.column_list is None or self.column_details_list is None:
            raise TypeError(
                f"{type(self).__name__} must name the fields its pages show (column_list and column_details_list)."
            )
        super().__init__(model, **kwargs)

    def _in_org(self, query):
        if hasattr(self.model, "org_id"):  # Flask-Admin types `model` as any declarative class
            query = query.filter(self.model.org_id == g.org_access.org_id)  # pyright: ignore[reportAttributeAccessIssue]
        return query

    def get_query(self):
        return self._in_org(super().get_query())

    def get_count_query(self):
        return self._in_org(super().get_count_query())


class PlatformModelView(PlatformAccess, ReadOnlyModelView):
    """Rows of every organisation, for platform admins, in the platform bypass."""


class OrgPage(OrgConsoleAccess, BaseView):
    """A console page of one org that is not a list of rows (dashboard, settings, integration)."""


class PlatformPage(PlatformAccess, BaseView):
    pass


def kept(form):
    """`form`, or the form of the same prefix that this request posted and `list_again` kept."""
    return g.get("kept_forms", {}).get(form._prefix, form)


def done(message: str) -> None:
    """Commit the request's change and its audit rows, and say so."""
    db.session.commit()
    flash(message, "success")


def refused(form, exc) -> None:
    """Put a domain error on the form field it names (or the form), roll back, and flash it. A form
    whose fields the services name otherwise maps the names in `service_fields`."""
    db.session.rollback()
    name = getattr(form, "service_fields", {}).get(exc.field, exc.field)
    field = getattr(form, name, None) if name else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message] if isinstance(field.errors, list) else [exc.message]
    flash(exc.message, "error")


def member_added(added, org_slug: str) -> None:
    """Commit an added member and say so, with the set-password link to pass on: the same words for
    a person new to vsync and one with an account anywhere (`vsync.services.members.add_member`), in
    the org console and the platform console alike."""
    membership = added.membership
    done(f"{membership.user.email} is now {membership.role.replace('_', ' ')} of {org_slug}.")
    if added.emailed:
        flash(f"An invitation with their one-time set-password link was emailed to {membership.user.email}.", "info")
        return
    link = url_for("auth.set_password", token=added.password_token, _external=True)
    flash(
        Markup(
            "Pass this one-time link on to them: if they have no vsync password yet, it lets them choose "
            "one (once, within 72 hours); if they have one, they sign in with it. It is not shown again: "
            "<code class='password-link'>{}</code>"
        ).format(link),
        "warning",
    )
