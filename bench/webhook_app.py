"""The app gunicorn serves in `bench.webhook_load`: the real app plus one trivial 200-OK route.

The trivial route goes through the same Flask request cycle (the same before-request hooks, public
and CSRF-exempt like the receiver), reads the body and answers at once: the baseline a receiver
that stores and queues each event is compared with.
"""

from flask import request

from vsync import create_app
from vsync.auth import CSRF_EXEMPT_ENDPOINTS, PUBLIC_ENDPOINTS

app = create_app()


@app.post("/_bench/ok", endpoint="bench_ok")
def bench_ok():
    request.get_data()
    return "OK"


PUBLIC_ENDPOINTS.add("bench_ok")
CSRF_EXEMPT_ENDPOINTS.add("bench_ok")
