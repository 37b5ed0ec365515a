"""A demo floor: simulated calls played against a webhook receiver as they would happen, in real time.

Every `every` seconds (on average) a call starts on one of the numbers, with a lifecycle drawn like
a real floor's (mostly answered, some missed, voicemail and outbound), and each of its events is
POSTed when its moment comes, so the live floor shows phones ringing, agents talking and callers
waiting. It speaks plain HTTP to the receiver through the simulator's `WebhookEmitter`, exactly as
MightyCall (or a relay, with `--signing-secret`) would, and imports nothing of the app.

    python -m vsync.webhooks.demo_floor --url http://127.0.0.1:5000/webhooks/mightycall/<token> \\
        --api-key <the integration's MightyCall API key> --number +12127363100 [--number ...]

A delivery that fails (the receiver restarting) is logged and skipped; the floor goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import logging
import random
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import requests

from vsync.mightycall.parsing import parse_datetime
from vsync.mightycall.simulator import WebhookEmitter

log = logging.getLogger(__name__)

LIFECYCLES = (("answered", 60), ("missed", 12), ("voicemail", 10), ("outbound", 18))
TICK_SECONDS = 0.5


class DemoFloor:
    """Starts calls and delivers their events when due; `tick` does one step, `run` loops."""

    def __init__(
        self,
        emitter: WebhookEmitter,
        numbers: Sequence[str],
        *,
        extensions: Sequence[str] = ("101", "102", "103", "104", "105"),
        every: float = 5.0,
        seed: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not numbers:
            raise ValueError("The demo floor needs at least one business number.")
        if every <= 0:
            raise ValueError("`every` must be a positive number of seconds.")
        self.emitter, self.numbers, self.extensions, self.every = emitter, list(numbers), list(extensions), every
        self.rng, self.clock = random.Random(seed), clock
        self._due: list[tuple[datetime, int, dict]] = []
        self._order = itertools.count()
        self._next_call_at = clock()
        self.sent = 0
        self.failed = 0

    def _start_call(self, at: datetime) -> None:
        lifecycle = self.rng.choices([name for name, _ in LIFECYCLES], [weight for _, weight in LIFECYCLES])[0]
        caller = f"+1718555{self.rng.randint(0, 9999):04d}"
        for event in self.emitter.events(
            lifecycle,
            business_number=self.rng.choice(self.numbers),
            caller=caller,
            extension=self.rng.choice(self.extensions),
            started_at=at,
            rng=self.rng,
        ):
            heapq.heappush(self._due, (parse_datetime(event["Timestamp"]), next(self._order), event))

    def tick(self) -> None:
        now = self.clock()
        while self._next_call_at <= now:
            self._start_call(self._next_call_at)
            self._next_call_at += self._gap()
        while self._due and self._due[0][0] <= now:
            _, _, event = heapq.heappop(self._due)
            try:
                status = self.emitter.send(event)
            except requests.RequestException as exc:
                status = f"{type(exc).__name__}"
            if status == 200:
                self.sent += 1
            else:
                self.failed += 1
                log.warning("demo floor: %s %s not delivered: %s", event["EventType"], event["Guid"], status)
        self.emitter.deliveries.clear()  # the emitter keeps every answer; a floor that runs for days must not

    def _gap(self) -> timedelta:
        return timedelta(seconds=self.rng.expovariate(1 / self.every))

    def run(self, stop: threading.Event | None = None) -> None:
        """Play until `stop` is set (forever without one)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.tick()
            stop.wait(TICK_SECONDS)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Play simulated calls against a vsync webhook receiver.")
    parser.add_argument("--url", required=True, help="the receiver URL, with the integration's webhook token")
    parser.add_argument("--api-key", required=True, help="the integration's MightyCall API key")
    parser.add_argument("--number", action="append", required=True, help="a business number (repeatable)")
    parser.add_argument("--extension", action="append", help="an agent extension (repeatable; default 101-105)")
    parser.add_argument("--every", type=float, default=5.0, help="mean seconds between new calls (default 5)")
    parser.add_argument("--signing-secret", help="sign deliveries as a relay would")
    parser.add_argument("--seed", type=int, help="repeatable calls")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emitter = WebhookEmitter(args.url, args.api_key, timeout=5, signing_secret=args.signing_secret)
    floor = DemoFloor(
        emitter,
        args.number,
        extensions=args.extension or ("101", "102", "103", "104", "105"),
        every=args.every,
        seed=args.seed,
    )
    log.info("demo floor: a call every %.1f s on average against %r; Ctrl-C stops", args.every, emitter)
    with contextlib.suppress(KeyboardInterrupt):
        floor.run()
    log.info("demo floor: %s events delivered, %s not", floor.sent, floor.failed)


if __name__ == "__main__":
    main()
