"""The billing pages of the consoles: the org admin's billing page and downloads, and the platform
billing console's forms (a lock that answers the org's members at once, a refused plan that names
its field and writes nothing, a payment)."""

from __future__ import annotations

import io

from pypdf import PdfReader
from sqlalchemy import func, select

from tests.helpers import csrf_token
from tests.world import api_as
from vsync.extensions import db
from vsync.models import Invoice, Plan
from vsync.services.billing import invoices
from vsync.tenancy import platform_bypass

PAGE = "/admin/platform/billing/"


def test_the_org_billing_page_shows_usage_and_invoices_with_downloads(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    page = client.get("/admin/orgs/org-a/billing/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "World plan v1" in text and "billing-usage" in text
    pdf = client.get(f"/admin/orgs/org-a/billing/invoices/{world.invoices['a']}/pdf")
    assert pdf.status_code == 200
    assert "Invoice INV-2026-000001" in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert client.get(f"/admin/orgs/org-a/billing/invoices/{world.invoices['b']}/pdf").status_code == 404
    assert api_as(app.test_client(), "manager_a", world).get("/admin/orgs/org-a/billing/").status_code == 403


def test_a_lock_made_in_the_platform_console_answers_the_orgs_members_and_lifts(app, world):
    root = api_as(app.test_client(), "root", world)
    token = csrf_token(root, PAGE)
    posted = root.post(f"{PAGE}locks", data={"csrf_token": token, "lock-org": world.a, "lock-reason": "unpaid"})
    assert posted.status_code == 302, posted.get_data(as_text=True)
    member = api_as(app.test_client(), "admin_a", world)
    refused = member.get("/admin/orgs/org-a/calls/")
    assert refused.status_code == 403 and "unpaid" in refused.get_data(as_text=True)
    again = root.post(f"{PAGE}locks", data={"csrf_token": token, "lock-org": world.a, "lock-reason": "twice"})
    assert again.status_code == 400 and "suspended already" in again.get_data(as_text=True)
    assert root.post(f"{PAGE}locks/{world.a}/lift", data={"csrf_token": token}).status_code == 302
    assert member.get("/admin/orgs/org-a/calls/").status_code == 200


def test_a_plan_with_a_negative_price_is_refused_naming_the_field(app, world, in_app):
    root = api_as(app.test_client(), "root", world)
    fields = {
        "plan-code": "basic",
        "plan-name": "Basic",
        "plan-currency": "USD",
        "plan-rounding": "minute",
        "plan-monthly_fee": "-5",
        "plan-included_minutes": "0",
        "plan-minute_price": "0",
        "plan-included_sms": "0",
        "plan-sms_price": "0",
        "plan-included_numbers": "0",
        "plan-number_price": "0",
    }
    refused = root.post(f"{PAGE}plans", data={"csrf_token": csrf_token(root, PAGE), **fields})
    assert refused.status_code == 400 and "monthly_fee must be zero or more" in refused.get_data(as_text=True)
    with in_app(), platform_bypass("test"):
        assert db.session.scalar(select(func.count()).select_from(Plan)) == 1  # the world's
    saved = root.post(f"{PAGE}plans", data={"csrf_token": csrf_token(root, PAGE), **fields, "plan-monthly_fee": "5"})
    assert saved.status_code == 302


def test_a_payment_recorded_in_the_console_settles_the_invoice(app, world, in_app):
    with in_app(), platform_bypass("test"):
        invoice = db.session.get(Invoice, world.invoices["a"])
        invoices.add_adjustment(invoice.id, "setup", "12.50")  # 22.50, of which 1.00 is paid
        db.session.commit()
    root = api_as(app.test_client(), "root", world)
    token = csrf_token(root, PAGE)
    too_much = root.post(
        f"{PAGE}invoices/{world.invoices['a']}/payments",
        data={"csrf_token": token, "pay-amount": "21.51", "pay-received_on": "2026-11-03"},
    )
    assert too_much.status_code == 400 and "more than the balance" in too_much.get_data(as_text=True)
    paid = root.post(
        f"{PAGE}invoices/{world.invoices['a']}/payments",
        data={"csrf_token": token, "pay-amount": "21.50", "pay-received_on": "2026-11-03"},
    )
    assert paid.status_code == 302
    with in_app(), platform_bypass("test"):
        assert db.session.get(Invoice, world.invoices["a"]).status == "paid"
    assert "22.50" in root.get(PAGE).get_data(as_text=True)
