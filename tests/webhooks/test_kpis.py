"""Wait-based KPIs come alive for calls that webhook events told of: speed of answer, service level,
abandon rate and longest wait, computed by the KPI engine from what the receiver stored."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from tests.webhooks.helpers import NOW, post
from vsync import metrics, query
from vsync.extensions import db
from vsync.models import Organization
from vsync.tenancy import tenant


def kpis(app, tenant_) -> dict:
    with app.app_context(), tenant(tenant_.org_id):
        org = db.session.get(Organization, tenant_.org_id)
        window = query.Window(NOW - timedelta(hours=1), NOW + timedelta(hours=1), ZoneInfo(org.timezone))
        return metrics.summary(org, window)


def test_an_answered_and_an_unanswered_call_from_webhooks_give_speed_of_answer_service_level_and_waits(
    hook, acme, globex, inline_app
):
    answered = acme.events("answered", seed=1, extension="101")  # rings at +1 s, connected at +9 s
    missed = acme.events("missed", seed=2, started_at=NOW + timedelta(minutes=5))  # rings 1 s to 31 s
    assert post(hook, acme, answered + missed).status_code == 200
    assert post(hook, globex, globex.events("answered", seed=3)).status_code == 200

    figures = kpis(inline_app, acme)
    # From events alone, a call completed with no Connected is voicemail (until the sync says otherwise).
    assert (figures["total_calls"], figures["answered_calls"], figures["voicemail_calls"]) == (2, 1, 1)
    assert figures["avg_speed_of_answer_seconds"] == 9.0 and figures["asa_sample_size"] == 1
    assert figures["service_level"] == 0.5 and figures["service_level_sample_size"] == 2  # 1 of 2 within 20 s
    assert figures["abandon_rate"] == 0.0 and figures["abandon_sample_size"] == 2  # voicemail is no abandon
    assert figures["longest_wait_seconds"] == 30.0  # the unanswered call rang from +1 s to +31 s
    # Until a sync brings MightyCall's duration, an answered call talks from Connected (+9 s) to Completed (+190 s).
    assert figures["avg_talk_seconds"] == 181.0 and figures["total_talk_seconds"] == 181.0


def test_calls_synced_without_events_leave_wait_based_kpis_null_not_zero(inline_app, acme):
    from sqlalchemy import insert

    from vsync.models import Call, PhoneNumber
    from vsync.tenancy import platform_bypass

    with inline_app.app_context(), platform_bypass("a synced call, no events"):
        number_id = db.session.scalar(db.select(PhoneNumber.id).where(PhoneNumber.e164 == acme.number))
        db.session.execute(
            insert(Call.__table__).values(
                account_id=acme.account_id,
                phone_number_id=number_id,
                external_id="synced-1",
                direction="inbound",
                status="answered",
                started_at=NOW,
                duration_ms=60_000,
                raw={},
            )
        )
        db.session.commit()
    figures = kpis(inline_app, acme)
    assert figures["answered_calls"] == 1 and figures["answer_rate"] == 1.0
    assert figures["avg_speed_of_answer_seconds"] is None and figures["service_level"] is None
    assert figures["abandon_rate"] is None and figures["longest_wait_seconds"] is None
