"""Sign-in and sign-out pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from vsync.auth.throttle import LOGIN_FAILED, login_throttled
from vsync.extensions import db
from vsync.models.types import utcnow
from vsync.services import audit
from vsync.services.orgs import find_user

bp = Blueprint("auth", __name__)

FAILED_MESSAGE = "The email or password is incorrect."
# Checked when no user matches, so a wrong email costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("vsync timing equaliser")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


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
    if current_user.is_authenticated and not getattr(current_user, "is_api_key", False):
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("login.html", form=form), 400 if request.method == "POST" else 200

    email = form.email.data.strip().lower()
    if login_throttled(email, request.remote_addr):
        minutes = current_app.config["VSYNC_LOGIN_WINDOW_SECONDS"] // 60
        audit.record("login.throttled", actor=email)
        db.session.commit()
        flash(f"Too many failed sign-in attempts. Try again in {minutes} minutes.", "error")
        return render_template("login.html", form=form), 429

    user = find_user(email)
    password_ok = (user.check_password(form.password.data) if user is not None
                   else check_password_hash(_DUMMY_HASH, form.password.data))
    if not password_ok or not user.is_active:
        reason = "unknown account" if user is None else ("inactive account" if password_ok else "wrong password")
        audit.record(LOGIN_FAILED, actor=email, summary=reason)
        db.session.commit()
        flash(FAILED_MESSAGE, "error")
        return render_template("login.html", form=form), 200

    session.clear()  # a fresh session on sign-in: no fixation
    login_user(user)
    user.last_login_at = utcnow()
    audit.record("login.succeeded", actor=user)
    db.session.commit()
    return redirect(_safe_next(request.args.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        audit.record("logout", actor=current_user._get_current_object())
        db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
