"""GET /api/v1/orgs/{org}/recordings/{id}/audio against a MightyCall simulator on loopback whose
recording links expire: ranges, a fresh link read once, clear failures, other orgs, the audit log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from tests.factories import account_of, assign, make_integration, make_number, make_org, make_user
from tests.helpers import login
from tests.mightycall.helpers import API_KEY, USER_KEY
from tests.world import api_as
from vsync.extensions import db
from vsync.mightycall.simulator import SimulatorServer
from vsync.mightycall.simulator.data import wav_tone
from vsync.models import AuditEvent, Call, Organization, PhoneNumber, Recording
from vsync.services.keys import create_api_key
from vsync.tenancy import platform_bypass, reviewed_sql, tenant

DAY = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def sim_server():
    with SimulatorServer(
        seed=5, calls_per_day=40, api_key=API_KEY, user_key=USER_KEY, recording_link_ttl=300
    ) as server:
        yield server


@pytest.fixture
def played(app, sim_server):
    """Org `rec` with an integration on the simulator and one recorded call of it, stored with the
    link a past sync read (long expired). Returns (client signed in as its admin, recording id, call id)."""
    truth = next(c for c in sim_server.simulator.calls_between(DAY, DAY + timedelta(days=1)) if c["callRecord"])
    with app.app_context():
        org_id = make_org("rec")
        make_user("admin@rec.test", org_slug="rec", role="org_admin")
        number = truth["businessNumber"]
        make_number(number)
        assign("rec", number, at=DAY - timedelta(days=1))
        integration_id = make_integration(org_id, base_url=sim_server.base_url, api_key=API_KEY, user_key=USER_KEY)
        with platform_bypass("test setup"):
            number_id = db.session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == number))
            started = datetime.fromisoformat(truth["dateTimeUtc"].replace("Z", "+00:00"))
            db.session.execute(
                insert(Call.__table__).values(
                    account_id=account_of(integration_id),
                    phone_number_id=number_id,
                    external_id=truth["id"],
                    direction="inbound",
                    status="answered",
                    started_at=started,
                    raw={},
                )
            )
            db.session.execute(
                insert(Recording.__table__).values(
                    account_id=account_of(integration_id),
                    phone_number_id=number_id,
                    call_external_id=truth["id"],
                    started_at=started,
                    file_name="x.wav",
                    provider_uri=f"{sim_server.url}/recordings/{truth['id']}.wav?expires=1&signature=old",
                )
            )
            db.session.commit()
            recording_id = db.session.scalar(select(Recording.id))
    client = app.test_client()
    login(client, "admin@rec.test")
    return client, recording_id, truth["id"]


def _stored_link(app, recording_id: int) -> str:
    with app.app_context(), platform_bypass("test check"):
        return db.session.get(Recording, recording_id).provider_uri


def _plays(app, org_slug: str = "rec") -> list[str]:
    with app.app_context(), platform_bypass("test check"):
        return list(
            db.session.scalars(
                select(AuditEvent.summary).where(AuditEvent.action == "recording.played").order_by(AuditEvent.id)
            )
        )


def test_an_expired_link_is_renewed_once_stored_and_the_whole_file_served(app, played, sim_server, caplog):
    client, recording_id, call_id = played
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="vsync")
    response = client.get(f"/api/v1/orgs/rec/recordings/{recording_id}/audio")
    audio = wav_tone(call_id)
    assert response.status_code == 200 and response.data == audio
    assert response.mimetype == "audio/wav" and response.headers["Content-Length"] == str(len(audio))
    assert response.headers["Accept-Ranges"] == "bytes"
    fresh = _stored_link(app, recording_id)
    assert "signature=old" not in fresh and "expires=" in fresh
    assert sim_server.simulator.requests["call"] == 1
    assert _plays(app) == [f"call {call_id}, with a fresh link from MightyCall"]
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name != "werkzeug")
    assert "/recordings/" not in logged and "signature" not in logged  # the simulator's own log aside
    again = client.get(f"/api/v1/orgs/rec/recordings/{recording_id}/audio")
    assert again.data == audio and sim_server.simulator.requests["call"] == 1  # the stored link is good now


def test_a_range_is_answered_with_206_and_its_content_range(app, played):
    client, recording_id, call_id = played
    audio = wav_tone(call_id)
    url = f"/api/v1/orgs/rec/recordings/{recording_id}/audio"
    response = client.get(url, headers={"Range": "bytes=100-199"})
    assert response.status_code == 206 and response.data == audio[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(audio)}"
    assert response.headers["Content-Length"] == "100"
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == audio[-10:]
    assert _plays(app)[-1] == f"call {call_id}, bytes {len(audio) - 10}-{len(audio) - 1}/{len(audio)}"
    several = client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.data == audio  # served whole, as HTTP allows


def test_a_range_past_the_end_is_a_416(app, played):
    client, recording_id, call_id = played
    client.get(f"/api/v1/orgs/rec/recordings/{recording_id}/audio")  # stores a fresh link
    response = client.get(f"/api/v1/orgs/rec/recordings/{recording_id}/audio", headers={"Range": "bytes=999999-"})
    assert response.status_code == 416
    assert response.get_json()["error"]["code"] == "range_not_satisfiable"


def test_a_fresh_link_refused_too_is_a_clear_502(app, played, sim_server):
    client, recording_id, _ = played
    sim_server.simulator.faults.add("recording", "link_expired", times=5)
    response = client.get(f"/api/v1/orgs/rec/recordings/{recording_id}/audio")
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "upstream_error" and "fresh link" in error["message"]
    assert sim_server.url not in response.get_data(as_text=True) and "localhost" not in error["message"]
    assert sim_server.simulator.requests["call"] == 1
    assert _plays(app) == []


def test_mightycall_failing_is_a_502_without_the_link(app, played, sim_server):
    client, recording_id, _ = played
    client.get(f"/api/v1/orgs/rec/recordings/{recording_id}/audio")
    sim_server.simulator.faults.add("recording", "server_error", times=5, status=503)
    response = client.get(f"/api/v1/orgs/rec/recordings/{recording_id}/audio")
    assert response.status_code == 502 and "503" in response.get_json()["error"]["message"]
    assert "/recordings/" not in response.get_data(as_text=True)


def test_another_orgs_recording_is_a_404(app, played, world):
    _, recording_id, _ = played
    client = api_as(app.test_client(), "root", world)
    assert client.get(f"/api/v1/orgs/org-a/recordings/{recording_id}/audio").status_code == 404
    b_recording = _recording_of(app, world.integrations["b"], "b-1100")
    admin_a = api_as(app.test_client(), "admin_a", world)
    assert admin_a.get(f"/api/v1/orgs/org-a/recordings/{b_recording}/audio").status_code == 404
    assert _plays(app) == []


def test_a_shared_numbers_recording_made_by_another_orgs_account_is_not_played_with_its_credentials(app, world):
    shared = _recording_of(app, world.integrations["a"], "shared-1200")
    response = api_as(app.test_client(), "admin_b", world).get(f"/api/v1/orgs/org-b/recordings/{shared}/audio")
    assert response.status_code == 409


def test_an_agent_plays_only_recordings_of_their_own_calls(app, world):
    agent = api_as(app.test_client(), "agent_a", world)
    unhandled = _recording_of(app, world.integrations["a"], "moved-before-1100")
    assert agent.get(f"/api/v1/orgs/org-a/recordings/{unhandled}/audio").status_code == 404


def _recording_of(app, integration_id: int, external_id: str) -> int:
    with app.app_context(), platform_bypass("test check"):
        return db.session.scalar(
            select(Recording.id).where(
                Recording.account_id == account_of(integration_id), Recording.call_external_id == external_id
            )
        )


def test_a_read_key_plays_and_the_play_is_audited_as_the_key(app, played):
    _, recording_id, _ = played
    with app.app_context(), platform_bypass("test setup"):
        org_id = db.session.scalar(select(Organization.id).where(Organization.slug == "rec"))
        key = create_api_key(org_id=org_id, name="player", scopes="read")[1]
        db.session.commit()
    response = app.test_client().get(
        f"/api/v1/orgs/rec/recordings/{recording_id}/audio", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    with app.app_context(), platform_bypass("test check"):
        played_by = db.session.execute(
            select(AuditEvent.actor, AuditEvent.actor_api_key_id).where(AuditEvent.action == "recording.played")
        ).one()
    assert played_by.actor_api_key_id is not None


def test_storing_a_fresh_link_from_another_orgs_scope_changes_nothing(app, world):
    """The reviewed statement `vsync.services.recordings` stores a fresh link with is narrowed like any."""
    a_recording = _recording_of(app, world.integrations["a"], "a-1100")
    table = Recording.__table__
    with app.app_context(), tenant(world.b):
        changed = db.session.execute(
            reviewed_sql(update(table).where(table.c.id == a_recording).values(provider_uri="x"))
        ).rowcount
        db.session.commit()
    assert changed == 0
    assert _stored_link(app, a_recording) != "x"
