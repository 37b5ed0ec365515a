"""What the tenant filter costs a simple statement: scoped against unscoped, per statement.

    .venv/bin/python -m bench.tenancy_overhead [--rounds 2000] [--database-url URL]

The two-org test world is built in its own database (dropped and recreated). Each statement is run
`--rounds` times under the platform bypass (the hook returns at once: the baseline) and in org A's
tenant scope (the statement is walked, narrowed and given loader options), and the median time per
execution is printed with the ratio. Both run the same SQL shape against the same rows, so the
difference is the hook's Python work plus the criterion's cost in the database.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy import func, select

from bench.common import recreate_database
from vsync import create_app
from vsync.extensions import db
from vsync.models import Call, Integration, Membership, Organization
from vsync.tenancy import platform_bypass, tenant

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vsync_bench_tenancy"


def statements(world) -> dict:
    call_id = next(iter(world.calls["a"].values()))
    return {
        "Call by id": select(Call).where(Call.id == call_id),
        "Integration by id": select(Integration).where(Integration.id == world.integrations["a"]),
        "count of memberships": select(func.count(Membership.id)),
        "Organization by slug": select(Organization).where(Organization.slug == "org-a"),
    }


def timed(run, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    recreate_database(args.database_url)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": args.database_url,
            "REDIS_URL": None,
            "SECRET_KEY": "bench",
            "VSYNC_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "VSYNC_PASSWORD_HASH": "pbkdf2:sha256:1",
            "VSYNC_LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        upgrade()
        from tests.world import build_world

        world = build_world()
        print(
            f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
            f"{app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}"
        )
        print(f"{'statement':<24} {'unscoped':>10} {'scoped':>10} {'ratio':>7}")
        for name, statement in statements(world).items():
            with platform_bypass("bench baseline"):
                unscoped = timed(lambda s=statement: db.session.execute(s).all(), args.rounds)
            with tenant(world.a):
                scoped = timed(lambda s=statement: db.session.execute(s).all(), args.rounds)
            print(f"{name:<24} {unscoped * 1e6:8.0f}µs {scoped * 1e6:8.0f}µs {scoped / unscoped:6.2f}×")


if __name__ == "__main__":
    main()
