"""Helpers of the mightycall tests, imported by their modules and fixtures."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Self

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API_KEY = "mc-api-7f3a9c2e51"


USER_KEY = "mc-user-41b2d8e6f0"


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


@contextlib.contextmanager
def serve_wsgi(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app on a loopback port for the duration of the block; yields its root URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
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
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

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
