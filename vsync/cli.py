"""`flask --app wsgi …` commands. Each is a thin call of one domain function, run under an explicit
platform bypass (the operator at the shell is the platform), audited as actor `cli`, committed
once at the end. A bad argument prints one line and exits 2 with nothing written."""
from __future__ import annotations

import functools
import sys
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from sqlalchemy import select

from vsync.errors import DomainError
from vsync.extensions import db
from vsync.mightycall import CONTACT_CENTER_BASE_URL, STANDARD_BASE_URL
from vsync.models import SyncRun
from vsync.tenancy import platform_bypass
from vsync.timeutil import parse_utc

ACTOR = "cli"


def platform_command(group: AppGroup, name: str):
    """Register `name`, run it in a platform bypass and one transaction, map domain errors to exit 2."""
    def decorate(fn):
        @group.command(name)
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                with platform_bypass(f"cli {name}"):
                    result = fn(*args, **kwargs)
                    db.session.commit()
                return result
            except DomainError as exc:
                db.session.rollback()
                where = f" ({exc.field})" if exc.field else ""
                click.echo(f"error{where}: {exc.message}", err=True)
                sys.exit(2)
        return wrapper
    return decorate


def _at(value: str | None, field: str = "at"):
    return parse_utc(value, field=field) if value else None


def register(group: AppGroup) -> None:
    from vsync.auth.keys import create_api_key, revoke_api_key
    from vsync.services import orgs as org_service
    from vsync.services.integrations import (check_connection, create_integration, only_integration,
                                             rotate_encryption_keys)
    from vsync.services.sync import ALL_KINDS, start_syncs
    from vsync.services.numbers import add_number, assign_number, get_number, unassign_number

    @platform_command(group, "create-platform-admin")
    @click.argument("email")
    @click.option("--password", required=True, help="At least 10 characters.")
    def create_platform_admin(email, password):
        """Create a platform admin (or promote an existing user)."""
        user = org_service.create_platform_admin(email, password)
        click.echo(f"platform admin {user.email} (id {user.id})")

    @platform_command(group, "create-org")
    @click.argument("name")
    @click.option("--slug", required=True, help="Lowercase letters, digits, hyphens.")
    @click.option("--timezone", "timezone_", default="UTC", show_default=True, help="IANA time zone.")
    def create_org(name, slug, timezone_):
        """Create an organisation."""
        org = org_service.create_org(name, slug, timezone_)
        click.echo(f"organisation {org.slug} (id {org.id})")

    @platform_command(group, "add-member")
    @click.argument("org_slug")
    @click.argument("email")
    @click.option("--role", required=True, type=click.Choice(["org_admin", "manager", "agent"]))
    @click.option("--password", help="Required when the user is new.")
    @click.option("--extension", help="The member's MightyCall extension (agents see their own calls).")
    def add_member(org_slug, email, role, password, extension):
        """Add a user (created when new) to an organisation with a role."""
        org = org_service.get_org_by_slug(org_slug)
        membership = org_service.add_member(org, email, role, password=password, extension=extension)
        click.echo(f"{membership.user.email} is {role} of {org.slug}")

    @platform_command(group, "create-api-key")
    @click.argument("org_slug", required=False)
    @click.option("--platform", is_flag=True, help="A platform key (all organisations) instead of an org key.")
    @click.option("--name", required=True)
    @click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True)
    @click.option("--expires", help="ISO-8601 expiry, e.g. 2027-01-01T00:00:00Z.")
    def create_key(org_slug, platform, name, scope, expires):
        """Create an API key; the key is printed once, alone on the last line."""
        if bool(org_slug) == bool(platform):
            raise DomainError("Give either an ORG_SLUG or --platform.", field="org_slug")
        org_id = None if platform else org_service.get_org_by_slug(org_slug).id
        key, plaintext = create_api_key(org_id=org_id, name=name, scopes=scope,
                                        expires_at=_at(expires, "expires"))
        click.echo(f"API key id {key.id} ({key.prefix}, scopes {key.scopes}); store it now, it is not shown again:")
        click.echo(plaintext)

    @platform_command(group, "revoke-api-key")
    @click.argument("key_id", type=int)
    def revoke_key(key_id):
        """Revoke an API key by id."""
        key = revoke_api_key(key_id)
        click.echo(f"revoked {key.prefix}")

    @platform_command(group, "add-number")
    @click.argument("e164")
    @click.option("--label")
    def add_number_cmd(e164, label):
        """Add a phone number (E.164, e.g. +14155550123)."""
        number = add_number(e164, label=label)
        click.echo(f"number {number.e164} (id {number.id})")

    @platform_command(group, "assign-number")
    @click.argument("org_slug")
    @click.argument("e164")
    @click.option("--at", help="ISO-8601 start (default now).")
    def assign_number_cmd(org_slug, e164, at):
        """Assign a number to an organisation from a time on."""
        org, number = org_service.get_org_by_slug(org_slug), get_number(e164)
        assignment = assign_number(org, number, at=_at(at))
        click.echo(f"{number.e164} assigned to {org.slug} from {assignment.assigned_at.isoformat()}")

    @platform_command(group, "unassign-number")
    @click.argument("org_slug")
    @click.argument("e164")
    @click.option("--at", help="ISO-8601 end (default now).")
    def unassign_number_cmd(org_slug, e164, at):
        """End an organisation's assignment of a number."""
        org, number = org_service.get_org_by_slug(org_slug), get_number(e164)
        assignment = unassign_number(org, number, at=_at(at))
        click.echo(f"{number.e164} unassigned from {org.slug} at {assignment.unassigned_at.isoformat()}")

    @platform_command(group, "rotate-encryption-keys")
    def rotate_keys():
        """Re-encrypt stored credentials under the newest of VSYNC_ENCRYPTION_KEYS."""
        count = rotate_encryption_keys()
        click.echo(f"re-encrypted {count} integration(s)")

    @platform_command(group, "add-integration")
    @click.argument("org_slug")
    @click.option("--api-key", required=True, help="The MightyCall API key.")
    @click.option("--user-key", required=True, help="The MightyCall User key (or the user's extension).")
    @click.option("--base-url", default=STANDARD_BASE_URL, show_default=True,
                  help=f"{CONTACT_CENTER_BASE_URL} for contact-center accounts.")
    @click.option("--name", default="MightyCall", show_default=True)
    def add_integration(org_slug, api_key, user_key, base_url, name):
        """Connect an organisation to its MightyCall account (credentials are stored encrypted)."""
        integration, webhook_token = create_integration(
            org_service.get_org_by_slug(org_slug), api_key=api_key, user_key=user_key, base_url=base_url, name=name)
        click.echo(f"integration {integration.id} for {org_slug} at {integration.base_url}")
        click.echo("webhook token (authenticates MightyCall's deliveries; store it now, it is not shown again):")
        click.echo(webhook_token)

    @platform_command(group, "test-connection")
    @click.argument("org_slug")
    def test_connection(org_slug):
        """Sign in to the organisation's MightyCall account and read its numbers."""
        result = check_connection(only_integration(org_service.get_org_by_slug(org_slug)))
        if not result["ok"]:
            db.session.commit()
            raise DomainError(f"MightyCall connection failed: {result['error']}", field="integration")
        click.echo(f"ok: {result['numbers']} number(s): {', '.join(result['phone_numbers'])}")

    @platform_command(group, "sync")
    @click.argument("org_slug")
    @click.option("--kind", type=click.Choice([*ALL_KINDS, "all"]), default="all", show_default=True)
    @click.option("--since", help="ISO-8601 start of a backfill window (calls, sms).")
    @click.option("--until", help="ISO-8601 end of the window (default: a minute ago).")
    @click.option("--wait", is_flag=True, help="Show progress until every run has finished.")
    def sync(org_slug, kind, since, until, wait):
        """Start a sync (or join the one under way); incremental unless --since is given."""
        integration = only_integration(org_service.get_org_by_slug(org_slug))
        since_at, until_at = _at(since, "since"), _at(until, "until")
        kinds = ALL_KINDS if kind == "all" else (kind,)
        run_ids = []
        for run, joined in start_syncs(integration, kinds, since=since_at, until=until_at):
            run_ids.append(run.id)
            click.echo(f"{run.kind}: run {run.id} {'joined, already ' + run.status if joined else run.status}")
        if wait and not _wait_for_runs(run_ids):
            sys.exit(1)

    @platform_command(group, "sync-runs")
    @click.argument("org_slug")
    @click.option("--limit", default=20, show_default=True)
    def sync_runs(org_slug, limit):
        """The organisation's latest sync runs, newest first."""
        org = org_service.get_org_by_slug(org_slug)
        runs = db.session.scalars(select(SyncRun).where(SyncRun.org_id == org.id)
                                  .order_by(SyncRun.id.desc()).limit(limit)).all()
        click.echo(f"{'id':>6}  {'kind':<8} {'status':<10} {'trigger':<10} {'created':<20} "
                   f"{'fetched':>8} {'new':>8} {'updated':>8} {'retries':>7}  error")
        for run in runs:
            click.echo(f"{run.id:>6}  {run.kind:<8} {run.status:<10} {run.trigger:<10} "
                       f"{run.created_at:%Y-%m-%d %H:%M:%S}  {run.fetched:>8} {run.inserted:>8} {run.updated:>8} "
                       f"{run.retries:>7}  {run.error or ''}")

    @platform_command(group, "demo")
    @click.option("--simulator", "simulators", multiple=True,
                  help="Base URL of a running MightyCall simulator, one per demo organisation.")
    def demo(simulators):
        """Create (or top up) the demo data; safe to run any number of times."""
        from vsync.services.demo import load_demo
        if current_app.config["VSYNC_ENV"] == "production":
            raise DomainError("The demo data is not loaded into a production instance.")
        for line in load_demo(simulators=simulators):
            click.echo(line)

    @group.command("mightycall-simulator")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5055, show_default=True)
    @click.option("--seed", default=1, show_default=True, help="The same seed serves the same account.")
    @click.option("--calls-per-day", default=400.0, show_default=True)
    def mightycall_simulator(host, port, seed, calls_per_day):
        """Serve a simulated MightyCall account (demo data, switchable faults) for demos and tests."""
        from vsync.mightycall.simulator import run_simulator
        run_simulator(host=host, port=port, seed=seed, calls_per_day=calls_per_day)


def _wait_for_runs(run_ids: list[int]) -> bool:
    """Show each run's progress until it finishes; one summary line per run. True if all succeeded."""
    ok = True
    for run_id in run_ids:
        started = time.monotonic()
        run = db.session.get(SyncRun, run_id)
        with click.progressbar(length=100, label=f"{run.kind:<8}", show_pos=False) as bar:
            while True:
                db.session.expire_all()
                db.session.rollback()  # end the read transaction so the next poll sees new commits
                run = db.session.get(SyncRun, run_id)
                bar.update(int(run.progress * 100) - bar.pos)
                if run.status in ("succeeded", "failed"):
                    break
                time.sleep(0.5)
        ok &= run.status == "succeeded"
        click.echo(f"{run.kind}: {run.status} in {time.monotonic() - started:.1f}s: {run.fetched} fetched, "
                   f"{run.inserted} new, {run.updated} updated, {run.skipped} skipped, {run.retries} retries"
                   + (f"; {run.error}" if run.error else ""))
    return ok


def init_app(app: Flask) -> None:
    group = AppGroup("vsync", help="vsync administration.")
    register(group)
    for name, command in group.commands.items():
        app.cli.add_command(command, name)
