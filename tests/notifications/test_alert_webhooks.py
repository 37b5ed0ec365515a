"""The org's outbound alert webhook: a real HTTPS server on loopback receives each firing and
resolution, signed; a 500 is a recorded failure, retried; a URL that is not HTTPS or points at a
private address is refused when saved and again when sent."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from tests import factories
from tests.helpers import csrf_token, login
from tests.notifications.conftest import smtp_config
from tests.notifications.helpers import call, insert_calls
from tests.notifications.test_alert_kinds import org_with_integration
from tests.notifications.test_alerts import at, rule, run_at
from tests.notifications.test_workers import worker
from tests.world import USERS
from vsync import create_app
from vsync.crypto import decrypt
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import AlertWebhook, AlertWebhookDelivery, AuditEvent, Organization
from vsync.services.notifications import alert_webhooks
from vsync.tenancy import platform_bypass, tenant


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for `localhost` and 127.0.0.1: (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class Receiver:
    """An HTTPS server on loopback that keeps every POST and answers with the next of `answers` (then 200)."""

    def __init__(self, cert_file: Path, key_file: Path):
        self.requests: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://localhost:{self.server.server_address[1]}/hooks/vsync"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verified(self, secret: str) -> list[dict]:
        """Each POST's JSON, once its signature is checked as the README tells a receiver to."""
        payloads = []
        for headers, body in self.requests:
            timestamp = headers["X-Vsync-Timestamp"]
            expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["X-Vsync-Signature"], f"sha256={expected}")
            assert headers["Content-Type"] == "application/json"
            payloads.append(json.loads(body))
        return payloads


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    return _certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def receiver(tls_files) -> Iterator[Receiver]:
    server = Receiver(*tls_files)
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def hook_app(app, smtp_server, tls_files):
    """Jobs inline, email to the loopback SMTP server, webhooks to loopback allowed and its certificate trusted."""
    return create_app(
        smtp_config(
            smtp_server,
            REDIS_URL=None,
            VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE=True,
            VSYNC_ALERT_WEBHOOK_CA_BUNDLE=str(tls_files[0]),
            VSYNC_ALERT_WEBHOOK_RETRY_INTERVALS=[0, 0],
        )
    )


def deliveries(org_id: int) -> list[tuple]:
    with tenant(org_id):
        db.session.expire_all()
        return [
            (row.state, row.status, row.attempts, row.response_code)
            for row in db.session.scalars(select(AlertWebhookDelivery).order_by(AlertWebhookDelivery.id))
        ]


def save(org_id: int, url: str, **kwargs) -> str | None:
    with tenant(org_id):
        secret = alert_webhooks.save_webhook(db.session.get_one(Organization, org_id), url, **kwargs)
        db.session.commit()
        return secret


def test_each_firing_and_resolution_is_posted_signed_and_a_500_is_recorded_then_retried(
    hook_app, receiver, time_machine
):
    with hook_app.app_context():
        org_id, _, account, number = org_with_integration("acme")
        secret = save(org_id, receiver.url)
        assert secret
        rule(org_id, "silence", window_minutes=30)
        receiver.answers = [500]
        assert run_at(time_machine, at(9, 30))["changes"] == 1
        assert run_at(time_machine, at(9, 30))["changes"] == 0  # a second cron run of the same minute
        assert deliveries(org_id) == [("fired", "delivered", 2, 200)]
        insert_calls([call(account, number, "c1", at(9, 31))])
        assert run_at(time_machine, at(9, 32))["changes"] == 1
        assert deliveries(org_id) == [("fired", "delivered", 2, 200), ("resolved", "delivered", 1, 200)]
        fired, fired_again, resolved = receiver.verified(secret)
        assert fired == fired_again
        assert (fired["state"], fired["kind"], fired["org"], fired["window_minutes"]) == (
            "fired",
            "silence",
            "acme",
            30,
        )
        assert (resolved["state"], resolved["id"], resolved["resolved_value"]) == ("resolved", fired["id"], 1.0)
        with platform_bypass("check"):
            audited = " ".join(db.session.scalars(select(AuditEvent.summary)))
        assert "webhook to localhost" in audited and secret not in audited and "/hooks/vsync" not in audited


def test_every_attempt_answered_500_leaves_the_delivery_failed_with_its_code_and_error(
    hook_app, receiver, time_machine
):
    with hook_app.app_context():
        org_id, *_ = org_with_integration("acme")
        save(org_id, receiver.url)
        rule(org_id, "silence", window_minutes=30)
        receiver.answers = [500, 500, 500]
        run_at(time_machine, at(9, 30))
        assert deliveries(org_id) == [("fired", "failed", 3, 500)]
        assert len(receiver.requests) == 3
        with tenant(org_id):
            assert db.session.scalar(select(AlertWebhookDelivery.last_error)) == "The webhook answered 500."


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://alerts.example.com/hook", "https://"),
        ("ftp://alerts.example.com/hook", "https://"),
        ("https://127.0.0.1/hook", "127.0.0.1"),
        ("https://localhost:8443/hook", "resolves to"),
        ("https://10.1.2.3/hook", "10.1.2.3"),
        ("https://169.254.169.254/latest", "169.254.169.254"),
        ("https://[::1]/hook", "::1"),
        ("https://user:pw@alerts.example.com/hook", "password"),
    ],
)
def test_a_url_not_https_or_on_a_private_address_is_refused_and_nothing_is_stored(mail_app, url, why):
    with mail_app.app_context():
        org_id = factories.make_org("acme")
        with tenant(org_id):
            with pytest.raises(ValidationError) as refused:
                alert_webhooks.save_webhook(db.session.get_one(Organization, org_id), url)
            assert refused.value.field == "url" and why in refused.value.message
            db.session.rollback()
            assert db.session.scalars(select(AlertWebhook)).all() == []


def test_a_private_address_is_refused_again_when_sending_and_the_attempt_recorded(hook_app, receiver, time_machine):
    with hook_app.app_context():
        org_id, *_ = org_with_integration("acme")
        save(org_id, receiver.url)
        rule(org_id, "silence", window_minutes=30)
        hook_app.config["VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE"] = False  # the host now resolves somewhere refused
        try:
            run_at(time_machine, at(9, 30))
        finally:
            hook_app.config["VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE"] = True
        assert deliveries(org_id) == [("fired", "failed", 3, None)]
        assert receiver.requests == []
        with tenant(org_id):
            assert "resolves to 127.0.0.1" in (db.session.scalar(select(AlertWebhookDelivery.last_error)) or "")


def post(client, path: str, data: dict):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/orgs/org-a/alerts/")})


def test_org_admins_set_the_webhook_in_the_console_see_its_secret_once_and_managers_only_see_the_url(app, world):
    admin, manager = app.test_client(), app.test_client()
    login(admin, USERS["admin_a"][0])
    login(manager, USERS["manager_a"][0])
    path = "/admin/orgs/org-a/alerts/webhook"
    url = "https://localhost:9/hooks/org-a"
    assert post(manager, path, {"webhook-url": url}).status_code == 403
    refused = post(admin, path, {"webhook-url": "http://localhost:9/hooks"})
    assert refused.status_code == 400 and "must start with https://" in refused.get_data(as_text=True)
    app.config["VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE"] = True
    try:
        saved = post(admin, path, {"webhook-url": url, "webhook-new_secret": "y"})
    finally:
        app.config["VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE"] = False
    assert saved.status_code == 302
    shown = admin.get("/admin/orgs/org-a/alerts/").get_data(as_text=True)
    with app.app_context(), tenant(world.a):
        hook = db.session.scalars(select(AlertWebhook)).one()
        secret = decrypt(hook.secret_encrypted)
    assert secret in shown and "not shown again" in shown
    page = manager.get("/admin/orgs/org-a/alerts/").get_data(as_text=True)
    assert url in page and secret not in page and 'name="webhook-url"' not in page
    assert secret not in admin.get("/admin/orgs/org-a/alerts/").get_data(as_text=True)


def test_a_real_worker_retries_a_500_through_rq_and_records_each_attempt(
    app, smtp_server, tls_files, receiver, time_machine
):
    queued = create_app(
        smtp_config(
            smtp_server,
            VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE=True,
            VSYNC_ALERT_WEBHOOK_CA_BUNDLE=str(tls_files[0]),
            VSYNC_ALERT_WEBHOOK_RETRY_INTERVALS=[0],
        )
    )
    with queued.app_context():
        org_id = factories.make_org("acme")  # no members: the worker has only the webhook to deliver
        secret = save(org_id, receiver.url)
        rule(org_id, "silence", window_minutes=30)
        receiver.answers = [500]
        run_at(time_machine, at(9, 30))  # decided, and queued on Redis when committed
        assert deliveries(org_id) == [("fired", "queued", 0, None)]
        rq = worker(
            smtp_server.port,
            VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE="1",
            VSYNC_ALERT_WEBHOOK_CA_BUNDLE=str(tls_files[0]),
            VSYNC_ALERT_WEBHOOK_RETRY_INTERVALS="0",
        )
        assert rq.wait(timeout=120) == 0, rq.stderr.read() if rq.stderr else ""
        assert deliveries(org_id) == [("fired", "delivered", 2, 200)]
    assert [payload["state"] for payload in receiver.verified(secret)] == ["fired", "fired"]
