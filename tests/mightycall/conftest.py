"""Fixtures: a real MightyCall simulator on loopback, and clients that never really sleep."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.mightycall.helpers import API_KEY, USER_KEY, ClockStub, WebhookReceiver
from vsync.mightycall.client import MightyCallClient
from vsync.mightycall.simulator import Simulator, SimulatorServer


@pytest.fixture
def sim_clock() -> ClockStub:
    return ClockStub(time.time())


@pytest.fixture
def sim_server(sim_clock: ClockStub) -> Iterator[SimulatorServer]:
    simulator = Simulator(seed=11, calls_per_day=80, api_key=API_KEY, user_key=USER_KEY, clock=sim_clock)
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
def make_client(sim_server: SimulatorServer, sleeps: list[float]) -> Iterator[Callable[..., MightyCallClient]]:
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


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running
