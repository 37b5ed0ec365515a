"""MightyCall webhooks, from delivery to calls:

- `store`: authenticate a delivery and store its events (the receiver, `vsync.webhooks`);
- `credentials`: the integration's webhook token and signing secrets;
- `process`: apply stored events to calls, in drains that `wake` queues by name (the job
  `vsync.jobs.webhooks.process_received_events`) or runs inline without Redis;
- `replay`: queue stored events of an org for processing again.

The edges import what they need from here; only jobs import `process` for its drain.
"""

from vsync.services.webhooks.credentials import (
    add_signing_secret,
    new_token,
    retire_previous_signing_secret,
    rotate_webhook_token,
    stop_requiring_signatures,
)
from vsync.services.webhooks.process import wake
from vsync.services.webhooks.replay import replay_events
from vsync.services.webhooks.store import (
    SIGNATURE_HEADER,
    WebhookEndpoint,
    api_key_matches,
    authenticate_token,
    receiving,
    sign,
    signature_problem,
    store_events,
    store_rejected,
)

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookEndpoint",
    "add_signing_secret",
    "api_key_matches",
    "authenticate_token",
    "new_token",
    "receiving",
    "replay_events",
    "retire_previous_signing_secret",
    "rotate_webhook_token",
    "sign",
    "signature_problem",
    "stop_requiring_signatures",
    "store_events",
    "store_rejected",
    "wake",
]
