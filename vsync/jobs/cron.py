"""RQ cron configuration: `rq cron vsync.jobs.cron --url "$REDIS_URL"` (one or more, anywhere)."""
from rq import cron

from vsync.jobs import QUEUE_NAME
from vsync.jobs.billing import make_due_invoices
from vsync.jobs.schedule import schedule_due_syncs
from vsync.jobs.webhooks import wake_stalled

cron.register(schedule_due_syncs, QUEUE_NAME, interval=60, job_timeout=300, name="vsync-schedule-due-syncs")
cron.register(wake_stalled, QUEUE_NAME, interval=60, job_timeout=300, name="vsync-wake-stalled-webhook-events")
cron.register(make_due_invoices, QUEUE_NAME, interval=3600, job_timeout=600, name="vsync-make-due-invoices")
