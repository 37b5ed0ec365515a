"""A MightyCall account in a box: a WSGI app answering like the v4 API, for demo, tests and benches.

One module per concern: ``data`` (the generated account and its ground truth), ``faults`` (the
misbehaviour that can be switched on), ``app`` (the WSGI app), ``server`` (running it) and
``webhooks`` (delivering webhooks as MightyCall does). Everything public is importable from here.

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

from .app import Simulator
from .data import SimulatedAccount
from .faults import FAULT_KINDS, ROUTES, Fault, Faults
from .server import SimulatorServer, run_simulator
from .webhooks import WebhookEmitter

__all__ = [
    "FAULT_KINDS",
    "ROUTES",
    "Fault",
    "Faults",
    "SimulatedAccount",
    "Simulator",
    "SimulatorServer",
    "WebhookEmitter",
    "run_simulator",
]
