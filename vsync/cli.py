"""`flask --app wsgi …` commands: each a thin call of one service.

A command runs as the platform (the operator at the shell), under an explicit platform bypass, or,
where the work belongs to one organisation (replaying its webhook events), inside that
organisation's tenant scope; either way audited as actor `cli`, and committed once at the end.
Every error is one line on stderr, and the exit code says which kind it was:

- 1 (`EXIT_FAILED`): the operation ran and failed, e.g. a sync run failed;
- 2 (`EXIT_BAD_INPUT`): a bad argument or a refused request; nothing was written;
- 3 (`EXIT_MIGHTYCALL`): MightyCall (or the simulator) could not be reached or refused the credentials.
"""

from __future__ import annotations

import functools
import threading
import time
from datetime import datetime, timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from vsync import queue
from vsync.errors import DomainError, ValidationError
from vsync.extensions import db
from vsync.mightycall import CONTACT_CENTER_BASE_URL, STANDARD_BASE_URL, MightyCallError
from vsync.mightycall.simulator import WebhookEmitter, run_simulator
from vsync.models import SyncRun
from vsync.models.keys import SCOPES
from vsync.models.operations import FAILED, SUCCEEDED
from vsync.models.orgs import ORG_ROLES
from vsync.services import audit, integrations, keys, members, numbers, orgs, rollups, runs, webhooks
from vsync.services.demo import demo_floor_targets, load_demo, sync_demo
from vsync.services.notifications import mail
from vsync.services.sync import ALL_KINDS, start_syncs
from vsync.tenancy import current_org_id, platform_bypass, tenant
from vsync.timeutil import parse_utc
from vsync.webhooks.demo_floor import DemoFloor

ACTOR = "cli"
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_MIGHTYCALL = 1, 2, 3
FINISHED = (SUCCEEDED, FAILED)
POLL_SECONDS = 0.5


class CommandError(click.ClickException):
    """One line on stderr, `error (field): message`, and the exit code of its kind."""

    def __init__(self, message: str, exit_code: int, field: str | None = None):
        super().__init__(message)
        self.exit_code = exit_code  # pyright: ignore[reportAttributeAccessIssue]  # click's stubs: a ClassVar
        self.field = field

    def show(self, file=None) -> None:
        where = f" ({self.field})" if self.field else ""
        click.echo(f"error{where}: {self.message}", err=True)


class Command(click.Command):
    """A command whose usage errors (a bad `--role`, a missing option) are one line too, exit 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            message = " ".join(exc.format_message().split())
            raise CommandError(f"{message} (see {ctx.command_path} --help)", EXIT_BAD_INPUT) from None


class Commands(AppGroup):
    """The registry of vsync's commands; `init_app` puts each at the top level (`flask create-org`)."""

    command_class = Command


commands = Commands("vsync", help="vsync administration.")


def platform_command(name: str):
    """Register `name` as a command run by the platform, in one transaction, audited as `cli`."""
    return _command(name, lambda kwargs: platform_bypass(f"cli {name}"))


def org_command(name: str):
    """Register `name` as a command acting inside the tenant scope of the org its `ORG_SLUG` names."""

    def scope(kwargs):
        with platform_bypass(f"cli {name}: find the organisation"):
            org_id = orgs.get_org_by_slug(kwargs["org_slug"]).id
        return tenant(org_id)

    return _command(name, scope)


def _command(name: str, scope, group: click.Group = commands):
    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with audit.acting_as(ACTOR):
                try:
                    with scope(kwargs):
                        return _in_transaction(fn, *args, **kwargs)
                except DomainError as exc:
                    raise CommandError(exc.message, EXIT_BAD_INPUT, exc.field) from None

        return group.command(name)(run)

    return decorate


def _in_transaction(fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
    except DomainError as exc:
        db.session.rollback()
        raise CommandError(exc.message, EXIT_BAD_INPUT, exc.field) from None
    except MightyCallError as exc:
        db.session.rollback()
        raise CommandError(exc.message, EXIT_MIGHTYCALL, "mightycall") from None
    except CommandError:
        db.session.commit()  # keep the record of what failed (a connection test, a run)
        raise
    db.session.commit()
    return result


def _at(value: str | None, field: str) -> datetime | None:
    return parse_utc(value, field=field) if value else None


def _integration(org_slug: str, integration_id: int | None):
    """The org's integration: its only one, or the one `--integration` names."""
    return integrations.integration_for(orgs.get_org_by_slug(org_slug), integration_id)


def _integration_option(fn):
    return click.option(
        "--integration", "integration_id", type=int, help="The integration's id, when the organisation has several."
    )(fn)


@platform_command("create-platform-admin")
@click.argument("email")
@click.option(
    "--password", required=True, help="At least VSYNC_PASSWORD_MIN_LENGTH (12) characters, not a commonly breached one."
)
def create_platform_admin(email: str, password: str) -> None:
    """Create a platform admin (or promote an existing user)."""
    user = orgs.create_platform_admin(email, password)
    click.echo(f"platform admin {user.email} (id {user.id})")


@platform_command("create-org")
@click.argument("name")
@click.option("--slug", required=True, help="Lowercase letters, digits, hyphens.")
@click.option("--timezone", "timezone_", default="UTC", show_default=True, help="IANA time zone.")
def create_org(name: str, slug: str, timezone_: str) -> None:
    """Create an organisation."""
    org = orgs.create_org(name, slug, timezone_)
    click.echo(f"organisation {org.slug} (id {org.id})")


@platform_command("add-member")
@click.argument("org_slug")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ORG_ROLES))
@click.option("--extension", help="The member's MightyCall extension (agents see their own calls).")
@click.option("--password", help="For someone new only: their first password, instead of a set-password link.")
def add_member(org_slug: str, email: str, role: str, extension: str | None, password: str | None) -> None:
    """Add a user (created when new) to an organisation with a role; prints their set-password link.

    The platform operator may give someone new their first password; an account that exists keeps
    its own, so `--password` for one is refused and nothing is written."""
    org = orgs.get_org_by_slug(org_slug)
    if password is not None:
        if orgs.find_user(email) is not None:
            raise ValidationError(
                f"{email.strip()} has an account already and keeps its password; add them without --password.",
                field="password",
            )
        orgs.create_user(email, password)
    added = members.add_member(org, email, role, extension=extension)
    click.echo(f"{added.membership.user.email} is {role} of {org.slug}")
    if added.emailed:
        click.echo("An invitation with their one-time set-password link is emailed to them.")
    elif password is None:
        click.echo(
            "If they have no password yet, they choose one at this path of vsync's address, within 72 "
            "hours, once (if they have one, they sign in with it):"
        )
        click.echo(f"/set-password/{added.password_token}")


@platform_command("create-api-key")
@click.argument("org_slug", required=False)
@click.option("--platform", is_flag=True, help="A platform key (all organisations) instead of an org key.")
@click.option("--name", required=True)
@click.option("--scope", type=click.Choice(SCOPES), default="read", show_default=True)
@click.option("--expires", help="ISO-8601 expiry, e.g. 2027-01-01T00:00:00Z.")
def create_api_key(org_slug: str | None, platform: bool, name: str, scope: str, expires: str | None) -> None:
    """Create an API key; the key is printed once, alone on the last line."""
    if bool(org_slug) == bool(platform):
        raise ValidationError("Give either an ORG_SLUG or --platform.", field="org_slug")
    org_id = orgs.get_org_by_slug(org_slug).id if org_slug else None  # exactly one of the two, checked above
    key, plaintext = keys.create_api_key(org_id=org_id, name=name, scopes=scope, expires_at=_at(expires, "expires"))
    click.echo(f"API key id {key.id} ({key.prefix}, scopes {key.scopes}); store it now, it is not shown again:")
    click.echo(plaintext)


@platform_command("revoke-api-key")
@click.argument("key_id", type=int)
def revoke_api_key(key_id: int) -> None:
    """Revoke an API key by id."""
    key = keys.revoke_api_key(key_id)
    click.echo(f"revoked {key.prefix}")


@platform_command("add-number")
@click.argument("e164")
@click.option("--label")
def add_number(e164: str, label: str | None) -> None:
    """Add a phone number (E.164, e.g. +14155550123)."""
    number = numbers.add_number(e164, label=label)
    click.echo(f"number {number.e164} (id {number.id})")


@platform_command("assign-number")
@click.argument("org_slug")
@click.argument("e164")
@click.option("--at", help="ISO-8601 start (default now).")
def assign_number(org_slug: str, e164: str, at: str | None) -> None:
    """Assign a number to an organisation from a time on."""
    org, number = orgs.get_org_by_slug(org_slug), numbers.get_number(e164)
    assignment = numbers.assign_number(org, number, at=_at(at, "at"))
    click.echo(f"{number.e164} assigned to {org.slug} from {assignment.assigned_at.isoformat()}")


@platform_command("unassign-number")
@click.argument("org_slug")
@click.argument("e164")
@click.option("--at", help="ISO-8601 end (default now).")
def unassign_number(org_slug: str, e164: str, at: str | None) -> None:
    """End an organisation's assignment of a number."""
    org, number = orgs.get_org_by_slug(org_slug), numbers.get_number(e164)
    assignment = numbers.unassign_number(org, number, at=_at(at, "at"))
    assert assignment.unassigned_at is not None, "unassign_number ends the period it returns"
    click.echo(f"{number.e164} unassigned from {org.slug} at {assignment.unassigned_at.isoformat()}")


@platform_command("rotate-encryption-keys")
def rotate_encryption_keys() -> None:
    """Re-encrypt stored credentials under the newest of VSYNC_ENCRYPTION_KEYS."""
    count = integrations.rotate_encryption_keys()
    click.echo(f"re-encrypted {count} integration(s)")


@org_command("send-test-email")
@click.argument("org_slug")
@click.argument("email")
def send_test_email(org_slug: str, email: str) -> None:
    """Send a test message in an organisation's name, to check the email settings (see README, Email)."""
    row = mail.send_test_email(orgs.get_org_by_slug(org_slug), email)
    folder = mail.outbox_folder()
    click.echo(
        f"test message {row.id} to {row.to_address} "
        + (f"written under {folder}" if folder else "queued for the SMTP server")
    )


@platform_command("add-integration")
@click.argument("org_slug")
@click.option("--api-key", required=True, help="The MightyCall API key.")
@click.option("--user-key", required=True, help="The MightyCall User key (or the user's extension).")
@click.option(
    "--base-url",
    default=STANDARD_BASE_URL,
    show_default=True,
    help=f"{CONTACT_CENTER_BASE_URL} for contact-center accounts.",
)
@click.option("--name", default="MightyCall", show_default=True)
def add_integration(org_slug: str, api_key: str, user_key: str, base_url: str, name: str) -> None:
    """Connect an organisation to its MightyCall account (credentials are stored encrypted)."""
    integration, webhook_token = integrations.create_integration(
        orgs.get_org_by_slug(org_slug), api_key=api_key, user_key=user_key, base_url=base_url, name=name
    )
    click.echo(f"integration {integration.id} for {org_slug} at {integration.base_url}")
    click.echo("webhook token (authenticates MightyCall's deliveries; store it now, it is not shown again):")
    click.echo(webhook_token)


@platform_command("test-connection")
@click.argument("org_slug")
@_integration_option
def test_connection(org_slug: str, integration_id: int | None) -> None:
    """Sign in to the organisation's MightyCall account and read its numbers."""
    integration = _integration(org_slug, integration_id)
    result = integrations.check_connection(integration)
    if not result["ok"]:
        raise CommandError(f"MightyCall connection failed: {result['error']}", EXIT_MIGHTYCALL, "integration")
    click.echo(f"ok: {result['numbers']} number(s): {', '.join(result['phone_numbers'])}")


@platform_command("sync")
@click.argument("org_slug")
@_integration_option
@click.option(
    "--kind",
    type=click.Choice([*ALL_KINDS, "all"]),
    default="all",
    show_default=True,
    help="`all` runs numbers, agents, calls, sms in that order.",
)
@click.option("--since", help="ISO-8601 start of a backfill window (calls and sms; with `all`, their window).")
@click.option("--until", help="ISO-8601 end of the window (default: a minute ago).")
@click.option("--wait", is_flag=True, help="Show progress until every run has finished.")
def sync(
    org_slug: str, integration_id: int | None, kind: str, since: str | None, until: str | None, wait: bool
) -> None:
    """Start a sync (or join the one under way); incremental unless --since is given.

    A window given with one kind goes to that kind, so a numbers or agents sync refuses it.
    """
    integration = _integration(org_slug, integration_id)
    since_at, until_at = _at(since, "since"), _at(until, "until")
    run_ids = []
    for run, joined in start_syncs(
        integration, ALL_KINDS if kind == "all" else (kind,), since=since_at, until=until_at
    ):
        run_ids.append(run.id)
        click.echo(f"{run.kind}: run {run.id} {'joined, already ' + run.status if joined else run.status}")
    if wait:
        db.session.commit()  # what this command changed (stale runs it reaped) is kept before watching
        failed = sum(not _wait_for(run_id) for run_id in run_ids)
        if failed:
            raise CommandError(f"{failed} of {len(run_ids)} sync run(s) failed.", EXIT_FAILED)


def _wait_for(run_id: int) -> bool:
    """Show the run's progress until it finishes, then one summary line. True if it succeeded."""
    run = runs.latest_state(run_id)
    if run.status not in FINISHED:
        with click.progressbar(length=100, label=f"{run.kind:<8}", show_pos=False) as bar:
            while run.status not in FINISHED:
                time.sleep(POLL_SECONDS)
                run = runs.latest_state(run_id)
                bar.update(int(run.progress * 100) - bar.pos)
    took = runs.duration(run)
    click.echo(
        f"{run.kind}: {run.status}"
        + (f" in {_seconds(took)}" if took is not None else "")
        + f" ({_window(run)}): {run.fetched} fetched, {run.inserted} new, {run.updated} updated, "
        f"{run.skipped} skipped, {run.retries} retries" + (f"; {run.error}" if run.error else "")
    )
    return run.status == SUCCEEDED


def _seconds(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _window(run: SyncRun) -> str:
    if run.window_start is None:
        return "the account as it is now"
    return f"{run.window_start:%Y-%m-%d %H:%M} to {run.window_end:%Y-%m-%d %H:%M} UTC"


@platform_command("sync-runs")
@click.argument("org_slug")
@click.option("--limit", default=20, show_default=True, help=f"1 to {runs.MAX_LISTED_RUNS}.")
def sync_runs(org_slug: str, limit: int) -> None:
    """The organisation's latest sync runs, newest first (times in UTC)."""
    listed = runs.recent_runs(orgs.get_org_by_slug(org_slug), limit=limit)
    click.echo(
        f"{'id':>6}  {'kind':<8} {'status':<10} {'trigger':<10} {'created':<16}  {'window':<35} "
        f"{'done':>5} {'took':>7} {'fetched':>8} {'new':>7} {'updated':>7} {'skipped':>7} {'retries':>7}  error"
    )
    for run in listed:
        window = (
            f"{run.window_start:%Y-%m-%d %H:%M} → {run.window_end:%Y-%m-%d %H:%M}" if run.window_start else "snapshot"
        )
        took = runs.duration(run)
        took_text = _seconds(took) if took is not None else ""
        click.echo(
            f"{run.id:>6}  {run.kind:<8} {run.status:<10} {run.trigger:<10} {run.created_at:%Y-%m-%d %H:%M}  "
            f"{window:<35} {run.progress:>5.0%} {took_text:>7} {run.fetched:>8} "
            f"{run.inserted:>7} {run.updated:>7} {run.skipped:>7} {run.retries:>7}  {run.error or ''}"
        )


@platform_command("rotate-webhook-token")
@click.argument("org_slug")
@_integration_option
def rotate_webhook_token(org_slug: str, integration_id: int | None) -> None:
    """A new webhook token for the organisation's integration; the old one is refused at once."""
    integration = _integration(org_slug, integration_id)
    token = webhooks.rotate_webhook_token(integration)
    click.echo(
        f"integration {integration.id}: the previous webhook token is refused from now on; "
        "update the URL in MightyCall. The new token (store it now, it is not shown again):"
    )
    click.echo(token)


@platform_command("add-webhook-signing-secret")
@click.argument("org_slug")
@_integration_option
def add_webhook_signing_secret(org_slug: str, integration_id: int | None) -> None:
    """Require signed deliveries with a new secret, active beside the previous one (for a relay)."""
    integration = _integration(org_slug, integration_id)
    secret = webhooks.add_signing_secret(integration)
    click.echo(
        f"integration {integration.id}: deliveries must now carry {webhooks.SIGNATURE_HEADER}. "
        "The new signing secret (store it now, it is not shown again):"
    )
    click.echo(secret)


@platform_command("retire-webhook-signing-secret")
@click.argument("org_slug")
@_integration_option
def retire_webhook_signing_secret(org_slug: str, integration_id: int | None) -> None:
    """Keep only the newest signing secret, once the relay signs with it."""
    integration = _integration(org_slug, integration_id)
    click.echo(
        f"integration {integration.id}: {webhooks.retire_previous_signing_secret(integration)} "
        "previous signing secret(s) retired"
    )


@platform_command("stop-webhook-signatures")
@click.argument("org_slug")
@_integration_option
def stop_webhook_signatures(org_slug: str, integration_id: int | None) -> None:
    """Drop every signing secret: deliveries are authenticated by token and ApiKey only."""
    integration = _integration(org_slug, integration_id)
    webhooks.stop_requiring_signatures(integration)
    click.echo(f"integration {integration.id}: signatures are no longer required")


@org_command("replay-webhook-events")
@click.argument("org_slug")
@click.option("--failed", is_flag=True, help="Only events not applied yet: failed, unmatched, or never processed.")
@click.option("--since", help="ISO-8601: only events received from then on.")
def replay_webhook_events(org_slug: str, failed: bool, since: str | None) -> None:
    """Process the organisation's stored webhook events again (safe to repeat)."""
    org_id = current_org_id()
    assert org_id is not None, "an org_command runs in its organisation's tenant scope"
    count = webhooks.replay_events(org_id, failed_only=failed, since=_at(since, "since"))
    click.echo(f"{org_slug}: {count} webhook event(s) queued for processing")


@platform_command("demo")
@click.option(
    "--simulator",
    "simulators",
    multiple=True,
    help="Base URL of a running MightyCall simulator, one per demo organisation.",
)
def demo(simulators: tuple[str, ...]) -> None:
    """Create (or top up) the demo data; safe to run any number of times."""
    for line in load_demo(simulators=simulators):
        click.echo(line)


@platform_command("demo-sync")
def demo_sync() -> None:
    """Sync the demo organisations from their simulators, incrementally (`make run` repeats it)."""
    for line in sync_demo():
        click.echo(line)


@commands.command("send-due-notifications")
def send_due_notifications() -> None:
    """Decide and send what is due now: digests, alerts, the outbox sweep (what `rq cron` does every few
    minutes in production; `make run` runs this every minute). Inline without Redis, queued with it."""
    for job in ("send_due_digests", "evaluate_alerts", "sweep_outbox"):
        queue.enqueue(f"vsync.jobs.notifications.{job}")
    folder = mail.outbox_folder()
    click.echo(f"due notifications {'sent' if folder is None else 'written to ' + folder}")


@commands.command("demo-floor")
@click.option("--url", "server_url", required=True, help="Where vsync is serving, e.g. http://127.0.0.1:5000.")
@click.option("--every", default=4.0, show_default=True, help="Mean seconds between new calls, per organisation.")
def demo_floor(server_url: str, every: float) -> None:
    """Keep the demo organisations' live floors busy: simulated calls played against the receiver."""
    with audit.acting_as(ACTOR), platform_bypass("cli demo-floor"):
        targets = _in_transaction(demo_floor_targets, server_url)
    if not targets:
        raise CommandError(
            "No demo organisation has a demo integration with numbers; run `demo` first.", EXIT_BAD_INPUT
        )
    stop = threading.Event()
    floors = [
        DemoFloor(WebhookEmitter(target.url, target.api_key, timeout=5), target.numbers, every=every)
        for target in targets
    ]
    threads = [threading.Thread(target=floor.run, args=(stop,), daemon=True) for floor in floors]
    for thread in threads:
        thread.start()
    click.echo(f"demo floor: a call every {every:g} s on average for {', '.join(t.org_slug for t in targets)}")
    try:
        stop.wait()
    except KeyboardInterrupt:
        stop.set()


@commands.command("mightycall-simulator", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5055, show_default=True)
@click.option("--seed", default=1, show_default=True, help="The same seed serves the same account.")
@click.option("--calls-per-day", default=400.0, show_default=True)
def mightycall_simulator(host: str, port: int, seed: int, calls_per_day: float) -> None:
    """Serve a simulated MightyCall account (demo data, switchable faults) for demos and tests."""
    run_simulator(host=host, port=port, seed=seed, calls_per_day=calls_per_day)


@commands.group("rollups", cls=Commands)
def rollups_group() -> None:
    """The KPI engine's rollups by hour and by day: rebuild them from rows, check them."""


def _rollup_window(start: str, end: str) -> tuple[datetime, datetime]:
    first, last = parse_utc(start, field="from"), parse_utc(end, field="to")
    if first >= last:
        raise ValidationError("`--from` must come before `--to`.", field="from")
    return first, last


def _org_id(org_slug: str | None) -> int | None:
    return orgs.get_org_by_slug(org_slug).id if org_slug else None


@_command("rebuild", lambda kwargs: platform_bypass("cli rollups rebuild"), group=rollups_group)
@click.option("--from", "start", required=True, help="ISO-8601 UTC start, e.g. 2026-01-01T00:00:00Z.")
@click.option("--to", "end", required=True, help="ISO-8601 UTC end (excluded).")
@click.option("--org", "org_slug", help="Only the numbers this organisation has (or had).")
def rollups_rebuild(start: str, end: str, org_slug: str | None) -> None:
    """Recompute the rollups (hours and days) of every UTC day touching the window from rows (after a
    bulk load, a threshold change or a failed check); safe to run twice, and beside the sync."""
    result = rollups.rebuild(*_rollup_window(start, end), org_id=_org_id(org_slug))
    click.echo(f"rebuilt {result.hours} number-hours: {result.rows} rollup rows")


@_command("check", lambda kwargs: platform_bypass("cli rollups check"), group=rollups_group)
@click.option("--from", "start", required=True, help="ISO-8601 UTC start, e.g. 2026-01-01T00:00:00Z.")
@click.option("--to", "end", required=True, help="ISO-8601 UTC end (excluded).")
@click.option("--org", "org_slug", help="Only the numbers this organisation has (or had).")
def rollups_check(start: str, end: str, org_slug: str | None) -> None:
    """Compare the stored rollups (hours and days) of the UTC days touching the window with the rows;
    exit 1 when any differ."""
    result = rollups.check(*_rollup_window(start, end), org_id=_org_id(org_slug))
    click.echo(
        f"checked {result.hours} number-hours and their days: {len(result.differing)} differ, "
        f"{result.stale} stale (read from rows)"
    )
    for number_id, hour in result.differing[:20]:
        click.echo(f"  number {number_id}, the hour or day from {hour.isoformat()}")
    if not result.consistent:
        raise CommandError(
            f"{len(result.differing)} number-hours or days differ from their rows; run `flask rollups rebuild`.",
            EXIT_FAILED,
        )


def init_app(app: Flask) -> None:
    for name, command in commands.commands.items():
        app.cli.add_command(command, name)
