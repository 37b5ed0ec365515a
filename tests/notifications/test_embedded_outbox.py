"""The embedded default (SQLite, jobs inline, no SMTP): `flask send-due-notifications`, which `make run`
runs every minute, writes due digests and alerts as `.eml` files under the outbox folder, once."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy import select

from tests import factories
from vsync import create_app
from vsync.extensions import db
from vsync.models import Membership, Organization
from vsync.services.notifications import alerts, preferences
from vsync.tenancy import tenant


def test_due_digests_and_alerts_land_in_the_outbox_once(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "VSYNC_ENCRYPTION_KEYS", "VSYNC_ENV", "VSYNC_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'vsync.db'}",
            "SECRET_KEY": "embedded",
            "VSYNC_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "VSYNC_PASSWORD_HASH": "pbkdf2:sha256:1",
            "MAIL_FILE_PATH": str(tmp_path / "outbox"),
        }
    )
    with app.app_context():
        upgrade()
        org_id = factories.make_org("acme", "America/New_York")
        factories.make_user("owner@acme.test", org_slug="acme")
        with tenant(org_id):
            org = db.session.get(Organization, org_id)
            preferences.set_preferences(db.session.scalars(select(Membership)).one(), {"digest_hour": "0"}, actor="t")
            alerts.save_rule(org, "silence", window_minutes=15)
            alerts.set_business_hours(org, dict.fromkeys(range(7), (0, 1440)))
            db.session.commit()
    for _ in range(2):
        result = app.test_cli_runner().invoke(args=["send-due-notifications"])
        assert result.exit_code == 0, result.output
    assert f"written to {tmp_path / 'outbox'}" in result.output
    subjects = sorted(
        path.read_text().split("Subject: ")[1].splitlines()[0] for path in Path(tmp_path / "outbox").glob("*.eml")
    )
    assert len(subjects) == 2
    assert subjects[0] == "Acme: ALERT: No calls" and subjects[1].startswith("Acme: your daily calls digest for ")
    with app.app_context():
        db.engine.dispose()
