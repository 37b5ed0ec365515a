"""The console's forms. Every one carries a CSRF token (Flask-WTF); ids posted in them are checked
against what the acting org may see, and another org's id is a form error, never a silent change."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)

# typeshed's WTForms stubs predate SelectChoice (WTForms 3.2) and type `choices` as tuples and strings.
from wtforms.fields.choices import SelectChoice  # pyright: ignore[reportAttributeAccessIssue]
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.validators import ValidationError as FieldError

from vsync.models.keys import SCOPES
from vsync.models.orgs import GLOBAL_ROLES, ORG_ROLES
from vsync.services.sync import ALL_KINDS


def options(pairs: Iterable[tuple]) -> list[SelectChoice]:
    """(value, label) pairs as the choices of a select (WTForms deprecates plain tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


ON_OFF = (("on", "on"), ("off", "off"))
ROLE_CHOICES = options((role, role.replace("_", " ")) for role in ORG_ROLES)


def _values(field: SelectField) -> set:
    """The values a select offers: its choices are `options(...)`, each a SelectChoice."""
    return {choice.value for choice in field.choices or ()}  # pyright: ignore[reportAttributeAccessIssue]


class OwnedChoice(SelectField):
    """A choice among rows the acting org (or platform admin) may use; anything else is refused by name."""

    def __init__(self, label=None, what: str = "item", **kwargs):
        super().__init__(label, coerce=int, **kwargs)
        self.what = what

    def pre_validate(self, form):
        if self.data not in _values(self):
            raise FieldError(f"That {self.what} is not one of this organisation's.")


class OwnedChoices(SelectMultipleField):
    def __init__(self, label=None, what: str = "item", **kwargs):
        super().__init__(label, coerce=int, **kwargs)
        self.what = what

    def pre_validate(self, form):
        allowed = _values(self)
        if not self.data or any(value not in allowed for value in self.data):
            raise FieldError(f"Choose one or more {self.what}s from the list.")


class RowForm(FlaskForm):
    """A button acting on one row; the view checks that the row is the org's."""

    row_id = HiddenField(validators=[DataRequired()])


class MemberForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    extension = StringField(
        "Extension",
        validators=[Optional(), Length(max=20)],
        description="MightyCall extension; agents see the calls of theirs.",
    )


class ChangeMemberForm(RowForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
    extension = StringField("Extension", validators=[Optional(), Length(max=20)])


class TimeZoneField(StringField):
    """An IANA zone name, typed with the browser's suggestions from every zone as you type (the form
    macro adds the `time-zones` list); the service checks the name against the same zone list."""

    def __init__(self, label: str = "Time zone", **kwargs):
        render_kw = {"list": "time-zones", "autocomplete": "off", "spellcheck": "false", **kwargs.pop("render_kw", {})}
        super().__init__(label, render_kw=render_kw, **kwargs)


class SettingsForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    timezone = TimeZoneField(
        validators=[DataRequired(), Length(max=64)],
        description="IANA name, e.g. America/New_York: type a city or region to choose. Days and charts follow it.",
    )
    service_level_target = FloatField(
        "Service-level target",
        validators=[InputRequired()],
        description="A fraction: 0.8 means 80 % of calls answered within the threshold.",
    )
    service_level_threshold_seconds = IntegerField("Service-level threshold (seconds)", validators=[InputRequired()])
    short_abandon_seconds = IntegerField(
        "Short abandon (seconds)",
        validators=[InputRequired()],
        description="Callers who hang up sooner are not counted as abandoned.",
    )
    require_two_factor = BooleanField(
        "Require two-factor sign-in",
        description="Everyone acting in this organisation must turn two-factor sign-in on; until they do, "
        "they are sent to do it.",
    )


class PreferencesForm(FlaskForm):
    """A person's notification preferences: one select per key of
    `vsync.services.notifications.preferences.CHOICES`."""

    digest = SelectField(
        "Digest email", choices=options([("off", "off"), ("daily", "daily"), ("weekly", "weekly (Mondays)")])
    )
    digest_hour = SelectField(
        "Digest at (local hour)",
        choices=options((str(h), f"{h:02d}:00") for h in range(24)),
        description="In the organisation's time zone.",
    )
    alert_service_level = SelectField("Alert: service level below target", choices=options(ON_OFF))
    alert_silence = SelectField("Alert: no calls during business hours", choices=options(ON_OFF))
    alert_abandon_rate = SelectField("Alert: abandon rate above its limit", choices=options(ON_OFF))
    alert_missed_calls = SelectField("Alert: too many missed calls", choices=options(ON_OFF))
    alert_sync_failing = SelectField("Alert: sync failing", choices=options(ON_OFF))
    alert_webhook_silence = SelectField("Alert: no webhook events while calls come in", choices=options(ON_OFF))
    sync_failures = SelectField("Sync failures", choices=options(ON_OFF))
    account_security = SelectField("Account security", choices=options(ON_OFF))
    support_tickets = SelectField(
        "Support tickets", choices=options(ON_OFF), description="News of the tickets you opened; org admins: all."
    )


class AlertRuleForm(FlaskForm):
    kind = SelectField(
        "Alert",
        choices=options(
            [
                ("service_level", "Service level below target"),
                ("abandon_rate", "Abandon rate above a limit"),
                ("missed_calls", "Missed calls above N"),
                ("silence", "No calls"),
                ("sync_failing", "Sync failing"),
                ("webhook_silence", "No webhook events while calls come in"),
            ]
        ),
    )
    window_minutes = IntegerField(
        "Window (minutes)",
        validators=[InputRequired()],
        description="Service level, abandon rate, missed calls: of the calls of the last N minutes. No calls, "
        "no webhook events: for N minutes. Sync failing: for N minutes.",
    )
    threshold = FloatField(
        "Threshold",
        validators=[Optional()],
        default=0.8,
        description="Service level and abandon rate: a fraction, 0.8 is 80 %. Missed calls: a count. Others: unused.",
    )
    enabled = BooleanField("On", default=True)


class AlertWebhookForm(FlaskForm):
    url = StringField(
        "Webhook URL",
        validators=[Optional(), Length(max=500)],
        description="HTTPS; every firing and resolution is POSTed here, signed. Empty removes the webhook.",
    )
    new_secret = BooleanField("Make a new signing secret")


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class BusinessHoursForm(FlaskForm):
    """One `HH:MM-HH:MM` per local weekday; empty is closed."""

    monday = StringField("Monday", validators=[Optional(), Length(max=11)])
    tuesday = StringField("Tuesday", validators=[Optional(), Length(max=11)])
    wednesday = StringField("Wednesday", validators=[Optional(), Length(max=11)])
    thursday = StringField("Thursday", validators=[Optional(), Length(max=11)])
    friday = StringField("Friday", validators=[Optional(), Length(max=11)])
    saturday = StringField("Saturday", validators=[Optional(), Length(max=11)])
    sunday = StringField("Sunday", validators=[Optional(), Length(max=11)])


class CredentialsForm(FlaskForm):
    """Write-only: the fields are always empty when shown, whatever is stored."""

    api_key = PasswordField("MightyCall API key", validators=[DataRequired(), Length(max=500)])
    user_key = PasswordField("MightyCall user key", validators=[DataRequired(), Length(max=500)])
    base_url = StringField(
        "API base URL", validators=[DataRequired(), Length(max=500)], default="https://api.mightycall.com/v4"
    )


class SyncForm(FlaskForm):
    integration = OwnedChoice("Integration", what="integration")
    kinds = SelectMultipleField(
        "What", choices=options((kind, kind) for kind in ALL_KINDS), default=["calls"], validators=[DataRequired()]
    )
    since = DateField("From (local date)", validators=[Optional()])
    until = DateField("To (local date, included)", validators=[Optional()])


class IntegrationActionForm(FlaskForm):
    integration = OwnedChoice("Integration", what="integration")


class ApiKeyForm(FlaskForm):
    service_fields = {"expires_at": "expires"}
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    scope = SelectField("Scope", choices=options((scope, scope) for scope in SCOPES))
    expires = DateField("Expires (optional)", validators=[Optional()])


class PlatformApiKeyForm(ApiKeyForm):
    org = SelectField("For", coerce=int, description="An organisation, or every one (a platform key).")


class OrgForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    slug = StringField(
        "Slug",
        validators=[DataRequired(), Length(max=63)],
        description="Lowercase letters, digits, hyphens; it appears in URLs.",
    )
    timezone = TimeZoneField(validators=[DataRequired(), Length(max=64)], default="UTC")


class UserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Global role", choices=options((role, role.replace("_", " ")) for role in GLOBAL_ROLES))


class UserRoleForm(RowForm):
    role = SelectField("Global role", choices=options((role, role.replace("_", " ")) for role in GLOBAL_ROLES))


class PlatformMemberForm(MemberForm):
    org = SelectField("Organisation", coerce=int)


class NumberForm(FlaskForm):
    service_fields = {"number": "e164"}
    e164 = StringField("Number", validators=[DataRequired(), Length(max=40)], description="E.164, e.g. +14155550123")
    label = StringField("Label", validators=[Optional(), Length(max=200)])


class AssignForm(FlaskForm):
    numbers = SelectMultipleField("Numbers", coerce=int, validators=[DataRequired()])
    orgs = SelectMultipleField(
        "Organisations", coerce=int, validators=[DataRequired()], description="Several organisations share a number."
    )
    at = DateTimeLocalField("From (UTC)", validators=[Optional()], format="%Y-%m-%dT%H:%M", description="Empty: now.")


class UnassignForm(FlaskForm):
    assignment = HiddenField(validators=[DataRequired()])
    at = DateTimeLocalField("Until (UTC)", validators=[Optional()], format="%Y-%m-%dT%H:%M")


class CreateIntegrationForm(CredentialsForm):
    org = SelectField("Organisation", coerce=int)


class ActiveForm(RowForm):
    active = BooleanField("Active")


class ReplayForm(FlaskForm):
    org = SelectField("Organisation", coerce=int)
