"""Fixtures of the browser walk: the app served on a loopback port by one threaded server for the
module, and Debian's Chromium (never a downloaded browser), headless."""

from __future__ import annotations

import pathlib

import pytest

from tests.mightycall.helpers import serve_wsgi

CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt-get)")
    return {"executable_path": str(CHROMIUM), "headless": True, "args": ["--no-sandbox", "--disable-gpu"]}


@pytest.fixture(scope="module")
def live_server(app):
    with serve_wsgi(app) as url:
        yield url


@pytest.fixture
def artifacts() -> pathlib.Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
