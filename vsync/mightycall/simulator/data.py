"""The simulated account's data: numbers, agents, calls, text messages and recordings.

Everything is a pure function of ``seed``: the calls of one UTC day are generated from (seed, date)
on demand, so any date range can be served without storing it. Calls that appear later (the
``head_insert`` fault, messages sent through the API) are kept beside the generated ones and are
part of the ground truth from then on.
"""

from __future__ import annotations

import array
import bisect
import itertools
import json
import math
import random
import sys
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "BUSINESS_HOURS",
    "DAY_MS",
    "RECORDING_MARKER",
    "SimulatedAccount",
    "format_ms",
    "from_ms",
    "parse_time",
    "to_ms",
    "wav_tone",
]

DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECORDING_MARKER = "%REC%"

# Relative call volume per local hour (0-23) and per local weekday (Monday first).
# fmt: off
_HOUR_WEIGHTS = (
    0.02, 0.01, 0.01, 0.01, 0.01, 0.03, 0.08, 0.3, 0.8, 1.4, 1.8, 1.7,
    1.2, 1.4, 1.7, 1.6, 1.3, 0.9, 0.5, 0.3, 0.2, 0.12, 0.06, 0.04,
)
# fmt: on
_WEEKDAY_WEIGHTS = (1.0, 1.05, 1.0, 1.0, 0.9, 0.3, 0.15)
BUSINESS_HOURS = range(8, 18)

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


def to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def format_ms(ms: int) -> str:
    """``2024-01-05T13:04:07.523Z`` with trailing zeros of the fraction dropped (1-3 digits)."""
    moment = from_ms(ms)
    fraction = f"{ms % 1000:03d}".rstrip("0") or "0"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"


def parse_time(text: str) -> int:
    moment = datetime.fromisoformat(text.strip())
    return to_ms(moment)


def _us_number(rng: random.Random, area: str) -> str:
    """A valid NANP number: exchange 2-9 first, never N11 or 555."""
    while True:
        exchange = rng.randint(200, 999)
        if exchange % 100 != 11 and exchange != 555:
            return f"+1{area}{exchange}{rng.randint(0, 9999):04d}"


def wav_tone(call_id: str, *, rate: int = 8000, seconds: float = 0.5) -> bytes:
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
class _Day:
    """The calls of one UTC day, oldest first, as JSON text whose recording links start with `RECORDING_MARKER`,
    replaced by the recording host when served (it depends on the host the client asked)."""

    times: list[int]
    bodies: list[str]
    base_bodies: list[str]


class SimulatedAccount:
    """The data of one MightyCall account, generated from ``seed``, and its ground truth.

    ``numbers`` (E.164 strings) and ``agents`` ((extension, name) pairs) replace the seeded
    defaults. ``recording_base_url`` is the origin recording links point at in the ground truth
    (``calls_between``); the API fills in the host the client asked when it is ``None``.
    ``cache_calls`` bounds how many generated calls are kept in memory. :class:`Simulator` serves
    this data over HTTP; the ground-truth methods below are what tests and benches compare against.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        calls_per_day: float = 400,
        numbers: Iterable[str] | None = None,
        agents: Iterable[tuple[str, str]] | None = None,
        business_timezone: str = "America/New_York",
        sms_per_day: float | None = None,
        recording_base_url: str | None = None,
        cache_calls: int = 250_000,
    ) -> None:
        self.seed = seed
        self.calls_per_day = max(0.0, float(calls_per_day))
        self.sms_per_day = self.calls_per_day / 8 if sms_per_day is None else max(0.0, sms_per_day)
        self.recording_base_url = recording_base_url.rstrip("/") if recording_base_url else None
        self._tz = ZoneInfo(business_timezone)
        self._lock = threading.RLock()
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
            plan = [(_us_number(setup, area), label, kind, w) for area, label, kind, w in _NUMBER_PLAN]
        else:
            plan = [(n, f"Line {i + 1}", "Local", 1.0) for i, n in enumerate(numbers)]
        if not plan:
            raise ValueError("a simulated account needs at least one phone number")
        self._numbers = [{"number": n, "name": label, "type": kind, "isActive": True} for n, label, kind, _ in plan]
        self._number_cum = list(itertools.accumulate(w for *_, w in plan))
        agent_list = list(agents) if agents is not None else list(_DEFAULT_AGENTS)
        if not agent_list:
            raise ValueError("a simulated account needs at least one agent")
        self._agents = [(str(ext), name) for ext, name in agent_list]
        self._agent_cum = list(
            itertools.accumulate(
                _AGENT_WEIGHTS[i] if i < len(_AGENT_WEIGHTS) else 0.7 for i in range(len(self._agents))
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed!r}, calls_per_day={self.calls_per_day!r})"

    # Ground truth

    def phone_numbers(self) -> list[str]:
        return [item["number"] for item in self._numbers]

    def agents(self) -> list[tuple[str, str]]:
        return list(self._agents)

    def calls_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Exactly the calls the API lists for [start, end) (head insertions too), newest first."""
        start_ms, end_ms = to_ms(start), to_ms(end)
        _, bodies = self._window(start_ms, end_ms, 0, None)
        base = self.recording_base_url or "http://localhost"
        return [json.loads(body.replace(RECORDING_MARKER, base)) for body in bodies]

    def count_between(self, start: datetime, end: datetime) -> int:
        """How many calls the API lists for [start, end); cheap even for long windows."""
        return self._window(to_ms(start), to_ms(end), 0, 0)[0]

    def sms_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Exactly the journal items of type Message for [start, end), newest first."""
        return self._sms_window(to_ms(start), to_ms(end))

    # Volumes

    def _profile(self, day: date) -> tuple[list[float], list[bool]]:
        """Weights and business-hours flags of the 24 UTC hours of ``day``, in the business zone."""
        cached = self._hour_profile.get(day)
        if cached is not None:
            return cached
        weights, business = [], []
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for hour in range(24):
            local = (midnight + timedelta(hours=hour, minutes=30)).astimezone(self._tz)
            weekday = local.weekday()
            weights.append(_HOUR_WEIGHTS[local.hour] * _WEEKDAY_WEIGHTS[weekday])
            business.append(weekday < 5 and local.hour in BUSINESS_HOURS)
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
        day_ms = to_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))
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
                        called.append({"isConnected": False, "name": other_name, "extension": other_ext})
                elif unanswered < 0.85:
                    status = "VoiceMail"
                    duration = rng.randint(15_000, 120_000)
                    called = [rung]
                else:
                    status = "Dropped"
                    duration = rng.randint(1_000, 25_000)
                    called = [rung] if rand() < 0.5 else []
        if status == "Connected":
            stamp = from_ms(ms).strftime("%Y%m%d_%H%M%S")
            record = {
                "fileName": f"{stamp}_{call_id}.wav",
                "uri": f"{RECORDING_MARKER}/recordings/{call_id}.wav",
            }
        else:
            record = None
        odd_shape = rand()
        return {
            "id": call_id,
            "caller": caller,
            "called": called,
            "businessNumber": {"number": number} if odd_shape < 0.03 else number,
            "dateTimeUtc": format_ms(ms),
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

    def _window(self, start_ms: int, end_ms: int, skip: int, limit: int | None) -> tuple[int, list[str]]:
        """(total, JSON bodies newest first) of calls in [start_ms, end_ms) after ``skip``."""
        if end_ms <= start_ms or (self.calls_per_day <= 0 and not self._extra_calls):
            return 0, []
        first = from_ms(start_ms).date()
        last = from_ms(end_ms - 1).date()
        spans = []
        total = 0
        day = last
        while day >= first:
            day_ms = (day.toordinal() - 719_163) * DAY_MS
            if start_ms <= day_ms and day_ms + DAY_MS <= end_ms:
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
        floor_ms = parse_time(after) if after else start_ms - 1
        step = max(1, (end_ms - 1 - floor_ms) // (count + 1))
        ids = []
        with self._lock:
            for i in range(count):
                self._extra_seq += 1
                rng = random.Random(f"{self.seed}:extra:{self._extra_seq}")
                ms = min(end_ms - 1, floor_ms + step * (i + 1))
                call_id = self._guid(rng, f"{rng.getrandbits(48):012x}")
                local = from_ms(ms).astimezone(self._tz)
                business = local.weekday() < 5 and local.hour in BUSINESS_HOURS
                body = json.dumps(self._call(rng, call_id, ms, business), separators=(",", ":"))
                day = from_ms(ms).date()
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
        day_ms = (day.toordinal() - 719_163) * DAY_MS
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
            "dateTimeUtc": format_ms(ms),
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
        day = from_ms(end_ms - 1).date()
        first = from_ms(start_ms).date()
        while day >= first:
            for item in reversed(self._sms_day(day)):
                if start_ms <= item["dateTimeUtc_ms"] < end_ms:
                    items.append({k: v for k, v in item.items() if k != "dateTimeUtc_ms"})
            day -= timedelta(days=1)
        return items
