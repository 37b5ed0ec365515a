"""Secrets are never shown. The two-org world is given every kind of secret vsync holds (MightyCall
credentials and access tokens, webhook tokens and signing secrets, alert webhook signing secrets, API
keys, password hashes, recording links signed by the provider, MightyCall's `ApiKey` in delivered
webhooks, the app's own keys); then every console page (the org console for every signed-in principal
in each org it reaches, the platform console, views enumerated by their registration, each list and
each detail page it links to) and every API answer (GET routes enumerated from the OpenAPI document,
for every principal, in each org with each org's objects, JSON and CSV) is searched for each of them."""

from __future__ import annotations

import html
import json
import logging
import random
import re
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.helpers import ENCRYPTION_KEY, body_text
from tests.test_api_matrix import OBJECTS
from tests.test_org_resolver import REACH
from tests.world import A_ONLY, B_ONLY, T, api_as
from vsync import crypto
from vsync.extensions import db
from vsync.jobs.webhooks import process_received_events
from vsync.mightycall.simulator import WebhookEmitter
from vsync.models import AlertWebhook, Call, Integration, Recording, SmsMessage, User, WebhookEvent
from vsync.redaction import API_KEY_MATCHED, API_KEY_NOT_MATCHED
from vsync.services import webhooks
from vsync.tenancy import platform_bypass

WINDOW = {"from": "2026-10-01", "to": "2026-12-01"}  # holds all of the world's traffic (around T)
CONSOLE_USERS = ("admin_a", "manager_a", "agent_a", "admin_b", "manager_b", "agent_b", "both", "root")
STRANGER_KEY = "another-accounts-mightycall-key-" + secrets.token_hex(8)


def _signed_link(path: str) -> tuple[str, str, str]:
    """A recording link as a storage provider signs it: (link, its capability path, its signature)."""
    capability, signature = secrets.token_hex(10), secrets.token_hex(20)
    return (
        f"http://127.0.0.1:1/rec/{capability}/{path}?Expires=4102444800&Signature={signature}",
        capability,
        signature,
    )


def _store_secrets(world) -> tuple[dict[str, str], dict[str, dict]]:
    """Give the world's integrations, recordings, calls and SMS their secrets; returns the secrets by
    what they are, and per org what the webhook deliveries need."""
    found, delivery = {}, {}
    with platform_bypass("test: every kind of secret"):
        for org in ("a", "b"):
            integration = db.session.get(Integration, world.integrations[org])
            api_key, user_key = f"mc-api-{org}-{secrets.token_hex(12)}", f"mc-user-{org}-{secrets.token_hex(12)}"
            access, refresh = secrets.token_hex(16), secrets.token_hex(16)
            integration.credentials_encrypted = crypto.encrypt_json({"api_key": api_key, "user_key": user_key})
            integration.access_token_encrypted = crypto.encrypt_json(
                {"access_token": access, "refresh_token": refresh, "expires_at": "2100-01-01T00:00:00+00:00"}
            )
            token = webhooks.rotate_webhook_token(integration)
            webhooks.add_signing_secret(integration)
            signing = webhooks.add_signing_secret(integration)
            previous = crypto.decrypt_json(integration.webhook_signing_secrets_encrypted)["secrets"][1]
            found |= {
                f"MightyCall API key of {org}": api_key,
                f"MightyCall user key of {org}": user_key,
                f"credentials ciphertext of {org}": integration.credentials_encrypted,
                f"MightyCall access token of {org}": access,
                f"MightyCall refresh token of {org}": refresh,
                f"access token ciphertext of {org}": integration.access_token_encrypted,
                f"webhook token of {org}": token,
                f"webhook token hash of {org}": integration.webhook_token_hash,
                f"signing secret of {org}": signing,
                f"previous signing secret of {org}": previous,
                f"signing secrets ciphertext of {org}": integration.webhook_signing_secrets_encrypted,
            }
            delivery[org] = {
                "token": token,
                "api_key": api_key,
                "secret": signing,
                "number": A_ONLY if org == "a" else B_ONLY,
                "extension": "101" if org == "a" else "201",
            }
        for recording in db.session.scalars(select(Recording)):
            link, capability, signature = _signed_link(f"{recording.call_external_id}.wav")
            recording.provider_uri = link
            db.session.execute(
                update(Call)
                .where(Call.account_id == recording.account_id, Call.external_id == recording.call_external_id)
                .values(
                    raw={"id": recording.call_external_id, "callRecord": {"fileName": recording.file_name, "uri": link}}
                )
            )
            found |= {
                f"recording link path of {recording.call_external_id}": capability,
                f"recording link signature of {recording.call_external_id}": signature,
            }
        for sms in db.session.scalars(select(SmsMessage)):
            link, capability, signature = _signed_link(f"{sms.external_id}.jpg")
            sms.raw = {"id": sms.external_id, "attachments": [{"url": link}]}
            found |= {
                f"MMS link path of {sms.external_id}": capability,
                f"MMS link signature of {sms.external_id}": signature,
            }
        for hook in db.session.scalars(select(AlertWebhook)):
            alert_secret = secrets.token_urlsafe(32)
            hook.secret_encrypted = crypto.encrypt(alert_secret)
            found |= {
                f"alert webhook signing secret of org {hook.org_id}": alert_secret,
                f"alert webhook secret ciphertext of org {hook.org_id}": hook.secret_encrypted,
            }
        for email, password_hash in db.session.execute(select(User.email, User.password_hash)):
            found[f"password hash of {email}"] = password_hash
        db.session.commit()
    for name, key in world.keys.items():
        found[f"API key secret of {name}"] = key.split("_", 2)[2]
    return found, delivery


def _deliver(app, world, delivery: dict[str, dict]) -> list[tuple[str, str]]:
    """Each org's receiver gets a signed lifecycle, which is applied, and refused requests that carry
    keys: another account's, its own without a valid signature, its own in malformed JSON. The
    lifecycle's last event carries the recording's signed link (secrets of their own, added to
    `delivery`). Returns the receiver's answers."""
    client, answers = app.test_client(), []
    for org, d in delivery.items():
        url = f"/webhooks/mightycall/{d['token']}"
        emitter = WebhookEmitter("http://127.0.0.1:9/unused", d["api_key"], signing_secret=d["secret"])
        events = emitter.events(
            "answered",
            started_at=T + timedelta(minutes=10),
            rng=random.Random(7),
            business_number=d["number"],
            extension=d["extension"],
        )
        link, capability, signature = _signed_link(f"live-{org}.wav")
        events[-1]["Body"]["RecordingUri"] = link
        d["found"] = {
            f"webhook recording link path of {org}": capability,
            f"webhook recording link signature of {org}": signature,
        }
        body = json.dumps(events).encode()
        strangers = json.dumps(events[0] | {"ApiKey": STRANGER_KEY}).encode()
        requests = [
            (body, emitter.signature(body), 200),
            (strangers, emitter.signature(strangers), 401),
            (body, "t=1,v1=00", 401),
            (body[:-2], emitter.signature(body[:-2]), 400),
        ]
        for payload, signature, status in requests:
            response = client.post(
                url, data=payload, headers={"Content-Type": "application/json", webhooks.SIGNATURE_HEADER: signature}
            )
            assert response.status_code == status, response.get_data(as_text=True)
            answers.append((f"POST {url}", _text(response)))
    with app.app_context():
        for org in ("a", "b"):
            process_received_events(world.org(org))
    return answers


@pytest.fixture
def held(app, world):
    """The world with every secret stored and every delivery received: (secrets by what they are,
    the receiver's answers)."""
    with app.app_context():
        found, delivery = _store_secrets(world)
        db.session.remove()
    answers = _deliver(app, world, delivery)
    for d in delivery.values():
        found |= d["found"]
    found |= {
        "another account's MightyCall key": STRANGER_KEY,
        "session secret": app.config["SECRET_KEY"],
        "encryption key": ENCRYPTION_KEY,
    }
    return found, answers


def _leaks(found: dict[str, str], pages) -> list[tuple[str, str]]:
    return [(where, what) for where, text in pages for what, value in found.items() if value in text]


def _text(response) -> str:
    return body_text(response) + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


_DETAILS = re.compile(r'href="([^"]*/details/\?[^"]*)"')


def _console_pages(app, world, principal: str):
    """(url, text) of every console page `principal` is offered: the index of every registered view
    of each org it reaches (and of the platform console, for a platform admin), with the calls'
    filters and the dashboard's window, and every detail page those link to."""
    client = api_as(app.test_client(), principal, world)
    (admin,) = app.extensions["admin"]
    roots = ["/admin/"]
    for org, role in zip(("a", "b"), REACH[principal], strict=True):
        if role is not None:
            roots += [
                view.url.replace("<org>", f"org-{org}").rstrip("/") + "/"
                for view in admin._views
                if view.url.startswith("/admin/orgs/<org>")
            ]
            roots += [
                f"/admin/orgs/org-{org}/?from=2026-11-01&to=2026-11-03",
                f"/admin/orgs/org-{org}/calls/?from={WINDOW['from']}&to={WINDOW['to']}",
            ]
    if principal == "root":
        roots += [view.url.rstrip("/") + "/" for view in admin._views if view.url.startswith("/admin/platform")]
    seen = set()
    for root in roots:
        response = client.get(root)
        assert response.status_code in ((200, 302) if root == "/admin/" else (200, 403)), (principal, root)
        yield root, _text(response)
        for link in _DETAILS.findall(response.get_data(as_text=True)):
            url = html.unescape(link)
            if url not in seen:
                seen.add(url)
                detail = client.get(url)
                assert detail.status_code == 200, (principal, url)
                yield url, _text(detail)


def _api_urls(app, world):
    """(url, org) of every GET route of the OpenAPI document: in each org with each org's objects,
    traffic and metrics over the world's window, lists that export also as CSV."""
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    yield "/api/v1/openapi.json", None
    yield "/api/v1/docs", None
    for path, operations in sorted(spec["paths"].items()):
        if "get" not in operations:
            continue
        parameters = {p["name"] for p in operations["get"].get("parameters", []) + operations.get("parameters", [])}
        queries = [{}]
        if {"from", "direction"} <= parameters:
            queries = [WINDOW]
        if "format" in parameters:
            queries.append({**WINDOW, "format": "csv"})
        objects = sorted(parameters & OBJECTS.keys())
        for org in ("a", "b") if "org" in parameters else (None,):
            for owner in ("a", "b") if objects else (org,):
                url = path.replace("{org}", f"org-{org}")
                for name in objects:
                    url = url.replace(f"{{{name}}}", str(OBJECTS[name][1](world, owner)))
                for query in queries:
                    yield url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""), org


def test_the_world_holds_every_kind_of_secret_where_it_could_leak(app, world, held):
    found, _ = held
    with app.app_context(), platform_bypass("test"):
        links = db.session.scalars(select(Recording.provider_uri)).all()
        raws = db.session.scalars(select(Call.raw)).all()
        bodies = [
            json.loads(b)
            for b in db.session.scalars(select(WebhookEvent.body).where(WebhookEvent.status != "rejected"))
        ]
    assert all("Signature=" in link for link in links) and sum("callRecord" in raw for raw in raws) == len(links)
    assert {body["ApiKey"] for body in bodies if "ApiKey" in body} == {API_KEY_MATCHED}
    assert len([what for what in found if what.startswith("API key secret")]) == len(world.keys)


@pytest.mark.parametrize("principal", CONSOLE_USERS)
def test_no_console_page_shows_a_secret_to_anyone(app, world, held, principal, caplog):
    caplog.set_level(logging.INFO)
    found, _ = held
    pages = list(_console_pages(app, world, principal))
    assert not _leaks(found, pages)
    assert not _leaks(found, [("log", caplog.text)])
    shown = {url for url, _ in pages}
    assert any("/calls/details/" in url for url in shown), "no call detail page was walked"
    if principal == "root":
        events = "".join(text for url, text in pages if "/webhook-events/details/" in url)
        assert API_KEY_MATCHED in events and API_KEY_NOT_MATCHED in events  # what the key was is told, not the key


@pytest.mark.parametrize("principal", sorted(REACH))
def test_no_api_answer_carries_a_secret_or_a_providers_link(app, world, held, principal, caplog):
    caplog.set_level(logging.INFO)
    found, _ = held
    client = api_as(app.test_client(), principal, world)
    answers, csv = [], 0
    for url, _org in _api_urls(app, world):
        response = client.get(url)
        answers.append((url, _text(response)))
        csv += response.status_code == 200 and response.mimetype == "text/csv"
    assert not _leaks(found, answers)
    assert not [url for url, text in answers if "provider_uri" in text or "callRecord" in text]
    assert not _leaks(found, [("log", caplog.text)])
    if REACH[principal] != (None, None):
        assert csv, "no CSV export was read"


def test_the_receivers_answers_hold_no_secret(held):
    found, answers = held
    assert not _leaks(found, answers)
