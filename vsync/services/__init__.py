"""Domain operations, one function each, shared by the CLI, the API, the admin and the jobs.

Services use models, `query`, `metrics` and the MightyCall client, never jobs or edges: work that
runs in the background is queued by the job's dotted name (`vsync.queue`). Syncing lives in
`vsync.services.sync` (plan, engine, ingest), webhooks in `vsync.services.webhooks` (store,
credentials, process, replay).

They expect the caller (an edge) to have authorised the principal and entered the right tenant
scope or platform bypass; they validate input, change state, write the audit log and flush.

Commit policy: **the caller commits**, once, so a change and its audit row land together, and an
operation refused half-way leaves nothing behind (the caller rolls back). The exceptions, each
because something outside the caller's transaction must see the row at once:

- `vsync.services.sync.start_sync` commits the run before queueing its job, because the worker
  (or, without Redis, the inline job in a session of its own) must find it;
  `vsync.services.webhooks.replay_events` commits the events it resets before waking their drain,
  for the same reason;
- the sync engine and the webhook drain, which jobs call, own their transactions: they commit page
  by page and event by event, so a worker killed midway leaves whole pages and events behind;
- `vsync.services.integrations.DatabaseTokenStore` writes MightyCall access tokens in short
  transactions of their own, so every worker sees a new token and a rolled-back sync keeps it;
- `vsync.services.notifications.mail` commits a message's claim before handing it to SMTP, and its
  outcome after, so no second worker sends it; a decided message itself waits for the caller's commit;
- `vsync.auth.keys.verify_api_key` and `vsync.auth.principals.load_user` (authentication, not
  services) commit `last_used_at` and `last_seen_at` while they authenticate a request, before any
  view owns the transaction.
"""
