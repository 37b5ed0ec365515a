"""A MightyCall account in a box: a WSGI app answering like the v4 API, for demo, tests and benches.

The data is a pure function of ``seed``: the calls of one UTC day are generated from (seed, date) on
demand, so any date range can be served without storing it, and two runs with the same seed serve
identical calls. Volumes follow a business day in ``business_timezone`` (peaks late morning and
mid-afternoon, quiet nights and weekends) around an average of ``calls_per_day``; about a quarter of
the calls are outbound and 60-80 % of the inbound ones are answered, with talk times from seconds to
an hour. Answered calls have a recording: a short WAV tone served under ``/recordings/<id>.wav`` on
a different host string than the API (``localhost`` vs ``127.0.0.1``), as MightyCall's are.

Where MightyCall's behaviour is [unknown] the simulator picks something plausible and says so:

* ``startUtc`` is inclusive and ``endUtc`` exclusive; missing bounds default to the last 7 days.
  ``pageSize`` defaults to 100 and is capped at ``max_page_size`` (1000).
* Journal items (text messages) have the shape :meth:`Simulator.sms_between` returns; the journal
  pages by 1-based ``page`` and wraps every even page's answer in a one-element list, so clients
  prove they accept both shapes.
* Team users carry ``fullName``, ``firstName``, ``lastName`` and ``extension``.
* Call ids are GUID-shaped strings that encode the day and position of the call, so a call can be
  found without an index. Clients must treat them as opaque.

Faults make it misbehave like the real service and its proxies, per route, either programmatically
(``sim.faults.add("calls", "rate_limit", times=2)``) or over HTTP (``POST /_sim/faults``) for a
simulator running in another process. ``sim.requests`` counts requests per route. The ``/_sim``
routes are unauthenticated: run the simulator on loopback only.
"""

from __future__ import annotations

import array
import bisect
import email.utils
import hashlib
import hmac
import itertools
import json
import math
import random
import secrets
import sys
import threading
import time
import uuid
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

__all__ = [
    "FAULT_KINDS",
    "ROUTES",
    "Fault",
    "Faults",
    "Simulator",
    "SimulatorServer",
    "WebhookEmitter",
    "run_simulator",
]

ROUTES = (
    "token",
    "calls",
    "call",
    "phone_numbers",
    "team",
    "journal",
    "messages_send",
    "recording",
)
FAULT_KINDS = (
    "token_expiry",
    "rate_limit",
    "server_error",
    "slow",
    "hang",
    "truncated",
    "not_json",
    "is_success_false",
    "wrong_total",
    "head_insert",
    "page_cap",
)
# Faults that replace the answer; at most one fires per request. The others modify a normal answer.
_REPLACING = {"token_expiry", "rate_limit", "server_error", "not_json", "is_success_false"}

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_REC = "%REC%"
_DENIED = {"Message": "Authorization has been denied for this request."}

# Relative call volume per local hour (0-23) and per local weekday (Monday first).
# fmt: off
_HOUR_WEIGHTS = (
    0.02, 0.01, 0.01, 0.01, 0.01, 0.03, 0.08, 0.3, 0.8, 1.4, 1.8, 1.7,
    1.2, 1.4, 1.7, 1.6, 1.3, 0.9, 0.5, 0.3, 0.2, 0.12, 0.06, 0.04,
)
# fmt: on
_WEEKDAY_WEIGHTS = (1.0, 1.05, 1.0, 1.0, 0.9, 0.3, 0.15)
_BUSINESS_HOURS = range(8, 18)

_DEFAULT_AGENTS = (
    ("101", "Alice Johnson"),
    ("102", "Brian Smith"),
    ("103", "Carmen Lopez"),
    ("104", "David Kim"),
    ("105", "Emma Wilson"),
    ("106", "Farid Haddad"),
    ("107", "Grace Chen"),
    ("108", "Henry Okafor"),
)
_AGENT_WEIGHTS = (1.4, 1.2, 1.1, 1.0, 1.0, 0.9, 0.8, 0.6)
_NUMBER_PLAN = (
    ("212", "Main line", "Local", 0.45),
    ("646", "Sales", "Local", 0.25),
    ("415", "West coast office", "Local", 0.15),
    ("888", "Toll-free support", "TollFree", 0.15),
)
# fmt: off
_CUSTOMER_AREAS = (
    "212", "646", "718", "917", "347", "516", "201", "973", "415", "510",
    "312", "773", "617", "305", "404", "713", "214", "602", "303", "206",
)
_FIRST_NAMES = (
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
    "ELIZABETH", "WILLIAM", "SUSAN", "RICHARD", "JESSICA", "JOSEPH", "SARAH", "THOMAS", "KAREN",
    "MARIA", "NGUYEN", "AHMED", "PRIYA", "WEI", "OLGA",
)
_LAST_NAMES = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE",
    "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "PATEL", "KOWALSKI",
)
# fmt: on
_SMS_INBOUND = (
    "Hi, is my order ready for pickup?",
    "Can I move my appointment to Thursday?",
    "Thanks for the help today!",
    "What time do you close?",
    "Please call me back when you can.",
    "Got it, see you then.",
    "Do you have availability next week?",
    "STOP",
)
_SMS_OUTBOUND = (
    "Your appointment is confirmed for tomorrow at 10:00.",
    "Thanks for calling! Here is the link we talked about.",
    "Your order has shipped.",
    "Sorry we missed your call, how can we help?",
    "Reminder: your invoice is due Friday.",
)


def _to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _format_ms(ms: int) -> str:
    """``2024-01-05T13:04:07.523Z`` with trailing zeros of the fraction dropped (1-3 digits)."""
    moment = _from_ms(ms)
    fraction = f"{ms % 1000:03d}".rstrip("0") or "0"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"


def _parse_time(text: str) -> int:
    moment = datetime.fromisoformat(text.strip())
    return _to_ms(moment)


def _us_number(rng: random.Random, area: str) -> str:
    """A valid NANP number: exchange 2-9 first, never N11 or 555."""
    while True:
        exchange = rng.randint(200, 999)
        if exchange % 100 != 11 and exchange != 555:
            return f"+1{area}{exchange}{rng.randint(0, 9999):04d}"


def _wav_tone(call_id: str, *, rate: int = 8000, seconds: float = 0.5) -> bytes:
    """A short mono 16-bit PCM tone whose pitch depends on the call id: a real, tiny WAV file."""
    frequency = 300 + zlib.crc32(call_id.encode()) % 600
    count = int(rate * seconds)
    fade = rate // 50
    samples = array.array("h")
    for i in range(count):
        envelope = min(1.0, i / fade, (count - i) / fade)
        samples.append(int(12000 * envelope * math.sin(2 * math.pi * frequency * i / rate)))
    if sys.byteorder != "little":
        samples.byteswap()
    data = samples.tobytes()
    header = b"".join(
        (
            b"RIFF",
            (36 + len(data)).to_bytes(4, "little"),
            b"WAVEfmt ",
            (16).to_bytes(4, "little"),
            (1).to_bytes(2, "little"),
            (1).to_bytes(2, "little"),
            rate.to_bytes(4, "little"),
            (rate * 2).to_bytes(4, "little"),
            (2).to_bytes(2, "little"),
            (16).to_bytes(2, "little"),
            b"data",
            len(data).to_bytes(4, "little"),
        )
    )
    return header + data


@dataclass
class Fault:
    """One switched-on fault. ``times`` is how often it still fires (``None``: until cleared);
    ``after`` how many requests of its route it lets through first."""

    route: str
    kind: str
    times: int | None = 1
    after: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "kind": self.kind,
            "times": self.times,
            "after": self.after,
            **self.params,
        }


class Faults:
    """The faults switched on in a simulator, per route (``"*"`` matches every API route).

    Kinds and their parameters:

    * ``token_expiry``: 401 as if the token had expired (the token is revoked, forcing re-auth).
    * ``rate_limit``: 429; ``retry_after`` seconds (default 2), ``format`` ``"seconds"`` (default),
      ``"http-date"`` or ``"none"``.
    * ``server_error``: ``status`` 500/502/503 (default 500), ``body`` ``"json"`` (default) or
      ``"html"``.
    * ``slow``: wait ``seconds`` (default 1), then answer normally.
    * ``hang``: wait ``seconds`` (default 30, cut short when the server stops), then answer
      normally.
    * ``truncated``: the normal answer cut in the middle of its JSON.
    * ``not_json``: 200 with an HTML page.
    * ``is_success_false``: 200 with ``{"isSuccess": false, "message": ...}`` (``message``
      optional).
    * ``wrong_total``: calls listing ``total`` per ``mode``: ``"missing"`` (default), ``"small"``,
      ``"large"``, or an explicit ``value``.
    * ``head_insert``: after the answer is built, ``count`` (default 3) new calls appear at the head
      of that window (newest); they become part of the ground truth.
    * ``page_cap``: ``pageSize`` silently capped at ``cap`` (default 100).

    At most one answer-replacing fault fires per request; modifying faults (slow, hang, truncated,
    wrong_total, head_insert, page_cap) combine with it. Requests a fault lets through because of
    ``after`` count for it whatever their outcome.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self, route: str, kind: str, *, times: int | None = 1, after: int = 0, **params: Any
    ) -> Fault:
        if route != "*" and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)} or '*'")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if times is not None and times < 1:
            times = None
        fault = Fault(route=route, kind=kind, times=times, after=max(0, int(after)), params=params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def take(self, route: str) -> list[Fault]:
        """The faults that fire for one request of ``route``, consuming their counters."""
        fired: list[Fault] = []
        replacing = False
        with self._lock:
            for fault in list(self._faults):
                if fault.route not in (route, "*"):
                    continue
                if fault.route == "*" and route == "recording" and fault.kind in _REPLACING:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.kind in _REPLACING:
                    if replacing:
                        continue
                    replacing = True
                fired.append(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        return fired


@dataclass
class _Day:
    """The calls of one UTC day, oldest first, as JSON text whose recording links start with `_REC`,
    replaced by the recording host when served (it depends on the host the client asked)."""

    times: list[int]
    bodies: list[str]
    base_bodies: list[str]


class Simulator:
    """A MightyCall v4 account as a WSGI application. See the module docstring for behaviour.

    ``numbers`` (E.164 strings) and ``agents`` ((extension, name) pairs) replace the seeded
    defaults. ``clock`` returns the current time in epoch seconds; tests advance it to expire
    tokens. ``recording_base_url`` is the origin recording links point at; when ``None`` it is the
    request's host with ``127.0.0.1`` and ``localhost`` swapped. ``recordings_require_auth`` makes
    recording downloads demand the bearer.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        calls_per_day: float = 400,
        api_key: str = "sim-api-key",
        user_key: str = "sim-user-key",
        token_ttl: int = 86_400,
        refresh_ttl: int = 14 * 86_400,
        numbers: Iterable[str] | None = None,
        agents: Iterable[tuple[str, str]] | None = None,
        business_timezone: str = "America/New_York",
        sms_per_day: float | None = None,
        max_page_size: int = 1000,
        recording_base_url: str | None = None,
        recordings_require_auth: bool = False,
        clock: Callable[[], float] = time.time,
        cache_calls: int = 250_000,
    ) -> None:
        self.seed = seed
        self.calls_per_day = max(0.0, float(calls_per_day))
        self.sms_per_day = self.calls_per_day / 8 if sms_per_day is None else max(0.0, sms_per_day)
        self.api_key = api_key
        self.user_key = user_key
        self.token_ttl = token_ttl
        self.refresh_ttl = refresh_ttl
        self.max_page_size = max_page_size
        self.recording_base_url = recording_base_url.rstrip("/") if recording_base_url else None
        self.recordings_require_auth = recordings_require_auth
        self.clock = clock
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.token_grants: list[str] = []
        self.sent_messages: list[dict[str, Any]] = []
        self._tz = ZoneInfo(business_timezone)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._tokens: dict[str, float] = {}
        self._refresh_tokens: dict[str, float] = {}
        self._days: OrderedDict[date, _Day] = OrderedDict()
        self._cached_calls = 0
        self._cache_calls = cache_calls
        self._hour_profile: dict[date, tuple[list[float], list[bool]]] = {}
        self._base_counts: dict[date, int] = {}
        self._extra_calls: dict[date, list[tuple[int, str]]] = {}
        self._extra_by_id: dict[str, str] = {}
        self._extra_sms: dict[date, list[dict[str, Any]]] = {}
        self._sms_days: OrderedDict[date, list[dict[str, Any]]] = OrderedDict()
        self._extra_seq = 0

        setup = random.Random(f"{seed}:account")
        if numbers is None:
            plan = [
                (_us_number(setup, area), label, kind, w) for area, label, kind, w in _NUMBER_PLAN
            ]
        else:
            plan = [(n, f"Line {i + 1}", "Local", 1.0) for i, n in enumerate(numbers)]
        if not plan:
            raise ValueError("a simulated account needs at least one phone number")
        self._numbers = [
            {"number": n, "name": label, "type": kind, "isActive": True}
            for n, label, kind, _ in plan
        ]
        self._number_cum = list(itertools.accumulate(w for *_, w in plan))
        agent_list = list(agents) if agents is not None else list(_DEFAULT_AGENTS)
        if not agent_list:
            raise ValueError("a simulated account needs at least one agent")
        self._agents = [(str(ext), name) for ext, name in agent_list]
        self._agent_cum = list(
            itertools.accumulate(
                _AGENT_WEIGHTS[i] if i < len(_AGENT_WEIGHTS) else 0.7
                for i in range(len(self._agents))
            )
        )
        self._customers = [
            (
                _us_number(setup, setup.choice(_CUSTOMER_AREAS)),
                f"{setup.choice(_FIRST_NAMES)} {setup.choice(_LAST_NAMES)}"
                if setup.random() < 0.55
                else setup.choice(("", "", "WIRELESS CALLER")),
            )
            for _ in range(1500)
        ]
        hour_total = sum(_HOUR_WEIGHTS) * sum(_WEEKDAY_WEIGHTS) / 7
        self._volume_scale = 1.0 / hour_total

        self._url_map = Map(
            [
                Rule("/v4/auth/token", endpoint="token", methods=["POST"]),
                Rule("/v4/api/calls", endpoint="calls", methods=["GET"]),
                Rule("/v4/api/calls/<call_id>", endpoint="call", methods=["GET"]),
                Rule("/v4/api/phonenumbers", endpoint="phone_numbers", methods=["GET"]),
                Rule("/v4/api/team", endpoint="team", methods=["GET"]),
                Rule("/v4/api/journal/requests", endpoint="journal", methods=["GET"]),
                Rule(
                    "/v4/api/contactcenter/messages/send",
                    endpoint="messages_send",
                    methods=["POST"],
                ),
                Rule("/recordings/<call_id>.wav", endpoint="recording", methods=["GET"]),
                Rule("/_sim/faults", endpoint="_faults", methods=["GET", "POST", "DELETE"]),
                Rule("/", endpoint="_index", methods=["GET"]),
            ]
        )

    def __repr__(self) -> str:
        return f"Simulator(seed={self.seed!r}, calls_per_day={self.calls_per_day!r})"

    # Ground truth

    def phone_numbers(self) -> list[str]:
        return [item["number"] for item in self._numbers]

    def agents(self) -> list[tuple[str, str]]:
        return list(self._agents)

    def calls_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Exactly the calls the API lists for [start, end) (head insertions too), newest first."""
        start_ms, end_ms = _to_ms(start), _to_ms(end)
        _, bodies = self._window(start_ms, end_ms, 0, None)
        base = self.recording_base_url or "http://localhost"
        return [json.loads(body.replace(_REC, base)) for body in bodies]

    def count_between(self, start: datetime, end: datetime) -> int:
        """How many calls the API lists for [start, end); cheap even for long windows."""
        return self._window(_to_ms(start), _to_ms(end), 0, 0)[0]

    def sms_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Exactly the journal items of type Message for [start, end), newest first."""
        return self._sms_window(_to_ms(start), _to_ms(end))

    def revoke_tokens(self) -> None:
        """Invalidate every access and refresh token, as a key rotation at MightyCall would."""
        with self._lock:
            self._tokens.clear()
            self._refresh_tokens.clear()

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.token_grants.clear()

    def shutdown(self) -> None:
        """Wake requests sleeping in ``slow``/``hang`` faults so a server can stop promptly."""
        self._stopping.set()

    # Volumes

    def _profile(self, day: date) -> tuple[list[float], list[bool]]:
        """Weights and business-hours flags of the 24 UTC hours of ``day``, in the business zone."""
        cached = self._hour_profile.get(day)
        if cached is not None:
            return cached
        weights, business = [], []
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        for hour in range(24):
            local = (midnight + timedelta(hours=hour, minutes=30)).astimezone(self._tz)
            weekday = local.weekday()
            weights.append(_HOUR_WEIGHTS[local.hour] * _WEEKDAY_WEIGHTS[weekday])
            business.append(weekday < 5 and local.hour in _BUSINESS_HOURS)
        profile = (weights, business)
        if len(self._hour_profile) > 20_000:
            self._hour_profile.clear()
        self._hour_profile[day] = profile
        return profile

    def _base_count(self, day: date) -> int:
        count = self._base_counts.get(day)
        if count is None:
            weights, _ = self._profile(day)
            expected = self.calls_per_day * self._volume_scale * sum(weights)
            noise = random.Random(f"{self.seed}:{day.isoformat()}:volume").gauss(0, 0.06)
            count = max(0, round(expected * (1 + noise)))
            if len(self._base_counts) > 20_000:
                self._base_counts.clear()
            self._base_counts[day] = count
        return count

    def _day_count(self, day: date) -> int:
        return self._base_count(day) + len(self._extra_calls.get(day, ()))

    # Call generation

    def _day(self, day: date) -> _Day:
        with self._lock:
            cached = self._days.get(day)
            if cached is not None:
                self._days.move_to_end(day)
                return cached
        base_times, base_bodies = self._generate_day(day)
        with self._lock:
            extras = self._extra_calls.get(day)
            if extras:
                merged = [*zip(base_times, base_bodies, strict=True), *extras]
                merged.sort(key=lambda pair: pair[0])
                generated = _Day([t for t, _ in merged], [b for _, b in merged], base_bodies)
            else:
                generated = _Day(base_times, base_bodies, base_bodies)
            self._days[day] = generated
            self._cached_calls += len(generated.bodies)
            while self._cached_calls > self._cache_calls and len(self._days) > 1:
                _, evicted = self._days.popitem(last=False)
                self._cached_calls -= len(evicted.bodies)
            return generated

    def _generate_day(self, day: date) -> tuple[list[int], list[str]]:
        count = self._base_count(day)
        weights, business = self._profile(day)
        rng = random.Random(f"{self.seed}:{day.isoformat()}")
        hours = rng.choices(range(24), weights=weights, k=count) if count else []
        offsets = sorted(h * _HOUR_MS + int(rng.random() * _HOUR_MS) for h in hours)
        day_ms = _to_ms(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
        ordinal = day.toordinal()
        bodies = []
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        for index, offset in enumerate(offsets):
            tail = f"{ordinal:05x}{index:07x}"
            call_id = self._guid(rng, tail)
            call = self._call(rng, call_id, day_ms + offset, business[offset // _HOUR_MS])
            bodies.append(dumps(call))
        return [day_ms + offset for offset in offsets], bodies

    @staticmethod
    def _guid(rng: random.Random, tail: str) -> str:
        bits = rng.getrandbits(64)
        return (
            f"{bits >> 32:08x}-{(bits >> 16) & 0xFFFF:04x}-4{(bits >> 4) & 0xFFF:03x}-"
            f"{8 + (bits & 3):x}{(bits >> 52) & 0xFFF:03x}-{tail}"
        )

    def _call(self, rng: random.Random, call_id: str, ms: int, business: bool) -> dict[str, Any]:
        rand = rng.random
        number = rng.choices(self._numbers, cum_weights=self._number_cum)[0]["number"]
        agent_ext, agent_name = rng.choices(self._agents, cum_weights=self._agent_cum)[0]
        if rand() < 0.7:
            phone, name = self._customers[int(rand() * len(self._customers))]
        else:
            phone, name = _us_number(rng, _CUSTOMER_AREAS[int(rand() * len(_CUSTOMER_AREAS))]), ""
        outbound = rand() < (0.28 if business else 0.08)
        roll = rand()
        if outbound:
            direction = "Outgoing"
            if roll < 0.62:
                status = "Connected"
                duration = self._talk_ms(rng, 150)
            elif roll < 0.95:
                status = "Missed"
                duration = rng.randint(12_000, 40_000)
            else:
                status = "Dropped"
                duration = rng.randint(1_000, 10_000)
            caller = {"name": agent_name, "extension": agent_ext}
            called = [{"isConnected": status == "Connected", "name": name, "phone": phone}]
        else:
            direction = "Incoming"
            answer = 0.74 if business else 0.4
            caller = {"name": name, "phone": phone}
            if roll < answer:
                status = "Connected"
                duration = self._talk_ms(rng, 180)
                if rand() < 0.02:
                    forwarded = _us_number(rng, "917")
                    called = [{"isConnected": True, "name": "", "phone": forwarded}]
                else:
                    called = [{"isConnected": True, "name": agent_name, "extension": agent_ext}]
                    if rand() < 0.2:
                        other_ext, other_name = self._agents[int(rand() * len(self._agents))]
                        if other_ext != agent_ext:
                            called.insert(
                                0,
                                {"isConnected": False, "name": other_name, "extension": other_ext},
                            )
            else:
                unanswered = (roll - answer) / (1 - answer)
                rung = {"isConnected": False, "name": agent_name, "extension": agent_ext}
                if unanswered < 0.45:
                    status = "Missed"
                    duration = rng.randint(8_000, 45_000)
                    called = [rung]
                    other_ext, other_name = self._agents[int(rand() * len(self._agents))]
                    if rand() < 0.3 and other_ext != agent_ext:
                        called.append(
                            {"isConnected": False, "name": other_name, "extension": other_ext}
                        )
                elif unanswered < 0.85:
                    status = "VoiceMail"
                    duration = rng.randint(15_000, 120_000)
                    called = [rung]
                else:
                    status = "Dropped"
                    duration = rng.randint(1_000, 25_000)
                    called = [rung] if rand() < 0.5 else []
        if status == "Connected":
            stamp = _from_ms(ms).strftime("%Y%m%d_%H%M%S")
            record = {
                "fileName": f"{stamp}_{call_id}.wav",
                "uri": f"{_REC}/recordings/{call_id}.wav",
            }
        else:
            record = None
        odd_shape = rand()
        return {
            "id": call_id,
            "caller": caller,
            "called": called,
            "businessNumber": {"number": number} if odd_shape < 0.03 else number,
            "dateTimeUtc": _format_ms(ms),
            "duration": duration if 0.03 <= odd_shape < 0.06 else str(duration),
            "direction": direction,
            "callStatus": status,
            "callRecord": record,
        }

    @staticmethod
    def _talk_ms(rng: random.Random, median_seconds: float) -> int:
        seconds = math.exp(rng.gauss(math.log(median_seconds), 0.9))
        return int(min(3600.0, max(4.0, seconds)) * 1000) + rng.randint(0, 999)

    # Windows

    def _window(
        self, start_ms: int, end_ms: int, skip: int, limit: int | None
    ) -> tuple[int, list[str]]:
        """(total, JSON bodies newest first) of calls in [start_ms, end_ms) after ``skip``."""
        if end_ms <= start_ms or (self.calls_per_day <= 0 and not self._extra_calls):
            return 0, []
        first = _from_ms(start_ms).date()
        last = _from_ms(end_ms - 1).date()
        spans = []
        total = 0
        day = last
        while day >= first:
            day_ms = (day.toordinal() - 719_163) * _DAY_MS
            if start_ms <= day_ms and day_ms + _DAY_MS <= end_ms:
                count = self._day_count(day)
                bounds = None
            else:
                data = self._day(day)
                lo = bisect.bisect_left(data.times, start_ms)
                hi = bisect.bisect_left(data.times, end_ms)
                count, bounds = hi - lo, (lo, hi)
            spans.append((day, count, bounds))
            total += count
            day -= timedelta(days=1)
        if limit == 0:
            return total, []
        bodies: list[str] = []
        for day, count, bounds in spans:
            if limit is not None and len(bodies) >= limit:
                break
            if skip >= count:
                skip -= count
                continue
            data = self._day(day)
            lo, hi = bounds if bounds is not None else (0, len(data.bodies))
            top = hi - skip
            take = top - lo if limit is None else min(limit - len(bodies), top - lo)
            bodies.extend(reversed(data.bodies[top - take : top]))
            skip = 0
        return total, bodies

    def _insert_head(self, start_ms: int, end_ms: int, count: int) -> list[str]:
        """Add ``count`` calls newer than every call of the window; return their ids."""
        _, newest = self._window(start_ms, end_ms, 0, 1)
        after = json.loads(newest[0])["dateTimeUtc"] if newest else None
        floor_ms = _parse_time(after) if after else start_ms - 1
        step = max(1, (end_ms - 1 - floor_ms) // (count + 1))
        ids = []
        with self._lock:
            for i in range(count):
                self._extra_seq += 1
                rng = random.Random(f"{self.seed}:extra:{self._extra_seq}")
                ms = min(end_ms - 1, floor_ms + step * (i + 1))
                call_id = self._guid(rng, f"{rng.getrandbits(48):012x}")
                local = _from_ms(ms).astimezone(self._tz)
                business = local.weekday() < 5 and local.hour in _BUSINESS_HOURS
                body = json.dumps(self._call(rng, call_id, ms, business), separators=(",", ":"))
                day = _from_ms(ms).date()
                self._extra_calls.setdefault(day, []).append((ms, body))
                self._extra_by_id[call_id] = body
                cached = self._days.pop(day, None)
                if cached is not None:
                    self._cached_calls -= len(cached.bodies)
                ids.append(call_id)
        return ids

    def _find_call(self, call_id: str) -> str | None:
        body = self._extra_by_id.get(call_id)
        if body is not None:
            return body
        tail = call_id.rpartition("-")[2]
        if len(tail) != 12:
            return None
        try:
            ordinal, index = int(tail[:5], 16), int(tail[5:], 16)
            day = date.fromordinal(ordinal)
        except ValueError:
            return None
        data = self._day(day)
        if index >= len(data.base_bodies):
            return None
        body = data.base_bodies[index]
        return body if body.startswith(f'{{"id":"{call_id}"') else None

    # Text messages

    def _sms_day(self, day: date) -> list[dict[str, Any]]:
        """The messages of one UTC day in ascending time order, sent ones included."""
        with self._lock:
            base = self._sms_days.get(day)
            if base is not None:
                self._sms_days.move_to_end(day)
        if base is None:
            base = self._generate_sms_day(day)
            with self._lock:
                self._sms_days[day] = base
                while len(self._sms_days) > 64:
                    self._sms_days.popitem(last=False)
        with self._lock:
            extras = list(self._extra_sms.get(day, ()))
        if not extras:
            return base
        return sorted(base + extras, key=lambda item: item["dateTimeUtc_ms"])

    def _generate_sms_day(self, day: date) -> list[dict[str, Any]]:
        weights, _ = self._profile(day)
        rng = random.Random(f"{self.seed}:{day.isoformat()}:sms")
        expected = self.sms_per_day * self._volume_scale * sum(weights)
        count = max(0, round(expected * (1 + rng.gauss(0, 0.1))))
        hours = rng.choices(range(24), weights=weights, k=count) if count else []
        offsets = sorted(h * _HOUR_MS + int(rng.random() * _HOUR_MS) for h in hours)
        day_ms = (day.toordinal() - 719_163) * _DAY_MS
        items = []
        for index, offset in enumerate(offsets):
            tail = f"{day.toordinal():05x}{index:07x}"
            items.append(self._sms_item(rng, self._guid(rng, tail), day_ms + offset))
        return items

    def _sms_item(self, rng: random.Random, sms_id: str, ms: int) -> dict[str, Any]:
        number = rng.choices(self._numbers, cum_weights=self._number_cum)[0]["number"]
        phone, name = self._customers[int(rng.random() * len(self._customers))]
        inbound = rng.random() < 0.55
        agent_ext, agent_name = rng.choices(self._agents, cum_weights=self._agent_cum)[0]
        return {
            "id": sms_id,
            "type": "Message",
            "direction": "Incoming" if inbound else "Outgoing",
            "dateTimeUtc": _format_ms(ms),
            "businessNumber": number,
            "client": {"phone": phone, "name": name},
            "from": phone if inbound else number,
            "to": number if inbound else phone,
            "agent": None if inbound else {"extension": agent_ext, "name": agent_name},
            "text": rng.choice(_SMS_INBOUND if inbound else _SMS_OUTBOUND),
            "status": "Received" if inbound else "Delivered",
            "dateTimeUtc_ms": ms,
        }

    def _sms_window(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        if end_ms <= start_ms:
            return []
        items: list[dict[str, Any]] = []
        day = _from_ms(end_ms - 1).date()
        first = _from_ms(start_ms).date()
        while day >= first:
            for item in reversed(self._sms_day(day)):
                if start_ms <= item["dateTimeUtc_ms"] < end_ms:
                    items.append({k: v for k, v in item.items() if k != "dateTimeUtc_ms"})
            day -= timedelta(days=1)
        return items

    # HTTP

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, args = self._url_map.bind_to_environ(environ).match()
        except RouteNotFound:
            response = _json(
                {
                    "Message": "No HTTP resource was found that matches the request URI "
                    f"'{request.url}'."
                },
                404,
            )
            return response(environ, start_response)
        except MethodNotAllowed as exc:
            return exc.get_response(environ)(environ, start_response)
        except HTTPException as exc:
            return exc.get_response(environ)(environ, start_response)
        if endpoint == "_faults":
            return self._control(request)(environ, start_response)
        if endpoint == "_index":
            return _json({"simulator": "MightyCall v4", "base_path": "/v4"})(
                environ, start_response
            )
        return self._serve(endpoint, request, args)(environ, start_response)

    def _serve(self, route: str, request: Request, args: dict[str, Any]) -> Response:
        with self._lock:
            self.requests[route] += 1
        fired = self.faults.take(route)
        kinds = {fault.kind: fault for fault in fired}
        for kind in ("slow", "hang"):
            if kind in kinds:
                default = 1.0 if kind == "slow" else 30.0
                self._stopping.wait(float(kinds[kind].params.get("seconds", default)))
        for fault in fired:
            if fault.kind in _REPLACING:
                return self._fault_response(fault, request)
        if route == "token":
            response = self._token(request)
        elif route == "recording":
            response = self._recording(request, args["call_id"])
        else:
            denied = self._check_auth(request)
            if denied is not None:
                return denied
            handler = getattr(self, f"_route_{route}")
            response = handler(request, kinds, **args)
        if "truncated" in kinds and response.status_code == 200:
            data = response.get_data()
            response.set_data(data[: max(1, len(data) // 2)])
        return response

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        params = fault.params
        if fault.kind == "token_expiry":
            token = _bearer(request)
            with self._lock:
                if token in self._tokens:
                    self._tokens[token] = 0.0
            return _json(_DENIED, 401)
        if fault.kind == "rate_limit":
            wait = float(params.get("retry_after", 2))
            style = params.get("format", "seconds")
            headers = {}
            if style == "seconds":
                headers["Retry-After"] = f"{wait:g}"
            elif style == "http-date":
                headers["Retry-After"] = email.utils.formatdate(time.time() + wait, usegmt=True)
            body = {"Message": "API calls quota exceeded! maximum admitted 2500 per Day."}
            return _json(body, 429, headers)
        if fault.kind == "server_error":
            status = int(params.get("status", 500))
            if params.get("body", "json") == "html":
                phrase = {
                    500: "Internal Server Error",
                    502: "Bad Gateway",
                    503: "Service Unavailable",
                }
                title = f"{status} {phrase.get(status, 'Error')}"
                page = (
                    f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1>"
                    "</center><hr><center>nginx</center></body></html>"
                )
                return Response(page, status, mimetype="text/html")
            return _json({"Message": "An error has occurred."}, status)
        if fault.kind == "not_json":
            page = "<html><body><h1>Service temporarily unavailable</h1></body></html>"
            return Response(page, 200, mimetype="text/html")
        message = params.get("message", "An error has occurred while processing the request.")
        return _json({"isSuccess": False, "message": message}, 200)

    def _check_auth(self, request: Request) -> Response | None:
        token = _bearer(request)
        with self._lock:
            expires = self._tokens.get(token) if token else None
        api_key = request.headers.get("x-api-key", "")
        if (
            expires is None
            or expires <= self.clock()
            or not hmac.compare_digest(api_key.encode(), self.api_key.encode())
        ):
            return _json(_DENIED, 401)
        return None

    def _token(self, request: Request) -> Response:
        form = request.form
        grant = form.get("grant_type", "")
        api_key = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(api_key.encode(), self.api_key.encode()):
            return _json({"error": "invalid_client"}, 400)
        now = self.clock()
        with self._lock:
            self.token_grants.append(grant)
            if grant == "client_credentials":
                if not (
                    hmac.compare_digest(form.get("client_id", "").encode(), self.api_key.encode())
                    and hmac.compare_digest(
                        form.get("client_secret", "").encode(), self.user_key.encode()
                    )
                ):
                    return _json({"error": "invalid_client"}, 400)
            elif grant == "refresh_token":
                presented = form.get("refresh_token", "")
                expires = self._refresh_tokens.pop(presented, None)
                if expires is None or expires <= now:
                    return _json({"error": "invalid_grant"}, 400)
            else:
                return _json({"error": "unsupported_grant_type"}, 400)
            access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[access] = now + self.token_ttl
            self._refresh_tokens[refresh] = now + self.refresh_ttl
        return _json(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "refresh_token": refresh,
            }
        )

    def _route_calls(self, request: Request, kinds: dict[str, Fault]) -> Response:
        args = request.args
        try:
            end_ms = _parse_time(args["endUtc"]) if args.get("endUtc") else int(self.clock() * 1000)
            start_ms = (
                _parse_time(args["startUtc"]) if args.get("startUtc") else end_ms - 7 * _DAY_MS
            )
            skip = max(0, int(args.get("skip", 0)))
            size = max(1, int(args.get("pageSize", 100)))
        except ValueError:
            return _json({"Message": "The request is invalid."}, 400)
        size = min(size, self.max_page_size)
        if "page_cap" in kinds:
            size = min(size, int(kinds["page_cap"].params.get("cap", 100)))
        total, bodies = self._window(start_ms, end_ms, skip, size)
        rec = self._recording_base(request)
        listed = ",".join(bodies).replace(_REC, rec)
        total_text = f',"total":{total}'
        if "wrong_total" in kinds:
            params = kinds["wrong_total"].params
            mode = params.get("mode", "missing")
            if "value" in params:
                total_text = f',"total":{int(params["value"])}'
            elif mode == "small":
                total_text = f',"total":{total // 2}'
            elif mode == "large":
                total_text = f',"total":{total * 2 + 17}'
            else:
                total_text = ""
        body = f'{{"data":{{"calls":[{listed}]{total_text}}}}}'
        if "head_insert" in kinds:
            self._insert_head(start_ms, end_ms, int(kinds["head_insert"].params.get("count", 3)))
        return Response(body, 200, mimetype="application/json")

    def _route_call(self, request: Request, kinds: dict[str, Fault], call_id: str) -> Response:
        body = self._find_call(call_id)
        if body is None:
            return _json({"Message": f"Call '{call_id}' was not found."}, 404)
        body = body.replace(_REC, self._recording_base(request))
        return Response(f'{{"data":{body}}}', 200, mimetype="application/json")

    def _route_phone_numbers(self, request: Request, kinds: dict[str, Fault]) -> Response:
        return _json({"data": {"phoneNumbers": self._numbers}})

    def _route_team(self, request: Request, kinds: dict[str, Fault]) -> Response:
        users = []
        for extension, name in self._agents:
            first, _, last = name.partition(" ")
            users.append(
                {
                    "id": f"user-{extension}",
                    "fullName": name,
                    "firstName": first,
                    "lastName": last,
                    "email": f"{first.lower()}.{last.lower() or 'agent'}@example.com",
                    "extension": extension,
                    "role": "Admin" if extension == self._agents[0][0] else "Agent",
                }
            )
        return _json({"data": {"users": users}})

    def _route_journal(self, request: Request, kinds: dict[str, Fault]) -> Response:
        args = request.args
        try:
            end_ms = _parse_time(args["to"]) if args.get("to") else int(self.clock() * 1000)
            start_ms = _parse_time(args["from"]) if args.get("from") else end_ms - 7 * _DAY_MS
            page = max(1, int(args.get("page", 1)))
            size = max(1, int(args.get("pageSize", 50)))
        except ValueError:
            return _json({"Message": "The request is invalid."}, 400)
        size = min(size, self.max_page_size)
        if "page_cap" in kinds:
            size = min(size, int(kinds["page_cap"].params.get("cap", 100)))
        if args.get("type", "Message").lower() != "message":
            items: list[dict[str, Any]] = []
        else:
            items = self._sms_window(start_ms, end_ms)[(page - 1) * size : page * size]
        answer: Any = {"currentPage": page, "requests": items}
        if page % 2 == 0:
            answer = [answer]
        return _json(answer)

    def _route_messages_send(self, request: Request, kinds: dict[str, Fault]) -> Response:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _json({"isSuccess": False, "message": "The request body must be JSON."}, 400)
        sender, recipients, message = payload.get("from"), payload.get("to"), payload.get("message")
        if sender not in self.phone_numbers():
            return _json(
                {"isSuccess": False, "message": "'from' is not a number of this account."}, 400
            )
        if (
            not isinstance(recipients, list)
            or not recipients
            or not all(isinstance(r, str) and r.startswith("+") for r in recipients)
        ):
            return _json({"isSuccess": False, "message": "'to' must list E.164 numbers."}, 400)
        if not isinstance(message, str) or not message.strip():
            return _json({"isSuccess": False, "message": "'message' must not be empty."}, 400)
        now_ms = int(self.clock() * 1000)
        sent = []
        with self._lock:
            for recipient in recipients:
                sms_id = str(uuid.uuid4())
                item = {
                    "id": sms_id,
                    "type": "Message",
                    "direction": "Outgoing",
                    "dateTimeUtc": _format_ms(now_ms),
                    "businessNumber": sender,
                    "client": {"phone": recipient, "name": ""},
                    "from": sender,
                    "to": recipient,
                    "agent": None,
                    "text": message,
                    "status": "Queued",
                    "dateTimeUtc_ms": now_ms,
                }
                self._extra_sms.setdefault(_from_ms(now_ms).date(), []).append(item)
                self.sent_messages.append({k: v for k, v in item.items() if k != "dateTimeUtc_ms"})
                sent.append({"id": sms_id, "to": recipient, "status": "Queued"})
        return _json({"isSuccess": True, "data": {"messages": sent}})

    def _recording(self, request: Request, call_id: str) -> Response:
        if self.recordings_require_auth:
            token = _bearer(request)
            with self._lock:
                expires = self._tokens.get(token) if token else None
            if expires is None or expires <= self.clock():
                return _json(_DENIED, 401)
        body = self._find_call(call_id)
        if body is None or '"callRecord":null' in body:
            return _json({"Message": "Recording not found."}, 404)
        data = _wav_tone(call_id)
        response = Response(data, 200, mimetype="audio/wav")
        response.headers["Content-Disposition"] = f'attachment; filename="{call_id}.wav"'
        return response

    def _recording_base(self, request: Request) -> str:
        if self.recording_base_url:
            return self.recording_base_url
        host = request.host
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        swapped = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(name, name)
        return f"{request.scheme}://{swapped}{':' + port if port else ''}"

    def _control(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return _json({"faults": []})
        if request.method == "POST":
            payload = request.get_json(silent=True)
            entries = payload if isinstance(payload, list) else [payload]
            try:
                for entry in entries:
                    if not isinstance(entry, dict):
                        raise ValueError("send a JSON object or a list of objects")
                    if entry.get("clear"):
                        self.faults.clear()
                        continue
                    spec = dict(entry)
                    route, kind = spec.pop("route", None), spec.pop("kind", None)
                    times, after = spec.pop("times", 1), spec.pop("after", 0)
                    params = spec.pop("params", {}) or {}
                    self.faults.add(
                        str(route), str(kind), times=times, after=after, **spec, **params
                    )
            except (TypeError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)
        with self._lock:
            counts = dict(self.requests)
        return _json({"faults": self.faults.active(), "requests": counts})


def _bearer(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _json(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status,
        headers=dict(headers or {}),
        mimetype="application/json",
    )


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class SimulatorServer:
    """Runs a :class:`Simulator` on a loopback port in a daemon thread (threaded werkzeug server).

    Use as a context manager. ``base_url`` is the API base (``http://127.0.0.1:PORT/v4``) and
    ``url`` the server root. Unless the simulator has a ``recording_base_url``, recording links
    point at ``http://localhost:PORT``, another host string than the API's, like MightyCall's do.
    """

    def __init__(
        self,
        simulator: Simulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = True,
        **simulator_options: Any,
    ) -> None:
        self.simulator = simulator or Simulator(**simulator_options)
        self.host = host
        self._port = port
        self._quiet = quiet
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator server is not running")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v4"

    def start(self) -> SimulatorServer:
        handler = _QuietRequestHandler if self._quiet else None
        self._server = make_server(
            self.host, self._port, self.simulator, threaded=True, request_handler=handler
        )
        if self.simulator.recording_base_url is None:
            other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(self.host, self.host)
            self.simulator.recording_base_url = f"http://{other}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mightycall-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.simulator.shutdown()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"SimulatorServer({where})"


def run_simulator(
    host: str = "127.0.0.1",
    port: int = 5055,
    seed: int = 1,
    calls_per_day: float = 400,
    **options: Any,
) -> None:
    """Serve a simulator in the foreground until interrupted, printing where and how to connect."""
    simulator = Simulator(seed=seed, calls_per_day=calls_per_day, **options)
    if simulator.recording_base_url is None and host in ("127.0.0.1", "localhost"):
        other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
        simulator.recording_base_url = f"http://{other}:{port}"
    server = make_server(host, port, simulator, threaded=True)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"MightyCall simulator (seed {seed}, ~{calls_per_day:g} calls/day)")
    print(f"  base URL: http://{shown}:{server.server_port}/v4")
    print(f"  API key:  {simulator.api_key}")
    print(f"  User key: {simulator.user_key}")
    print('  faults:   POST /_sim/faults {"route": "calls", "kind": "rate_limit"}')
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.shutdown()
        server.server_close()


_LIFECYCLES: dict[str, tuple[str, tuple[tuple[str, float, bool], ...]]] = {
    # (direction, ((event type, seconds after start, carries the extension), ...))
    "answered": (
        "Incoming",
        (
            ("IncomingCall", 0, False),
            ("IncomingCallRinging", 1, True),
            ("IncomingCallConnected", 9, True),
            ("IncomingCallCompleted", 190, True),
        ),
    ),
    "missed": (
        "Incoming",
        (
            ("IncomingCall", 0, False),
            ("IncomingCallRinging", 1, True),
            ("IncomingCallStopRinging", 31, True),
            ("IncomingCallCompleted", 32, False),
        ),
    ),
    "voicemail": (
        "Incoming",
        (
            ("IncomingCall", 0, False),
            ("IncomingCallRinging", 1, True),
            ("IncomingCallStopRinging", 21, True),
            ("IncomingCallCompleted", 75, False),
        ),
    ),
    "outbound": (
        "Outgoing",
        (
            ("OutgoingCall", 0, True),
            ("OutgoingCallConnected", 14, True),
            ("OutgoingCallCompleted", 160, True),
        ),
    ),
}


class WebhookEmitter:
    """Plays scripted call lifecycles against a webhook receiver, as MightyCall would deliver them.

    Each event is POSTed as JSON ``{"EventType", "Timestamp", "Guid", "ApiKey", "Body": {"Id",
    "From", "To", "Extension", "DateTimeUtc", "Direction"}}``; ``Guid`` identifies the event,
    ``Body.Id`` the call. MightyCall does not sign webhooks; with ``signing_secret`` the emitter
    adds ``X-Vsync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` as a relay
    would (the scheme vsync's receiver checks). The
    receiver's answers are kept in ``deliveries`` as (Guid, status); network failures raise
    ``requests`` errors. The target URL usually holds the receiver's secret token, so ``repr`` shows
    only its origin.
    """

    SIGNATURE_HEADER = "X-Vsync-Signature"

    def __init__(
        self,
        target_url: str,
        api_key: str,
        *,
        timeout: float = 5,
        session: requests.Session | None = None,
        signing_secret: str | bytes | None = None,
    ) -> None:
        self.target_url = target_url
        self._api_key = api_key
        self._timeout = timeout
        self._session = session or requests.Session()
        if isinstance(signing_secret, str):
            signing_secret = signing_secret.encode()
        self._signing_secret = signing_secret
        self.deliveries: list[tuple[str, int]] = []

    def __repr__(self) -> str:
        parts = urlsplit(self.target_url)
        return f"WebhookEmitter(target={parts.scheme}://{parts.netloc})"

    def signature(self, body: bytes, timestamp: int | None = None) -> str | None:
        if self._signing_secret is None:
            return None
        stamp = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(self._signing_secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={stamp},v1={digest}"

    def send(self, payload: Any) -> int:
        """POST one event (or a list of them) as MightyCall would; return the receiver's status."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "MightyCall-Webhooks"}
        signature = self.signature(body)
        if signature:
            headers[self.SIGNATURE_HEADER] = signature
        response = self._session.post(
            self.target_url, data=body, headers=headers, timeout=self._timeout
        )
        response.close()
        guids = (
            [e.get("Guid") for e in payload] if isinstance(payload, list) else [payload.get("Guid")]
        )
        for guid in guids:
            self.deliveries.append((str(guid), response.status_code))
        return response.status_code

    def events(
        self,
        lifecycle: str,
        *,
        call_id: str | None = None,
        business_number: str = "+12127363100",
        caller: str = "+17185550123",
        extension: str = "101",
        started_at: datetime | None = None,
        rng: random.Random | None = None,
    ) -> list[dict[str, Any]]:
        """The events of one call's lifecycle in the order they happen, without sending them."""
        if lifecycle not in _LIFECYCLES:
            raise ValueError(
                f"unknown lifecycle {lifecycle!r}; expected one of {', '.join(_LIFECYCLES)}"
            )
        rng = rng or random.Random()
        direction, script = _LIFECYCLES[lifecycle]
        started = started_at or datetime.now(timezone.utc)
        if started.tzinfo is None:
            started = started.replace(tzinfo=timezone.utc)
        call_id = call_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        outgoing = direction == "Outgoing"
        start_text = _format_ms(_to_ms(started))
        events = []
        for event_type, offset, with_extension in script:
            events.append(
                {
                    "EventType": event_type,
                    "Timestamp": _format_ms(_to_ms(started + timedelta(seconds=offset))),
                    "Guid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "ApiKey": self._api_key,
                    "Body": {
                        "Id": call_id,
                        "From": business_number if outgoing else caller,
                        "To": caller if outgoing else business_number,
                        "Extension": extension if with_extension else "",
                        "DateTimeUtc": start_text,
                        "Direction": direction,
                    },
                }
            )
        return events

    def play(
        self,
        lifecycle: str,
        *,
        call_id: str | None = None,
        business_number: str = "+12127363100",
        caller: str = "+17185550123",
        extension: str = "101",
        started_at: datetime | None = None,
        duplicate: bool = False,
        shuffle: bool = False,
        batch: bool = False,
        rng_seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Deliver one lifecycle: ``answered``, ``missed``, ``voicemail`` or ``outbound``.

        Returns the events in the order they were sent.

        ``duplicate`` delivers about half of the events (at least one) a second time with the same
        ``Guid``; ``shuffle`` delivers in a different order than they happened; ``batch`` sends them
        all in one POST as a JSON list (v4 may do so). ``rng_seed`` makes ids and order repeatable.
        """
        rng = random.Random(rng_seed)
        events = self.events(
            lifecycle,
            call_id=call_id,
            business_number=business_number,
            caller=caller,
            extension=extension,
            started_at=started_at,
            rng=rng,
        )
        sequence = list(events)
        if duplicate:
            for event in rng.sample(events, max(1, len(events) // 2)):
                position = sequence.index(event) + 1
                sequence.insert(rng.randint(position, len(sequence)), dict(event))
        if shuffle and len(sequence) > 1:
            original = [e["Guid"] for e in sequence]
            for _ in range(20):
                rng.shuffle(sequence)
                if [e["Guid"] for e in sequence] != original:
                    break
        if batch:
            self.send(sequence)
        else:
            for event in sequence:
                self.send(event)
        return sequence

    def validate(self, target_url: str | None = None, echo_value: str | None = None) -> str | None:
        """Send a validation request with an ``Echo`` header; return the ``Echo`` answered."""
        echo_value = echo_value or secrets.token_hex(8)
        response = self._session.post(
            target_url or self.target_url, headers={"Echo": echo_value}, timeout=self._timeout
        )
        response.close()
        return response.headers.get("Echo")
