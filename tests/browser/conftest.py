"""Fixtures of the browser walk: the app served on a loopback port by one threaded server for the
module, and Debian's Chromium (never a downloaded browser), headless."""
from __future__ import annotations

import pathlib
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt-get)")
    return {"executable_path": str(CHROMIUM), "headless": True, "args": ["--no-sandbox", "--disable-gpu"]}


@pytest.fixture(scope="module")
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def artifacts() -> pathlib.Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
