"""`flask --app wsgi …` commands: each a thin call of one service.

A command runs as the platform (the operator at the shell), under an explicit platform bypass,
audited as actor `cli`, and commits once at the end. Every error is one line on stderr, and the
exit code says which kind it was:

- 1 (`EXIT_FAILED`): the operation ran and failed, e.g. a sync run failed;
- 2 (`EXIT_BAD_INPUT`): a bad argument or a refused request; nothing was written;
- 3 (`EXIT_MIGHTYCALL`): MightyCall (or the simulator) could not be reached or refused the credentials.
"""
from __future__ import annotations

import functools
import time
from datetime import datetime, timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from vsync.errors import DomainError, ValidationError
from vsync.extensions import db
from vsync.mightycall import CONTACT_CENTER_BASE_URL, STANDARD_BASE_URL, MightyCallError
from vsync.mightycall.simulator import run_simulator
from vsync.models import SyncRun
from vsync.models.keys import SCOPES
from vsync.models.operations import FAILED, SUCCEEDED
from vsync.models.orgs import ORG_ROLES
from vsync.services import audit, integrations, keys, numbers, orgs, runs
from vsync.services.demo import load_demo
from vsync.services.sync import ALL_KINDS, start_syncs
from vsync.tenancy import platform_bypass
from vsync.timeutil import parse_utc

ACTOR = "cli"
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_MIGHTYCALL = 1, 2, 3
FINISHED = (SUCCEEDED, FAILED)
POLL_SECONDS = 0.5


class CommandError(click.ClickException):
    """One line on stderr, `error (field): message`, and the exit code of its kind."""

    def __init__(self, message: str, exit_code: int, field: str | None = None):
        super().__init__(message)
        self.exit_code = exit_code
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
    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with audit.acting_as(ACTOR), platform_bypass(f"cli {name}"):
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
        return commands.command(name)(run)
    return decorate


def _at(value: str | None, field: str) -> datetime | None:
    return parse_utc(value, field=field) if value else None


def _integration_option(fn):
    return click.option("--integration", "integration_id", type=int,
                        help="The integration's id, when the organisation has several.")(fn)


@platform_command("create-platform-admin")
@click.argument("email")
@click.option("--password", required=True, help="At least 10 characters.")
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
@click.option("--password", help="Required when the user is new.")
@click.option("--extension", help="The member's MightyCall extension (agents see their own calls).")
def add_member(org_slug: str, email: str, role: str, password: str | None, extension: str | None) -> None:
    """Add a user (created when new) to an organisation with a role."""
    org = orgs.get_org_by_slug(org_slug)
    membership = orgs.add_member(org, email, role, password=password, extension=extension)
    click.echo(f"{membership.user.email} is {role} of {org.slug}")


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
    org_id = None if platform else orgs.get_org_by_slug(org_slug).id
    key, plaintext = keys.create_api_key(org_id=org_id, name=name, scopes=scope,
                                         expires_at=_at(expires, "expires"))
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
    click.echo(f"{number.e164} unassigned from {org.slug} at {assignment.unassigned_at.isoformat()}")


@platform_command("rotate-encryption-keys")
def rotate_encryption_keys() -> None:
    """Re-encrypt stored credentials under the newest of VSYNC_ENCRYPTION_KEYS."""
    count = integrations.rotate_encryption_keys()
    click.echo(f"re-encrypted {count} integration(s)")


@platform_command("add-integration")
@click.argument("org_slug")
@click.option("--api-key", required=True, help="The MightyCall API key.")
@click.option("--user-key", required=True, help="The MightyCall User key (or the user's extension).")
@click.option("--base-url", default=STANDARD_BASE_URL, show_default=True,
              help=f"{CONTACT_CENTER_BASE_URL} for contact-center accounts.")
@click.option("--name", default="MightyCall", show_default=True)
def add_integration(org_slug: str, api_key: str, user_key: str, base_url: str, name: str) -> None:
    """Connect an organisation to its MightyCall account (credentials are stored encrypted)."""
    integration, webhook_token = integrations.create_integration(
        orgs.get_org_by_slug(org_slug), api_key=api_key, user_key=user_key, base_url=base_url, name=name)
    click.echo(f"integration {integration.id} for {org_slug} at {integration.base_url}")
    click.echo("webhook token (authenticates MightyCall's deliveries; store it now, it is not shown again):")
    click.echo(webhook_token)


@platform_command("test-connection")
@click.argument("org_slug")
@_integration_option
def test_connection(org_slug: str, integration_id: int | None) -> None:
    """Sign in to the organisation's MightyCall account and read its numbers."""
    integration = integrations.integration_for(orgs.get_org_by_slug(org_slug), integration_id)
    result = integrations.check_connection(integration)
    if not result["ok"]:
        raise CommandError(f"MightyCall connection failed: {result['error']}", EXIT_MIGHTYCALL, "integration")
    click.echo(f"ok: {result['numbers']} number(s): {', '.join(result['phone_numbers'])}")


@platform_command("sync")
@click.argument("org_slug")
@_integration_option
@click.option("--kind", type=click.Choice([*ALL_KINDS, "all"]), default="all", show_default=True,
              help="`all` runs numbers, agents, calls, sms in that order.")
@click.option("--since", help="ISO-8601 start of a backfill window (calls and sms; with `all`, their window).")
@click.option("--until", help="ISO-8601 end of the window (default: a minute ago).")
@click.option("--wait", is_flag=True, help="Show progress until every run has finished.")
def sync(org_slug: str, integration_id: int | None, kind: str, since: str | None, until: str | None,
         wait: bool) -> None:
    """Start a sync (or join the one under way); incremental unless --since is given.

    A window given with one kind goes to that kind, so a numbers or agents sync refuses it.
    """
    integration = integrations.integration_for(orgs.get_org_by_slug(org_slug), integration_id)
    since_at, until_at = _at(since, "since"), _at(until, "until")
    run_ids = []
    for run, joined in start_syncs(integration, ALL_KINDS if kind == "all" else (kind,), since=since_at,
                                   until=until_at):
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
    click.echo(f"{run.kind}: {run.status}" + (f" in {_seconds(took)}" if took is not None else "")
               + f" ({_window(run)}): {run.fetched} fetched, {run.inserted} new, {run.updated} updated, "
               f"{run.skipped} skipped, {run.retries} retries" + (f"; {run.error}" if run.error else ""))
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
    click.echo(f"{'id':>6}  {'kind':<8} {'status':<10} {'trigger':<10} {'created':<16}  {'window':<35} "
               f"{'done':>5} {'took':>7} {'fetched':>8} {'new':>7} {'updated':>7} {'skipped':>7} {'retries':>7}  error")
    for run in listed:
        window = (f"{run.window_start:%Y-%m-%d %H:%M} → {run.window_end:%Y-%m-%d %H:%M}"
                  if run.window_start else "snapshot")
        took = runs.duration(run)
        took_text = _seconds(took) if took is not None else ""
        click.echo(f"{run.id:>6}  {run.kind:<8} {run.status:<10} {run.trigger:<10} {run.created_at:%Y-%m-%d %H:%M}  "
                   f"{window:<35} {run.progress:>5.0%} {took_text:>7} {run.fetched:>8} "
                   f"{run.inserted:>7} {run.updated:>7} {run.skipped:>7} {run.retries:>7}  {run.error or ''}")


@platform_command("demo")
@click.option("--simulator", "simulators", multiple=True,
              help="Base URL of a running MightyCall simulator, one per demo organisation.")
def demo(simulators: tuple[str, ...]) -> None:
    """Create (or top up) the demo data; safe to run any number of times."""
    for line in load_demo(simulators=simulators):
        click.echo(line)


@commands.command("mightycall-simulator", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5055, show_default=True)
@click.option("--seed", default=1, show_default=True, help="The same seed serves the same account.")
@click.option("--calls-per-day", default=400.0, show_default=True)
def mightycall_simulator(host: str, port: int, seed: int, calls_per_day: float) -> None:
    """Serve a simulated MightyCall account (demo data, switchable faults) for demos and tests."""
    run_simulator(host=host, port=port, seed=seed, calls_per_day=calls_per_day)


def init_app(app: Flask) -> None:
    for name, command in commands.commands.items():
        app.cli.add_command(command, name)
