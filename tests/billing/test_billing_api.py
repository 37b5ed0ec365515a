"""The billing API with two orgs: each org's invoices and usage are its own, another org's are 404;
documents download; a bad month is a 400 naming `month`."""

from __future__ import annotations

import csv
import io

from pypdf import PdfReader

from tests.world import api_as


def test_another_orgs_invoices_and_usage_are_404(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    b_invoice = world.invoices["b"]
    for url in (
        f"/api/v1/orgs/org-a/invoices/{b_invoice}",
        f"/api/v1/orgs/org-a/invoices/{b_invoice}/pdf",
        f"/api/v1/orgs/org-a/invoices/{b_invoice}/csv",
        "/api/v1/orgs/org-b/usage",
        "/api/v1/orgs/org-b/invoices",
        f"/api/v1/orgs/org-b/invoices/{b_invoice}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.get_json()["error"]["code"] == "not_found"
    listed = client.get("/api/v1/orgs/org-a/invoices").get_json()["data"]
    assert [item["id"] for item in listed] == [world.invoices["a"]]
    exported = list(
        csv.DictReader(io.StringIO(client.get("/api/v1/orgs/org-a/invoices?format=csv").get_data(as_text=True)))
    )
    assert [int(row["id"]) for row in exported] == [world.invoices["a"]]


def test_usage_of_a_month_counts_the_orgs_calls_there(app, world):
    client = api_as(app.test_client(), "platform", world)
    body = client.get("/api/v1/orgs/org-a/usage?month=2026-11").get_json()
    assert (body["from"], body["to"], body["plan"]["name"]) == ("2026-11-01", "2026-12-01", "World plan")
    assert sum(body["calls"].values()) > 0
    assert client.get("/api/v1/orgs/org-a/usage?month=2026-10").get_json()["calls"] == {
        "inbound": 0,
        "outbound": 0,
        "callback": 0,
    }


def test_a_bad_month_is_a_400_naming_it(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    for month in ("2026-13", "11-2026", "2026-1"):
        error = client.get(f"/api/v1/orgs/org-a/usage?month={month}").get_json()["error"]
        assert (error["code"], list(error["details"])) == ("validation_error", ["month"])


def test_documents_download_as_pdf_and_csv(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    pdf = client.get(f"/api/v1/orgs/org-a/invoices/{world.invoices['a']}/pdf")
    assert pdf.mimetype == "application/pdf"
    assert "Invoice INV-2026-000001" in PdfReader(io.BytesIO(pdf.get_data())).pages[0].extract_text()
    table = client.get(f"/api/v1/orgs/org-a/invoices/{world.invoices['a']}/csv")
    assert table.mimetype == "text/csv" and "Balance due,9.00 USD" in table.get_data(as_text=True)


def test_a_manager_and_an_org_key_are_refused_billing(app, world):
    for principal in ("manager_a", "read_a"):
        client = api_as(app.test_client(), principal, world)
        assert client.get("/api/v1/orgs/org-a/invoices").status_code == 403
