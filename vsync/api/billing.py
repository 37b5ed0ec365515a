"""GET /api/v1/orgs/{org}/usage, /invoices, /invoices/{id} and its CSV and PDF: an org's billing.

For org admins and platform principals (an org key acts as a manager, so it is refused). Usage is
of one local calendar month of the org (default: the current one, so far), counted as its invoices
count it (`vsync.services.billing.usage`), with the plan in force on its last day. Another org's
invoice is a 404. An org under a billing lock gets `org_suspended` here like everywhere (`vsync.auth`).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import marshmallow as ma
from flask import Response, g
from marshmallow import fields
from sqlalchemy import select

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.export import csv_doc, csv_response, format_field, wants_csv
from vsync.api.paging import newest_by_id
from vsync.api.schemas import Query, UtcDateTimeField, page_of, page_params
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import Invoice, Organization
from vsync.models.orgs import ORG_ADMIN
from vsync.models.types import utcnow
from vsync.services.billing import documents
from vsync.services.billing.invoices import get_invoice
from vsync.services.billing.plans import plan_on
from vsync.services.billing.usage import local_today, month_span, usage

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
UsageQuery = Query.from_dict(
    {
        "month": fields.String(
            load_default=None,
            metadata={
                "description": "A month of the org's calendar, `YYYY-MM`; default the current one (so far).",
                "example": "2026-11",
            },
        )
    },
    name="UsageQuery",
)
InvoicesQuery = Query.from_dict({"format_": format_field(), **page_params()}, name="InvoicesQuery")
INVOICE_COLUMNS = [
    "id",
    "kind",
    "number",
    "status",
    "period_start",
    "period_end",
    "currency",
    "subtotal",
    "tax",
    "total",
    "paid",
    "credited",
    "balance",
    "issued_at",
]


def _money(**kwargs) -> fields.String:
    return fields.String(
        required=True, metadata={"description": "A decimal amount in the currency's minor units.", **kwargs}
    )


class PlanSchema(ma.Schema):
    code = fields.String(required=True)
    version = fields.Integer(required=True)
    name = fields.String(required=True)
    currency = fields.String(required=True)
    monthly_fee = _money()
    included_minutes = fields.Integer(required=True)
    included_sms = fields.Integer(required=True)
    included_numbers = fields.Integer(required=True)
    rounding = fields.String(
        required=True, metadata={"description": "Talk time per call, up to the started `second` or `minute`."}
    )


class UsageSchema(ma.Schema):
    month = fields.String(required=True)
    from_ = fields.Date(data_key="from", required=True)
    to = fields.Date(required=True, metadata={"description": "Exclusive: the day after the last one counted."})
    rounding = fields.String(required=True)
    calls = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "By direction: inbound, outbound, callback."},
    )
    talk_minutes = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "Billable minutes by direction, rounded per call."},
    )
    talk_minutes_total = fields.String(required=True)
    sms_sent = fields.Integer(required=True)
    sms_received = fields.Integer(required=True)
    number_days = fields.Integer(required=True)
    recordings = fields.Integer(required=True)
    plan = fields.Nested(PlanSchema, allow_none=True, required=True)


class InvoiceLineSchema(ma.Schema):
    position = fields.Integer(required=True)
    kind = fields.String(required=True)
    description = fields.String(required=True)
    quantity = fields.String(required=True)
    unit = fields.String(required=True)
    unit_price = fields.String(required=True)
    amount = _money()


class InvoiceSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "invoice or credit_note."})
    number = fields.String(allow_none=True, required=True, metadata={"example": "INV-2026-000123"})
    status = fields.String(required=True, metadata={"description": "draft, open, paid or void."})
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True, metadata={"description": "Exclusive."})
    currency = fields.String(required=True)
    subtotal = _money()
    tax_rate = fields.String(required=True)
    tax = _money()
    total = _money()
    paid = _money()
    credited = _money()
    balance = _money()
    issued_at = UtcDateTimeField(allow_none=True, required=True)
    credits_invoice_id = fields.Integer(allow_none=True, required=True)


class InvoiceDetailSchema(InvoiceSchema):
    lines = fields.List(fields.Nested(InvoiceLineSchema), required=True)


def _month_of(args: dict, org_id: int) -> tuple[date, date]:
    if args["month"] is None:
        today = local_today(org_id, utcnow())
        return month_span(today.year, today.month)
    matched = _MONTH.match(args["month"])
    if not matched:
        raise ValidationError("month is YYYY-MM, e.g. 2026-11.", field="month")
    return month_span(int(matched[1]), int(matched[2]))


def _plan_json(plan) -> dict | None:
    if plan is None:
        return None
    return {key: getattr(plan, key) for key in PlanSchema._declared_fields} | {"monthly_fee": str(plan.monthly_fee)}


@bp.get("/orgs/<org>/usage")
@requires(scope="read", role=ORG_ADMIN)
@bp.arguments(UsageQuery, location="query")
@bp.response(200, UsageSchema)
def get_usage(args, org: str):
    """The org's usage of a month

    Calls and billable talk minutes by direction, SMS sent and received, number-days and recordings
    of one month of the org's calendar, as its invoice counts them; the current month so far by
    default. Talk time is rounded per call as the plan in force on the month's last day says.
    """
    org_id = g.org_access.org_id
    start, end = _month_of(args, org_id)
    plan = plan_on(org_id, end - timedelta(days=1))
    used = usage(org_id, start, end, plan.rounding if plan else "second")
    return {**used.as_dict(), "month": f"{start:%Y-%m}", "from_": start, "to": end, "plan": _plan_json(plan)}


def _invoice_json(invoice: Invoice) -> dict:
    money = {key: str(getattr(invoice, key)) for key in ("subtotal", "tax_rate", "tax", "total", "paid", "credited")}
    return {
        "id": invoice.id,
        "kind": invoice.kind,
        "number": invoice.number,
        "status": invoice.status,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "currency": invoice.currency,
        "balance": str(invoice.balance),
        "issued_at": invoice.issued_at,
        "credits_invoice_id": invoice.credits_invoice_id,
        **money,
    }


def _invoice_row(invoice: Invoice) -> list:
    item = _invoice_json(invoice)
    return [
        item[key] if key != "issued_at" or item[key] is None else f"{item[key]:%Y-%m-%dT%H:%M:%SZ}"
        for key in INVOICE_COLUMNS
    ]


@bp.get("/orgs/<org>/invoices")
@requires(scope="read", role=ORG_ADMIN)
@bp.arguments(InvoicesQuery, location="query")
@bp.response(200, page_of(InvoiceSchema, "InvoicesPage"))
@bp.doc(**csv_doc("With format=csv or Accept: text/csv: every invoice and credit note, one per row."))
def list_invoices(args, org: str):
    """The org's invoices and credit notes

    Newest first, drafts included.
    """
    if wants_csv(args):

        def batches():
            yield [_invoice_row(i) for i in db.session.scalars(select(Invoice).order_by(Invoice.id.desc()))]

        return csv_response(INVOICE_COLUMNS, batches, f"{g.org_access.slug}-invoices.csv")
    return newest_by_id(select(Invoice), Invoice.id, args, _invoice_json)


@bp.get("/orgs/<org>/invoices/<int:invoice_id>")
@requires(scope="read", role=ORG_ADMIN)
@bp.response(200, InvoiceDetailSchema)
def get_invoice_detail(org: str, invoice_id: int):
    """An invoice or credit note, with its lines

    Another org's invoice is a 404.
    """
    invoice = get_invoice(invoice_id)
    lines = [
        {
            "position": line.position,
            "kind": line.kind,
            "description": line.description,
            "quantity": f"{line.quantity.normalize():f}",
            "unit": line.unit,
            "unit_price": f"{line.unit_price.normalize():f}",
            "amount": str(line.amount),
        }
        for line in invoice.lines
    ]
    return {**_invoice_json(invoice), "lines": lines}


def _document(invoice_id: int, render, mimetype: str, extension: str) -> Response:
    invoice = get_invoice(invoice_id)
    body = render(invoice, db.session.get(Organization, invoice.org_id))
    response = Response(body, mimetype=mimetype)
    name = invoice.number or f"draft-{invoice.id}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    return response


@bp.get("/orgs/<org>/invoices/<int:invoice_id>/pdf")
@requires(scope="read", role=ORG_ADMIN)
@bp.doc(
    responses={
        "200": {
            "description": "The invoice as a PDF document.",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
)
def get_invoice_pdf(org: str, invoice_id: int):
    """An invoice as PDF

    The same lines and totals as its CSV.
    """
    return _document(invoice_id, documents.invoice_pdf, "application/pdf", "pdf")


@bp.get("/orgs/<org>/invoices/<int:invoice_id>/csv")
@requires(scope="read", role=ORG_ADMIN)
@bp.doc(
    responses={
        "200": {
            "description": "The invoice as CSV: heading, lines, totals.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    }
)
def get_invoice_csv(org: str, invoice_id: int):
    """An invoice as CSV

    Heading rows, the lines under their own header row, then the totals.
    """
    return _document(invoice_id, documents.invoice_csv, "text/csv", "csv")
