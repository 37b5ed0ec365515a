"""RQ cron configuration: `rq cron vsync.jobs.cron --url "$REDIS_URL"` (one or more, anywhere)."""

from rq import cron

from vsync.jobs.billing import make_due_invoices
from vsync.jobs.notifications import evaluate_alerts, send_due_digests, sweep_outbox
from vsync.jobs.schedule import schedule_due_syncs
from vsync.jobs.webhooks import wake_stalled
from vsync.queue import QUEUE_NAME

cron.register(schedule_due_syncs, QUEUE_NAME, interval=60, job_timeout=300, name="vsync-schedule-due-syncs")
cron.register(wake_stalled, QUEUE_NAME, interval=60, job_timeout=300, name="vsync-wake-stalled-webhook-events")
cron.register(send_due_digests, QUEUE_NAME, interval=60, job_timeout=600, name="vsync-send-due-digests")
cron.register(sweep_outbox, QUEUE_NAME, interval=300, job_timeout=300, name="vsync-sweep-outbox")
cron.register(evaluate_alerts, QUEUE_NAME, interval=60, job_timeout=300, name="vsync-evaluate-alerts")
cron.register(make_due_invoices, QUEUE_NAME, interval=3600, job_timeout=600, name="vsync-make-due-invoices")
