"""The page of one's own (`/account`), for every signed-in person, platform staff or org member:
name, email (changed only from a link sent to the new address), password (with the current one),
two-factor sign-in (when that page exists), the active sessions with "sign out this one" and "sign
out everywhere else", and the notification preferences in each org the person belongs to.

It acts in no organisation: what it changes is the person's own (`vsync.services.profile`,
`vsync.services.sessions`). Preferences are changed in their org's own scope, by the org console's
`NotificationsView`, to which each org's form posts and which sends the person back here. What can
be guessed is throttled from the audit log (`vsync.auth.throttle`): a wrong current password, and
email changes (which say whether an address has an account).
"""

from __future__ import annotations

from flask import current_app, flash, redirect, url_for
from flask_admin import BaseView, expose
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from vsync.admin.access import ConsoleAccess
from vsync.admin.forms import PreferencesForm
from vsync.auth.devices import describe
from vsync.auth.principals import signed_in_person
from vsync.auth.throttle import throttled
from vsync.auth.views import password_rules
from vsync.errors import DomainError
from vsync.extensions import db
from vsync.models.sessions import SIGNED_OUT
from vsync.services import audit, profile, sessions

TWO_FACTOR_PATH = "/account/two-factor"


class NameForm(FlaskForm):
    name = StringField("Your name", validators=[Length(max=200)])


class EmailForm(FlaskForm):
    email = EmailField(
        "New email address",
        validators=[DataRequired(), Length(max=254)],
        description="We email a link to the new address; the change happens when it is followed.",
    )


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField("New password", validators=[DataRequired(), password_rules])
    confirm = PasswordField(
        "Repeat the new password", validators=[DataRequired(), EqualTo("new_password", "The two differ.")]
    )


def _two_factor_url() -> str | None:
    """The two-factor page, when this build has one (its view is registered at `TWO_FACTOR_PATH`)."""
    for rule in current_app.url_map.iter_rules():
        if rule.rule == TWO_FACTOR_PATH and "GET" in (rule.methods or ()):
            return TWO_FACTOR_PATH
    return None


class AccountView(ConsoleAccess, BaseView):
    """`/account`: reached from the navbar's own name on every console page, not from the menu."""

    def is_visible(self) -> bool:
        return False

    def _page(self, name_form=None, email_form=None, password_form=None, status: int = 200):
        me = signed_in_person()
        person = profile.person(me.id)
        active = sessions.list_active_sessions(me.id)
        orgs = profile.own_preferences(me.id)
        return self.render(
            "admin/account.html",
            person=person,
            name_form=name_form or NameForm(prefix="profile", data={"name": person.name or ""}),
            email_form=email_form or EmailForm(prefix="change"),
            password_form=password_form or PasswordForm(prefix="password"),
            sessions=[(item, describe(item.user_agent), item.id == me.session_id) for item in active],
            org_forms=[(org, PreferencesForm(prefix=f"org{org.org_id}", data=org.values)) for org in orgs],
            two_factor_url=_two_factor_url(),
        ), status

    @expose("/")
    def index(self):
        return self._page()

    @expose("/name", methods=["POST"])
    def change_name(self):
        form = NameForm(prefix="profile")
        if not form.validate_on_submit():
            return self._page(name_form=form, status=400)
        try:
            profile.change_name(signed_in_person().id, form.name.data or "")
        except DomainError as exc:
            db.session.rollback()
            form.name.errors = [exc.message]
            return self._page(name_form=form, status=exc.status)
        db.session.commit()
        flash("Your name is saved.", "success")
        return redirect(url_for(".index"))

    @expose("/email", methods=["POST"])
    def change_email(self):
        me = signed_in_person()
        form = EmailForm(prefix="change")
        if not form.validate_on_submit():
            return self._page(email_form=form, status=400)
        limit = current_app.config["VSYNC_RESET_MAX_REQUESTS"]
        if throttled(profile.EMAIL_CHANGE_REQUESTED, me.label, None, limit=limit, per_ip=False):
            form.email.errors = ["Too many email changes asked for. Try again later."]
            return self._page(email_form=form, status=429)
        try:
            new_email = profile.request_email_change(me.id, form.email.data or "")
        except DomainError as exc:
            db.session.rollback()
            audit.record(profile.EMAIL_CHANGE_REQUESTED, target=("User", me.id), summary=f"refused: {exc.message}")
            db.session.commit()  # the refusal counts towards the throttle
            form.email.errors = [exc.message]
            return self._page(email_form=form, status=exc.status)
        db.session.commit()
        flash(
            f"A link to confirm the change is on its way to {new_email}. Your email stays as it is until then.", "info"
        )
        return redirect(url_for(".index"))

    @expose("/password", methods=["POST"])
    def change_password(self):
        me = signed_in_person()
        form = PasswordForm(prefix="password")
        limit = current_app.config["VSYNC_LOGIN_MAX_FAILURES"]
        if throttled(profile.PASSWORD_CHANGE_FAILED, me.label, None, limit=limit, per_ip=False):
            form.current_password.errors = ["Too many wrong current passwords. Try again later."]
            return self._page(password_form=form, status=429)
        if not form.validate_on_submit():
            return self._page(password_form=form, status=400)
        try:
            ended = profile.change_password(
                me.id, me.session_id, form.current_password.data or "", form.new_password.data or ""
            )
        except DomainError as exc:
            db.session.commit()  # nothing changed but the audit row of a wrong current password
            field = getattr(form, exc.field or "", None) or form.current_password
            field.errors = [exc.message]
            return self._page(password_form=form, status=exc.status)
        db.session.commit()
        others = f" {ended} other session{'s' if ended != 1 else ''} ended." if ended else ""
        flash(f"Your password is changed.{others}", "success")
        return redirect(url_for(".index"))

    @expose("/sessions/<int:session_id>/end", methods=["POST"])
    def end_session(self, session_id: int):
        """ "Sign out this one": one of the person's own sessions; another person's id ends nothing."""
        me = signed_in_person()
        if sessions.end_session(me.id, session_id, SIGNED_OUT):
            audit.record("account.session_ended", target=("User", me.id), summary=f"session {session_id}")
            db.session.commit()
            flash("That session is signed out.", "success")
        else:
            flash("That session is not one of yours, or has ended already.", "error")
        if session_id == me.session_id:
            return redirect(url_for("auth.login"))
        return redirect(url_for(".index"))

    @expose("/sessions/end-others", methods=["POST"])
    def end_others(self):
        """ "Sign out everywhere else": every session of the person but this one."""
        me = signed_in_person()
        ended = sessions.end_other_sessions(me.id, me.session_id, SIGNED_OUT)
        audit.record("account.other_sessions_ended", target=("User", me.id), summary=f"{ended} session(s) ended")
        db.session.commit()
        flash(f"Signed out everywhere else ({ended} session{'s' if ended != 1 else ''} ended).", "success")
        return redirect(url_for(".index"))
