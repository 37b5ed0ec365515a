"""Running a simulator: in a background thread for tests and benches, or in the foreground."""

from __future__ import annotations

import sys
import threading
from typing import Any, Self

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import Simulator

__all__ = ["SimulatorServer", "run_simulator"]


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

    def start(self) -> Self:
        handler = _QuietRequestHandler if self._quiet else None
        self._server = make_server(self.host, self._port, self.simulator, threaded=True, request_handler=handler)
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

    def __enter__(self) -> Self:
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
