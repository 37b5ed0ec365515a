"""Jobs that report on the worker process running them, for tests of the worker itself."""

from __future__ import annotations

import os

from vsync.jobs import job_context


def app_in_horse() -> dict:
    """The work horse's pid and its parent's, and the id of the app its job context runs in."""
    with job_context() as app:
        return {"pid": os.getpid(), "parent": os.getppid(), "app": id(app)}
