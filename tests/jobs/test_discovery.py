"""Numbers the sync discovers: nobody's number becomes the syncing org's; a number that only other
orgs have is a conflict, and the syncing org's traffic on it is not handed to them."""

from __future__ import annotations

from sqlalchemy import select

from tests.factories import T0, account_of, make_integration, make_org
from vsync.extensions import db
from vsync.mightycall.parsing import CallRecord
from vsync.models import AuditEvent, Call, NumberAssignment, PhoneNumber
from vsync.services.sync.ingest import NumberBook, write_calls
from vsync.tenancy import platform_bypass, tenant

NUMBER = "+12125550177"


def record(external_id: str) -> CallRecord:
    return CallRecord(
        external_id=external_id,
        business_number=NUMBER,
        direction="inbound",
        status="answered",
        provider_status="Connected",
        from_number="+12125559999",
        to_number=NUMBER,
        started_at=T0,
        duration_ms=1000,
        ended_at=T0,
        agent_extension="101",
        agent_name="Alice",
        recording_file_name=None,
        recording_uri=None,
        raw={"id": external_id},
    )


def sync_page(org_id: int, integration_id: int, external_id: str) -> tuple[NumberBook, int]:
    account_id = account_of(integration_id)
    with tenant(org_id):
        book = NumberBook(org_id=org_id, integration_id=integration_id)
        counts = write_calls(account_id, [record(external_id)], book)
        db.session.commit()
    return book, counts.skipped


def test_a_number_first_reported_by_org_a_stays_as_and_org_bs_traffic_on_it_is_not_handed_to_a(ctx):
    a, b = make_org("org-a"), make_org("org-b")
    int_a, int_b = make_integration(a), make_integration(b)

    book_a, skipped_a = sync_page(a, int_a, "from-a")
    assert book_a.discovered == 1 and skipped_a == 0
    book_b, skipped_b = sync_page(b, int_b, "from-b")
    assert book_b.discovered == 0 and skipped_b == 1 and book_b.refused == {NUMBER}

    with tenant(a):
        assert set(db.session.scalars(select(Call.external_id))) == {"from-a"}
    with tenant(b):
        assert set(db.session.scalars(select(Call.external_id))) == set()
        conflicts = db.session.scalars(select(AuditEvent.summary).where(AuditEvent.action == "number.conflict")).all()
        assert len(conflicts) == 1 and NUMBER in conflicts[0]
    with platform_bypass("check"):
        assert db.session.scalars(select(NumberAssignment.org_id)).all() == [a]
        assert db.session.scalar(select(PhoneNumber.integration_id)) == int_a


def test_once_a_platform_admin_assigns_the_number_the_next_sync_stores_the_traffic(ctx):
    from vsync.services.numbers import assign_number, get_number
    from vsync.services.orgs import get_org_by_slug

    a, b = make_org("org-a"), make_org("org-b")
    int_a, int_b = make_integration(a), make_integration(b)
    sync_page(a, int_a, "from-a")
    sync_page(b, int_b, "from-b")
    with platform_bypass("platform admin assigns"):
        assign_number(get_org_by_slug("org-b"), get_number(NUMBER), at=T0.replace(year=2000))
        db.session.commit()
    _book, skipped = sync_page(b, int_b, "from-b")
    assert skipped == 0
    with tenant(b):
        assert "from-b" in set(db.session.scalars(select(Call.external_id)))
