"""Sign-in (with a code after the password when two-factor is on) and sign-out (here, or on every
device), a person's two-factor page, the page where a set-password link is redeemed, a forgotten
password asked for, and an email change confirmed from the new address.

Each sign-in starts a session row and each sign-out ends it (`vsync.services.sessions`), so a copy of
the cookie is refused after it. Once a session has started, `vsync.auth.devices.after_sign_in` notes
its device (and tells the person of a new one).

Two-factor sign-in (`vsync.services.twofactor`). A right password of a person with two-factor on
starts no session: it leaves a half-sign-in in this browser's signed cookie (who, and until when:
`TWO_FACTOR_PENDING_SECONDS`), which only the code page reads; every other page still finds nobody
signed in. A right code there starts the session as a password alone would. A wrong code is a failed
sign-in like a wrong password, on the same counter (`vsync.auth.throttle`), so guessing codes and
passwords together is throttled; the two-factor page's code forms count the same way.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length
from wtforms.validators import ValidationError as FieldError

from vsync.auth import devices
from vsync.auth.principals import (
    UserPrincipal,
    active_user,
    authenticate,
    current_principal,
    record_sign_in,
    signed_in_person,
)
from vsync.auth.throttle import LOGIN_FAILED, login_throttled, throttled
from vsync.errors import DomainError, ValidationError
from vsync.extensions import db
from vsync.models.types import utcnow
from vsync.services import audit, members, profile, sessions, twofactor
from vsync.services.notifications import preferences
from vsync.services.orgs import validate_password
from vsync.tenancy import fix_request_org, tenant

bp = Blueprint("auth", __name__)

FAILED_MESSAGE = "The email or password is incorrect."
TWO_FACTOR_PENDING_SECONDS = 300
_PENDING = "two_factor_pending"


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


def password_rules(form, field) -> None:
    """The password rules (`vsync.services.orgs.validate_password`) as a form field's validator."""
    try:
        validate_password(field.data or "")
    except ValidationError as exc:
        raise FieldError(exc.message) from None


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), password_rules])
    confirm = PasswordField("Repeat it", validators=[DataRequired(), EqualTo("password", "The two differ.")])


class CodeForm(FlaskForm):
    """A code from the authenticator app, or a recovery code; its shape is checked by
    `vsync.services.twofactor.parse_code`, which says what a code looks like."""

    code = StringField("Code", validators=[Length(max=40)])


class DisableTwoFactorForm(CodeForm):
    password = PasswordField("Current password", validators=[Length(max=1024)])


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an absolute or scheme-relative URL would be an open redirect."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("admin.index")


@bp.route("/")
def home():
    """The console. Not public: a visitor who is not signed in is sent to sign in first, and back here."""
    return redirect(url_for("admin.index"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and not current_user.is_api_key:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("login.html", form=form), 400 if request.method == "POST" else 200

    email = (form.email.data or "").strip().lower()
    if login_throttled(email, request.remote_addr):
        return _throttled_page(email, "login.html", form=form)

    principal, reason = authenticate(email, form.password.data or "")
    if principal is None:
        audit.record(LOGIN_FAILED, actor=email, summary=reason)
        db.session.commit()
        flash(FAILED_MESSAGE, "error")
        return render_template("login.html", form=form), 200

    if principal.two_factor:
        session.clear()
        session[_PENDING] = {
            "user": principal.id,
            "email": principal.email,
            "until": utcnow().timestamp() + TWO_FACTOR_PENDING_SECONDS,
            "next": request.args.get("next"),
        }
        return redirect(url_for("auth.two_factor"))
    return _signed_in(principal, request.args.get("next"))


def _signed_in(principal: UserPrincipal, next_path: str | None, message: str | None = None):
    session.clear()  # a fresh session on sign-in: no fixation
    if message:
        flash(message, "warning")
    token = sessions.start_session(principal.id, ip=request.remote_addr, user_agent=request.user_agent.string)
    login_user(replace(principal, session_token=token))
    devices.after_sign_in(principal.id, principal.email, token)
    record_sign_in(principal)
    audit.record("login.succeeded", actor=principal)
    db.session.commit()
    return redirect(_safe_next(next_path))


def _throttled_page(actor: str, template: str, **context):
    minutes = current_app.config["VSYNC_LOGIN_WINDOW_SECONDS"] // 60
    audit.record("login.throttled", actor=actor)
    db.session.commit()
    flash(f"Too many failed sign-in attempts. Try again in {minutes} minutes.", "error")
    return render_template(template, **context), 429


def _code_refused(email: str, form: CodeForm, exc: DomainError) -> int:
    """A refused code is a failed sign-in of `email` (the throttle counts it); the form says why."""
    audit.record(LOGIN_FAILED, actor=email, summary=f"two-factor code refused: {exc.message}")
    db.session.commit()
    field = form[exc.field if exc.field and exc.field in form else "code"]
    field.errors = [*field.errors, exc.message]
    return exc.status


@bp.route("/login/two-factor", methods=["GET", "POST"])
def two_factor():
    """The second step of signing in: public, but only a half-sign-in of this browser (see the module
    docstring), while it lasts, gets here; anyone else is sent to sign in."""
    pending = session.get(_PENDING)
    if not pending or pending.get("until", 0) < utcnow().timestamp():
        session.pop(_PENDING, None)
        flash("Sign in with your email and password first (the step for the code lasts five minutes).", "info")
        return redirect(url_for("auth.login"))
    email, form = pending["email"], CodeForm()
    if not form.validate_on_submit():
        return render_template("login_code.html", form=form, email=email), 400 if request.method == "POST" else 200
    if login_throttled(email, request.remote_addr):
        session.pop(_PENDING, None)
        return _throttled_page(email, "login_code.html", form=form, email=email)
    try:
        used = twofactor.verify(pending["user"], form.code.data)
    except DomainError as exc:
        status = _code_refused(email, form, exc)
        return render_template("login_code.html", form=form, email=email), status
    principal = active_user(pending["user"])
    if principal is None:  # deactivated meanwhile
        db.session.rollback()
        session.pop(_PENDING, None)
        flash(FAILED_MESSAGE, "error")
        return redirect(url_for("auth.login"))
    message = None
    if used == "recovery code":
        left = twofactor.state_of(principal.id).recovery_codes_left
        message = f"You signed in with a recovery code; {left} left. Each works once."
    return _signed_in(principal, pending.get("next"), message)


def _signed_out(message: str):
    logout_user()
    session.clear()
    flash(message, "info")
    return redirect(url_for("auth.login"))


@bp.route("/logout", methods=["POST"])
def logout():
    """End this session on the server too: a saved copy of the cookie is refused from now on."""
    principal = current_principal()
    if isinstance(principal, UserPrincipal):
        sessions.end_session(principal.id, principal.session_id)
        audit.record("logout", actor=principal)
        db.session.commit()
    return _signed_out("You are signed out.")


@bp.route("/logout/everywhere", methods=["POST"])
def logout_everywhere():
    """End every session of the signed-in person, on every device, this one included."""
    principal = signed_in_person()
    count = sessions.sign_out_everywhere(principal.id, principal.email)
    db.session.commit()
    return _signed_out(f"You are signed out everywhere ({count} session{'s' if count != 1 else ''} ended).")


@bp.route("/account/two-factor")
def two_factor_settings():
    """The signed-in person's two-factor page: enrol (the QR code, the secret as text, a code to
    confirm), or, when on, new recovery codes and turning it off. Reached from the console's menu, and
    where a person who must have it on is sent (`vsync.auth`)."""
    person = signed_in_person()
    state = twofactor.state_of(person.id)
    context: dict = {"state": state, "required": twofactor.required_for(person.id, person.role)}
    if state.enabled:
        context |= {"recovery_form": CodeForm(prefix="recovery"), "disable_form": DisableTwoFactorForm(prefix="off")}
    else:
        context |= {"enrolment": twofactor.begin_enrolment(person.id, person.email), "confirm_form": CodeForm()}
        db.session.commit()
    return render_template("two_factor.html", **context)


def _two_factor_change(form: CodeForm, change):
    """Run `change` (a two-factor change that takes a code) for the signed-in person: throttled like
    sign-in, a refused code counted like a failed one; back to the page with why, else `change`'s page."""
    person = signed_in_person()
    if not form.validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("auth.two_factor_settings"))
    if login_throttled(person.email, request.remote_addr):
        minutes = current_app.config["VSYNC_LOGIN_WINDOW_SECONDS"] // 60
        flash(f"Too many failed attempts. Try again in {minutes} minutes.", "error")
        return redirect(url_for("auth.two_factor_settings"))
    try:
        page = change(person)
    except DomainError as exc:
        db.session.rollback()
        _code_refused(person.email, form, exc)
        flash(exc.message, "error")
        return redirect(url_for("auth.two_factor_settings"))
    db.session.commit()
    return page


def _recovery_codes_page(codes: list[str], message: str):
    flash(message, "info")
    return render_template("two_factor_codes.html", codes=codes)


@bp.route("/account/two-factor/confirm", methods=["POST"])
def two_factor_confirm():
    form = CodeForm()
    return _two_factor_change(
        form,
        lambda person: _recovery_codes_page(
            twofactor.confirm_enrolment(person.id, form.code.data),
            "Two-factor sign-in is on: from now on, signing in asks for a code from the app.",
        ),
    )


@bp.route("/account/two-factor/recovery-codes", methods=["POST"])
def two_factor_recovery_codes():
    form = CodeForm(prefix="recovery")
    return _two_factor_change(
        form,
        lambda person: _recovery_codes_page(
            twofactor.regenerate_recovery_codes(person.id, form.code.data),
            "New recovery codes: the old ones no longer work.",
        ),
    )


@bp.route("/account/two-factor/disable", methods=["POST"])
def two_factor_disable():
    form = DisableTwoFactorForm(prefix="off")

    def turn_off(person):
        twofactor.disable(person.id, form.password.data, form.code.data)
        flash("Two-factor sign-in is off: signing in takes the password alone.", "info")
        return redirect(url_for("auth.two_factor_settings"))

    return _two_factor_change(form, turn_off)


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Public: the token is the credential. A used, expired or unknown link, or one whose account has
    changed since it was made (which spends it), is refused with what to do; a valid one takes a
    password once, ends every session of the account, then sends the person to sign in."""
    try:
        link = members.password_link(token)
    except ValidationError as exc:
        db.session.commit()  # a link refused for a changed account is spent
        return render_template("set_password.html", refused=exc.message), 410
    form = SetPasswordForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("set_password.html", form=form, email=link.email, expires_at=link.expires_at), status
    try:
        members.set_password_with_link(token, form.password.data or "")
    except ValidationError as exc:
        db.session.commit()  # nothing was set; a link refused for a changed account is spent
        return render_template("set_password.html", refused=exc.message), 410
    db.session.commit()
    flash("Your password is set. Sign in with it now.", "info")
    return redirect(url_for("auth.login"))


FORGOT_ANSWER = (
    "If {email} is the address of a vsync account, a link to choose a new password is on its way to it. "
    "It works once, within {minutes} minutes."
)


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password():
    """Public: ask for a reset link by email. The answer (page and status) is the same whether or not
    the address has an account (`vsync.services.profile.request_password_reset` does the same work for
    both); requests are throttled per address and per client address."""
    form = ForgotPasswordForm()
    if not form.validate_on_submit():
        return render_template("forgot_password.html", form=form), 400 if request.method == "POST" else 200
    email = (form.email.data or "").strip().lower()
    config = current_app.config
    limit = config["VSYNC_RESET_MAX_REQUESTS"]  # per address; from one client address, several people's
    if throttled(profile.RESET_REQUESTED, email, request.remote_addr, limit=limit, ip_limit=4 * limit):
        minutes = config["VSYNC_LOGIN_WINDOW_SECONDS"] // 60
        flash(f"Too many reset requests for this address or from here. Try again in {minutes} minutes.", "error")
        return render_template("forgot_password.html", form=form), 429
    try:
        profile.request_password_reset(email)
    except ValidationError as exc:
        form.email.errors = [exc.message]
        return render_template("forgot_password.html", form=form), 400
    db.session.commit()
    answer = FORGOT_ANSWER.format(email=email, minutes=config["VSYNC_RESET_LINK_MINUTES"])
    return render_template("forgot_password.html", form=None, answer=answer)


@bp.route("/account/email/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    """Public: the link emailed to a new address (the token is the credential). GET shows what it does
    (mail scanners fetch links); POST changes the email, once."""
    try:
        change = profile.read_email_change(token)
        if request.method == "GET":
            return render_template("confirm_email.html", new_email=change.new_email)
        profile.confirm_email_change(token)
    except DomainError as exc:
        db.session.rollback()
        return render_template("confirm_email.html", refused=exc.message), 410 if exc.status == 400 else exc.status
    db.session.commit()
    return render_template("confirm_email.html", new_email=change.new_email, done=True)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    """Public: a digest's signed one-click link (RFC 8058). GET only shows what the link does (mail
    scanners fetch links); POST, from the page's button or the mail client's one-click
    `List-Unsubscribe=One-Click`, turns that one preference off and spends the link."""
    try:
        link = preferences.read_unsubscribe_token(token)
    except ValidationError as exc:
        return render_template("unsubscribe.html", refused=exc.message), 400
    label = preferences.LABELS[link.key]
    if request.method == "GET":
        return render_template("unsubscribe.html", label=label)
    fix_request_org(link.org_id)  # the link's own org, and no other
    try:
        with tenant(link.org_id):
            preferences.unsubscribe(link)
            db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return render_template("unsubscribe.html", refused=exc.message), exc.status
    return render_template("unsubscribe.html", label=label, done=True)
