"""The platform console's outbox: every org's recent outbound emails with what happened to each.

A platform admin sees each message's status (queued, sending, sent, failed, unknown), attempts and
last error, kind, recipient, subject and org, filters them, reads a message's text, and sends a
failed one again (`mail.retry_failed`: audited, through the same send job, never twice). The text is
rendered from the stored template and context with the tokens of its links redacted (`mail.shown_text`):
the outbox never shows a set-password or unsubscribe link that would work.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_admin import expose
from markupsafe import Markup

from vsync.admin.access import PlatformModelView
from vsync.admin.display import secret_free_column, time_column
from vsync.admin.forms import RowForm
from vsync.admin.platform import org_column
from vsync.errors import DomainError
from vsync.extensions import db
from vsync.services.notifications import mail

OUTBOX_TIMES = ("created_at", "claimed_at", "sent_at")


def _message_text(view, context, model, name) -> Markup:
    return Markup("<pre class='mb-0' style='white-space: pre-wrap'>{}</pre>").format(mail.shown_text(model))


class OutboxView(PlatformModelView):
    column_list = ("created_at", "org_id", "kind", "to_address", "subject", "status", "attempts", "error")
    column_labels = {"org_id": "Organisation", "to_address": "To", "created_at": "Decided", "error": "Last error"}
    column_formatters = {"org_id": org_column, "created_at": time_column, "error": secret_free_column()}
    column_filters = ("status", "kind", "org_id")
    column_searchable_list = ("to_address", "subject")
    column_default_sort = ("id", True)
    column_details_list = [
        "org_id",
        "kind",
        "to_address",
        "subject",
        "status",
        "attempts",
        "error",
        *OUTBOX_TIMES,
        "message_id",
        "text",
    ]
    column_formatters_detail = {
        **dict.fromkeys(OUTBOX_TIMES, time_column),
        "org_id": org_column,
        "error": secret_free_column(None),
        "text": _message_text,
    }
    details_extra = "admin/platform/email_retry.html"

    def get_empty_list_message(self) -> str:
        return "No email has been decided yet."

    @expose("/retry", methods=["POST"])
    def retry(self):
        form = RowForm(prefix="retry")
        row = form.row_id.data if form.validate_on_submit() else None
        if not (row and row.isdigit()):
            flash("No such message.", "error")
            return redirect(url_for(".index_view"))
        try:
            email = mail.retry_failed(int(row))
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for(".index_view"))
        flash(f"The message to {email.to_address} is queued to be sent again.", "success")
        return redirect(url_for(".details_view", id=email.id))
