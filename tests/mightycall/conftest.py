"""Fixtures: a real MightyCall simulator on loopback, and clients that never really sleep."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Self

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from vsync.mightycall.client import MightyCallClient
from vsync.mightycall.simulator import Simulator, SimulatorServer

API_KEY = "mc-api-7f3a9c2e51"
USER_KEY = "mc-user-41b2d8e6f0"

# A Tuesday in the simulator's business zone, long enough for several pages at small page sizes.
DAY_START = datetime(2024, 3, 5, tzinfo=UTC)
DAY_END = datetime(2024, 3, 6, tzinfo=UTC)


class ClockStub:
    """A settable epoch-seconds clock for the simulator (token expiry without waiting)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def sim_clock() -> ClockStub:
    return ClockStub(time.time())


@pytest.fixture
def sim_server(sim_clock: ClockStub) -> Iterator[SimulatorServer]:
    simulator = Simulator(
        seed=11, calls_per_day=80, api_key=API_KEY, user_key=USER_KEY, clock=sim_clock
    )
    with SimulatorServer(simulator) as server:
        yield server


@pytest.fixture
def sim(sim_server: SimulatorServer) -> Simulator:
    return sim_server.simulator


@pytest.fixture
def sleeps() -> list[float]:
    """Delays the client asked to sleep; the client under test never really waits."""
    return []


@pytest.fixture
def make_client(
    sim_server: SimulatorServer, sleeps: list[float]
) -> Iterator[Callable[..., MightyCallClient]]:
    clients: list[MightyCallClient] = []

    def factory(**options: Any) -> MightyCallClient:
        options.setdefault("sleep", sleeps.append)
        options.setdefault("rng", lambda: 0.5)
        options.setdefault("timeout", (2.0, 5.0))
        base_url = options.pop("base_url", sim_server.base_url)
        api_key = options.pop("api_key", API_KEY)
        user_key = options.pop("user_key", USER_KEY)
        client = MightyCallClient(base_url, api_key, user_key, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def mightycall(make_client: Callable[..., MightyCallClient]) -> MightyCallClient:
    return make_client()


@contextlib.contextmanager
def serve_wsgi(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app on a loopback port for the duration of the block; yields its root URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class WebhookReceiver:
    """A tiny HTTP receiver that records every delivery and answers the Echo validation."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/mightycall/token-abc"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        response = Response(status=200)
        echo = request.headers.get("Echo")
        if echo is not None:
            response.headers["Echo"] = echo
        else:
            with self._lock:
                self.deliveries.append((dict(request.headers), request.get_data()))
        return response(environ, start_response)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running
