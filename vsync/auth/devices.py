"""Which device a sign-in comes from: a long-lived signed cookie that names the browser.

Why a cookie and not the user agent plus address. A user agent changes with every browser update
and an address with every network (a phone between Wi-Fi and mobile data, a laptop at home and at
the office), so telling devices apart by them would email people at every update and move, and they
would learn to ignore the message; and everyone behind one office's address with the same browser
would look like one device, so a colleague's sign-in would not be news. A random id in a cookie the
browser keeps (`VSYNC_DEVICE_COOKIE_DAYS`) is there on every later sign-in from that browser and
absent from any other, whatever the network. It is signed, so a value the app never gave is
ignored, and it is not a credential: it says only "seen before", and the server keeps its SHA-256
on each session (`device_hash`). Clearing cookies makes the browser a new device once more.

`after_sign_in` is the one hook the sign-in view calls once a session has started.
"""

from __future__ import annotations

import re
import secrets

from flask import Response, after_this_request, current_app, request
from itsdangerous import BadSignature, URLSafeSerializer

from vsync.crypto import secret_digest
from vsync.models.types import utcnow
from vsync.services import profile

COOKIE = "vsync_device"
_SALT = "vsync.device"
_BROWSERS = (
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|HeadlessChrome/")),
    ("Safari", re.compile(r"Safari/")),
)
_SYSTEMS = (
    ("an iPhone", re.compile(r"iPhone")),
    ("an iPad", re.compile(r"iPad")),
    ("Android", re.compile(r"Android")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux")),
)


def describe(user_agent: str | None) -> str:
    """A user agent in plain words ("Firefox on Windows"), or what it is when no browser is named."""
    agent = user_agent or ""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or f"a browser on {system}"
    return f"another client ({agent[:40]})" if agent else "an unknown client"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _device_id() -> str:
    """This browser's device id from its cookie, or a new one."""
    try:
        value = _serializer().loads(request.cookies.get(COOKIE, ""))
        if isinstance(value, str) and len(value) >= 32:
            return value
    except BadSignature:
        pass
    return secrets.token_urlsafe(32)


def after_sign_in(user_id: int, email: str, session_token: str) -> None:
    """A session has started: note its device, email the person about a new one (by preference), and
    give the browser its device cookie (again: each sign-in renews its lifetime)."""
    device_id = _device_id()
    profile.signed_in_from(
        user_id,
        email,
        session_token,
        secret_digest(device_id),
        device=describe(request.user_agent.string),
        ip=request.remote_addr,
        now=utcnow(),
    )
    cookie = _serializer().dumps(device_id)

    @after_this_request
    def _remember(response: Response) -> Response:
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=current_app.config["VSYNC_DEVICE_COOKIE_DAYS"] * 86400,
            httponly=True,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            samesite="Lax",
        )
        return response
