"""Email: decide a message once, send it at most once, keep what happened in the outbox.

A message is decided by `queue_email`, which inserts its `OutboundEmail` row under a key naming the
person and the event or period; the unique index makes a second decision of the same message (a
second cron process, a retried fan-out) a no-op. It is handed to a worker when the caller's
transaction commits (a session hook), so a message leaves only with the change that decided it (an
added member's invitation), and a rolled-back change sends nothing. The row is sent by a job (`send_email` in
`vsync.jobs.notifications`), which claims it (`queued` → `sending`, committed) before it hands it
to SMTP and marks it `sent` after: two workers given the same row send it once. A failure puts the
row back to `queued` with its error while retries remain (RQ spaces them by
`VSYNC_MAIL_RETRY_INTERVALS`), then `failed`. A row a dead worker left `sending` becomes `unknown`
(`sweep_outbox`): it may or may not have left, and sending it again could send it twice.

Each message is rendered from one template under `templates/email/` (`<name>.email`) with three
blocks, `subject`, `text` and `html`, into a multipart text and HTML message. A message about an
invoice or credit note (its row's `invoice_id`) carries the document as PDF and CSV, drawn when it
is sent in the org's scope, so the outbox holds no document bytes. SMTP sends have the
`VSYNC_SMTP_TIMEOUT`; with no SMTP host (the embedded default) `OutboxFilesEmailBackend` writes each
message as an `.eml` file under `instance/outbox/`.

A message about a person's own account (`queue_account_email`: a reset or email-change link, an
account-security notice) belongs to no org: it is decided wherever that person acts, often with no
scope at all (signing in, asking for a reset), so its row is written with a reviewed Core insert,
with no `org_id`, which no org's scope sees, and claimed, sent and retried the same way
(`send_account_email`, `record_account_attempt`): it needs no scope, so the embedded default sends
it inline inside the request that decided it, whoever made that request.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from datetime import datetime, timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import cast

from flask import current_app
from flask_mailman import EmailMultiAlternatives
from flask_mailman.backends.base import BaseEmailBackend
from rq import Retry
from sqlalchemy import CursorResult, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vsync import queue
from vsync.errors import Conflict, NotFound
from vsync.extensions import db, mail
from vsync.models import Invoice, Organization, OutboundEmail
from vsync.models.notifications import ACCOUNT, FAILED, QUEUED, SENDING, SENT, UNKNOWN
from vsync.models.types import utcnow
from vsync.services import audit
from vsync.services.billing import documents
from vsync.services.orgs import normalize_email
from vsync.tenancy import reviewed_sql

log = logging.getLogger(__name__)

SEND_JOB = "vsync.jobs.notifications.send_email"
SEND_TIMEOUT = 120  # seconds of one send job: the SMTP timeout applies to each socket operation inside it
# A `sending` row older than this was left by a worker that died; a `queued` one was never handed to a
# worker (the process that decided it died before enqueueing) and is enqueued again.
STALE_AFTER = timedelta(minutes=15)
_PENDING = "vsync.outbox.pending"


class OutboxFilesEmailBackend(BaseEmailBackend):
    """The embedded default's "SMTP server": each message becomes `<MAIL_FILE_PATH>/<time>-<id>.eml`,
    a file any mail client opens."""

    def send_messages(self, email_messages) -> int:
        folder = Path(self.mailman.file_path)
        folder.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            mime = message.message()
            name = mime["Message-ID"].strip("<>").split("@")[0]
            path = folder / f"{utcnow():%Y%m%dT%H%M%S}-{name}.eml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(mime.as_bytes())
            log.info("email written to %s", path)
        return len(email_messages)


def public_url() -> str:
    """Where people reach vsync (`VSYNC_PUBLIC_URL`): links in messages start here."""
    return current_app.config["VSYNC_PUBLIC_URL"]


def email_configured() -> bool:
    """Whether messages go to an SMTP server (`VSYNC_SMTP_HOST`), not the outbox folder."""
    return current_app.config["MAIL_BACKEND"] == "smtp"


def outbox_folder() -> str | None:
    """Where the embedded default writes messages, or None when they go to an SMTP server."""
    app = current_app
    return app.config["MAIL_FILE_PATH"] if app.config["MAIL_BACKEND"].endswith("OutboxFilesEmailBackend") else None


def render(template: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) of `templates/email/<template>.email`. The file is not autoescaped (its
    text block is plain text); its html block escapes inside `{% autoescape true %}`."""
    source = current_app.jinja_env.get_template(f"email/{template}.email")
    ctx = source.new_context(dict(context))

    def block(name: str) -> str:
        return "".join(source.blocks[name](ctx)).strip()

    return " ".join(block("subject").split()), block("text") + "\n", block("html")


def queue_email(
    org_id: int,
    *,
    kind: str,
    key: str,
    to: str,
    template: str,
    context: dict,
    user_id: int | None = None,
    invoice_id: int | None = None,
) -> OutboundEmail | None:
    """Decide a message: its outbox row, or None when a message with `key` was decided already.
    It is dispatched when the caller commits (see the module docstring). `invoice_id` attaches that
    invoice or credit note of the org, as PDF and CSV."""
    to = normalize_email(to)
    subject, _, _ = render(template, {"org_name": _org_name(org_id), **context})
    row = OutboundEmail(
        org_id=org_id,
        user_id=user_id,
        kind=kind,
        dedupe_key=key,
        to_address=to,
        subject=subject[:300],
        template=template,
        context=context,
        invoice_id=invoice_id,
        status=QUEUED,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError as exc:
        if "dedupe_key" not in str(exc.orig):
            raise
        return None  # decided already (by another cron process, or an earlier run)
    db.session.info.setdefault(_PENDING, []).append((org_id, row.id))
    return row


def queue_account_email(user_id: int, *, key: str, to: str, template: str, context: dict) -> int | None:
    """Decide a message about `user_id`'s own account (see the module docstring): its outbox row's id,
    or None when a message with `key` was decided already. Dispatched when the caller commits."""
    to = normalize_email(to)
    subject, _, _ = render(template, {"org_name": _org_name(None), **context})
    statement = (
        insert(OutboundEmail.__table__)
        .values(
            org_id=None,
            user_id=user_id,
            kind=ACCOUNT,
            dedupe_key=key[:200],
            to_address=to,
            subject=subject[:300],
            template=template,
            context=context,
            status=QUEUED,
            attempts=0,
            created_at=utcnow(),
        )
        .returning(OutboundEmail.__table__.c.id)
    )
    try:
        with db.session.begin_nested():
            email_id = db.session.connection().execute(reviewed_sql(statement)).scalar_one()
    except IntegrityError as exc:
        if "dedupe_key" not in str(exc.orig):
            raise
        return None
    db.session.info.setdefault(_PENDING, []).append((None, email_id))
    return email_id


ACCOUNT_EVENTS = {
    "password_set": "A new password was set for your vsync account with a set-password link",
    "password_changed": "The password of your vsync account was changed",
    "email_changed": "The email address of your vsync account was changed to {new_email}",
    "new_device": "Your vsync account was signed in from a new device: {device}, from {ip}",
    "two_factor_reset": "A platform admin turned two-factor sign-in off for your vsync account and ended "
    "every session of yours; sign in with your password and turn it on again with your new device",
}


def send_account_notice(user_id: int, to: str, event: str, *, key: str, when: datetime, **details: str) -> int | None:
    """An account-security message (`ACCOUNT_EVENTS`) to `to`: what happened, when, and where to reset
    the password and end sessions if it was not the person. Decided once per `key`."""
    context = {
        "event": event,
        "what": ACCOUNT_EVENTS[event].format(**details),
        "when": f"{when:%Y-%m-%d %H:%M} UTC",
        "account_url": f"{public_url()}/account",
        "forgot_url": f"{public_url()}/forgot-password",
    }
    return queue_account_email(
        user_id, key=f"account:{event}:{key}", to=to, template="account_security", context=context
    )


def _org_name(org_id: int | None) -> str:
    """The caller's org, or a stored message's (a foreign key); "vsync" for a message of no org."""
    return "vsync" if org_id is None else db.session.get_one(Organization, org_id).name


@event.listens_for(Session, "after_commit")
def _dispatch_committed(session: Session) -> None:
    """After the outermost commit only: releasing a savepoint fires this event too."""
    if session.in_nested_transaction():
        return
    for org_id, email_id in session.info.pop(_PENDING, []):
        dispatch(org_id, email_id)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction) -> None:
    """When the outermost transaction rolls back only: a savepoint's rollback, or that of a flush that
    failed inside one (a message decided already, `queue_email`), leaves the messages decided before it."""
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def send_invitation(org: Organization, membership_id: int, email: str, role: str, token: str) -> OutboundEmail | None:
    """A person added to `org` gets their set-password link by email (`vsync.services.members`)."""
    context = {
        "role": role.replace("_", " "),
        "set_password_url": f"{public_url()}/set-password/{token}",
        "login_url": f"{public_url()}/login",
    }
    return queue_email(
        org.id, kind="invitation", key=f"invitation:{membership_id}", to=email, template="invitation", context=context
    )


def send_test_email(org: Organization, to: str) -> OutboundEmail:
    """A message that says the settings work, to check them (`flask send-test-email`)."""
    row = queue_email(org.id, kind="test", key=f"test:{secrets.token_hex(8)}", to=to, template="test", context={})
    assert row is not None  # a fresh random key was never decided before
    return row


def dispatch(org_id: int | None, email_id: int) -> str | None:
    """Hand a decided (and committed) message to a worker, or send it now without Redis."""
    intervals = current_app.config["VSYNC_MAIL_RETRY_INTERVALS"]
    return queue.enqueue(
        SEND_JOB,
        org_id,
        email_id,
        job_id=f"vsync-email-{email_id}",
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        job_timeout=SEND_TIMEOUT,
        on_failure="vsync.jobs.notifications.on_send_failure",
        record_attempt="vsync.jobs.notifications.record_send_attempt",
    )


def claim(email_id: int) -> OutboundEmail | None:
    """Take a queued message for sending (committed), or None when another worker has it or it is
    done: the one guard between a decided message and a second send."""
    taken = cast(
        CursorResult,
        db.session.execute(
            update(OutboundEmail)
            .where(OutboundEmail.id == email_id, OutboundEmail.status == QUEUED)
            .values(status=SENDING, claimed_at=utcnow(), attempts=OutboundEmail.attempts + 1)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    db.session.commit()
    return db.session.get(OutboundEmail, email_id) if taken == 1 else None


def _message(row) -> EmailMultiAlternatives:
    """The message of an outbox row (an `OutboundEmail`, or its table's row for a message of no org)."""
    subject, text, html = render(row.template, {"org_name": _org_name(row.org_id), **row.context})
    headers = {"Message-ID": make_msgid(f"vsync-{row.id}", domain="vsync"), **row.context.get("headers", {})}
    message = EmailMultiAlternatives(subject=subject, body=text, to=[row.to_address], headers=headers)
    message.attach_alternative(html, "text/html")
    if row.invoice_id is not None:
        _attach_invoice(message, row)
    return message


def _attach_invoice(message: EmailMultiAlternatives, row: OutboundEmail) -> None:
    """The invoice's PDF and CSV as they are now, drawn in the send job's scope (the row's org)."""
    invoice = db.session.get_one(Invoice, row.invoice_id)
    org = db.session.get_one(Organization, row.org_id)
    name = invoice.number or str(invoice.id)
    message.attach(f"{name}.pdf", documents.invoice_pdf(invoice, org), "application/pdf")
    message.attach(f"{name}.csv", documents.invoice_csv(invoice, org), "text/csv")


def send_claimed(row: OutboundEmail) -> None:
    """Hand a claimed message to SMTP (or the outbox folder) and mark it sent. An exception leaves it
    `sending` for `record_attempt` to put back or fail."""
    message = _message(row)
    with mail.get_connection() as connection:
        connection.send_messages([message])
    row.status, row.sent_at, row.error = SENT, utcnow(), None
    row.message_id = message.extra_headers["Message-ID"]
    db.session.commit()
    log.info("email %s (%s) sent to %s", row.id, row.kind, row.to_address)


def retry_failed(email_id: int) -> OutboundEmail:
    """Send a `failed` message again (a platform admin's decision; audited): back to `queued`, handed to
    the send job when the caller commits, with its retries afresh. Only a failed one: it never left
    (each attempt was refused or timed out), so this cannot send it twice; an `unknown` one may have
    left and is never sent again, and a second retry of the same message finds it queued (409)."""
    taken = cast(
        CursorResult,
        db.session.execute(
            update(OutboundEmail)
            .where(OutboundEmail.id == email_id, OutboundEmail.status == FAILED)
            .values(status=QUEUED, claimed_at=None)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    row = db.session.get(OutboundEmail, email_id, populate_existing=True)
    if row is None:
        raise NotFound("There is no such message.", field="id")
    if taken != 1:
        raise Conflict(f"Only a failed message is sent again; this one is {row.status}.", field="status")
    audit.record(
        "email.retried",
        org_id=row.org_id,
        target=row,
        summary=f"{row.kind} to {row.to_address} after {row.attempts} attempt(s): {row.error or 'no error kept'}",
    )
    db.session.info.setdefault(_PENDING, []).append((row.org_id, row.id))
    return row


# A one-time or unsubscribe link's token: the path segment after these, or any long URL-safe segment or
# query value (a token, whatever route carries it).
_TOKEN_IN_LINK = re.compile(
    r"(?P<head>/(?:set-password|reset-password|unsubscribe)/)[^\s\"'<>/?#]+"
    r"|(?P<lead>https?://[^\s\"'<>]*?[/=])[A-Za-z0-9_\-.~]{24,}"
)


def redact_links(text: str) -> str:
    """`text` with the tokens of its links replaced by `[redacted]`: whoever reads a stored message
    (platform staff in the outbox) must not be able to use its set-password or unsubscribe link."""
    while True:
        redacted = _TOKEN_IN_LINK.sub(lambda m: f"{m.group('head') or m.group('lead')}[redacted]", text)
        if redacted == text:
            return text
        text = redacted


def shown_text(row: OutboundEmail) -> str:
    """The text part of a stored message as it is sent, links' tokens redacted (`redact_links`)."""
    _, text, _ = render(row.template, {"org_name": _org_name(row.org_id), **row.context})
    return redact_links(text)


_outbox = OutboundEmail.__table__
_ACCOUNT_ROW = (_outbox.c.kind == ACCOUNT) & _outbox.c.org_id.is_(None)


def _core(statement):
    """Run a reviewed statement on an account message's row (see the module docstring)."""
    return db.session.connection().execute(reviewed_sql(statement))


def send_account_email(email_id: int) -> str:
    """Claim, send and mark sent a message of no org (see the module docstring), as `claim` and
    `send_claimed` do for an org's; returns what happened, for the job result."""
    claimed = _core(
        update(_outbox)
        .where(_outbox.c.id == email_id, _outbox.c.status == QUEUED, _ACCOUNT_ROW)
        .values(status=SENDING, claimed_at=utcnow(), attempts=_outbox.c.attempts + 1)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return "skipped"
    row = _core(select(_outbox).where(_outbox.c.id == email_id)).one()
    message = _message(row)
    with mail.get_connection() as connection:
        connection.send_messages([message])
    _core(
        update(_outbox)
        .where(_outbox.c.id == email_id)
        .values(status=SENT, sent_at=utcnow(), error=None, message_id=message.extra_headers["Message-ID"])
    )
    db.session.commit()
    log.info("email %s (account) sent to %s", email_id, row.to_address)
    return "sent"


def record_account_attempt(email_id: int, exc: BaseException, will_retry: bool) -> None:
    """`record_attempt` for a message of no org."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    _core(
        update(_outbox)
        .where(_outbox.c.id == email_id, _outbox.c.status == SENDING, _ACCOUNT_ROW)
        .values(status=QUEUED if will_retry else FAILED, error=error)
    )
    log.warning("email %s failed%s: %s", email_id, ", will retry" if will_retry else "", error)
    db.session.commit()


def record_attempt(email_id: int, exc: BaseException, will_retry: bool) -> None:
    """A send that raised: back to `queued` while retries remain, else `failed`; the error is kept."""
    row = db.session.get(OutboundEmail, email_id)
    if row is None or row.status != SENDING:
        return
    row.status = QUEUED if will_retry else FAILED
    row.error = f"{type(exc).__name__}: {exc}"[:2000]
    log.warning(
        "email %s attempt %s failed%s: %s", email_id, row.attempts, ", will retry" if will_retry else "", row.error
    )
    db.session.commit()


def sweep_outbox() -> tuple[list[tuple[int | None, int]], int]:
    """Platform-wide (in a bypass): rows a dead worker left `sending` become `unknown`; `queued` rows
    nobody enqueued are returned as (org id, email id) to dispatch again. Committed."""
    cutoff = utcnow() - STALE_AFTER
    lost = cast(
        CursorResult,
        db.session.execute(
            update(OutboundEmail)
            .where(OutboundEmail.status == SENDING, OutboundEmail.claimed_at < cutoff)
            .values(status=UNKNOWN, error="The worker stopped while sending; not sent again, so never twice.")
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    waiting = db.session.execute(
        select(OutboundEmail.org_id, OutboundEmail.id).where(
            OutboundEmail.status == QUEUED,
            OutboundEmail.created_at < cutoff,
            (OutboundEmail.claimed_at.is_(None)) | (OutboundEmail.claimed_at < cutoff),
        )
    ).all()
    db.session.commit()
    return [tuple(row) for row in waiting], lost
