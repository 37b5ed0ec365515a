"""An invoice or credit note as CSV and as PDF, with the same rows and totals.

The PDF is drawn with fpdf2 (pure Python, maintained) in its built-in Helvetica, which covers
Latin-1 only: other characters of a description are replaced, so a document always renders. Each
line is its description, then its quantity, unit price and amount, right-aligned. fpdf2 is imported
when a PDF is drawn: with the font tools it loads it takes about 30 MB, which a web process that
never draws one would otherwise hold.
"""

from __future__ import annotations

import csv
import io

from vsync.models import Invoice, Organization
from vsync.models.billing import CREDIT_NOTE
from vsync.services.billing.money import format_money, round_money

LINE_COLUMNS = ["position", "kind", "description", "quantity", "unit", "unit_price", "amount"]


def title_of(invoice: Invoice) -> str:
    kind = "Credit note" if invoice.kind == CREDIT_NOTE else "Invoice"
    return f"{kind} {invoice.number or '(draft)'}"


def totals_of(invoice: Invoice) -> list[tuple[str, str]]:
    """The figures both documents end with, as text."""
    rows = [
        ("Subtotal", format_money(invoice.subtotal, invoice.currency)),
        (f"Tax ({invoice.tax_rate * 100:.2f} %)", format_money(invoice.tax, invoice.currency)),
        ("Total", format_money(invoice.total, invoice.currency)),
    ]
    if invoice.kind != CREDIT_NOTE:
        rows += [
            ("Paid", format_money(invoice.paid, invoice.currency)),
            ("Credited", format_money(invoice.credited, invoice.currency)),
            ("Balance due", format_money(invoice.balance, invoice.currency)),
        ]
    return rows


def _heading(invoice: Invoice, org: Organization) -> list[tuple[str, str]]:
    return [
        (title_of(invoice), invoice.status),
        ("Organisation", f"{org.name} ({org.slug})"),
        ("Period", f"{invoice.period_start} to {invoice.period_end} (exclusive, {org.timezone})"),
        ("Issued", f"{invoice.issued_at:%Y-%m-%d}" if invoice.issued_at else "not yet"),
    ]


def invoice_csv(invoice: Invoice, org: Organization) -> str:
    """Heading rows, the lines under a header row, then the totals."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerows(_heading(invoice, org))
    out.writerow([])
    out.writerow(LINE_COLUMNS)
    out.writerows(
        [
            line.position,
            line.kind,
            line.description,
            f"{line.quantity.normalize():f}",
            line.unit,
            f"{line.unit_price.normalize():f}",
            str(round_money(line.amount, invoice.currency)),
        ]
        for line in invoice.lines
    )
    out.writerow([])
    out.writerows(totals_of(invoice))
    return buffer.getvalue()


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def invoice_pdf(invoice: Invoice, org: Organization) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title_of(invoice))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(title_of(invoice)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for label, value in _heading(invoice, org)[1:] + [("Status", invoice.status)]:
        pdf.cell(0, 6, _latin1(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for line in invoice.lines:
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(0, 5, _latin1(f"{line.position}. {line.description}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        pdf.cell(
            0,
            5,
            f"{line.quantity.normalize():f} {line.unit} x {line.unit_price.normalize():f} = "
            f"{format_money(line.amount, invoice.currency)}",
            new_x="LMARGIN",
            new_y="NEXT",
            align="R",
        )
    pdf.ln(4)
    for label, value in totals_of(invoice):
        pdf.cell(0, 6, f"{label}: {value}", new_x="LMARGIN", new_y="NEXT", align="R")
    return bytes(pdf.output())
