"""The calls CSV export beside a bare COPY of the same rows: rows/s and the serving process's peak RSS.

    .venv/bin/python -m bench.csv_export [--calls 100000] [--runs 3] [--database-url URL] [--keep] [--reuse]

The data set and the measurement are `bench.api_latency`'s (`build`, `measure_csv`): every call of the
largest org streamed through the app's test client by a fresh child process (through PostgreSQL's COPY
unless `VSYNC_CSV_COPY` is off), beside the hand-written `COPY (SELECT …) TO STDOUT (FORMAT csv)` of the
same rows. `--python` measures the Python export instead (`VSYNC_CSV_COPY=0` in the child).
Targets (issue 17): the export at >= 0.6x the bare COPY, peak RSS < 150 MB. Printed first: the peak RSS
of the same kind of child that only starts the app and answers `/api/v1/health`, what the export adds to.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

from bench.api_latency import APP_OVERRIDES, ORG, Api, build, measure_csv
from bench.common import bench_app, peak_rss, recreate_database
from vsync.extensions import db
from vsync.models import Organization
from vsync.tenancy import platform_bypass

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vsync_bench_csv"
TARGET_RATIO, TARGET_RSS_MB = 0.6, 150


def idle_rss_mb(database_url: str) -> float:
    """Peak RSS of a child that starts the app and answers one health request, in MB."""
    child = subprocess.run(
        [sys.executable, "-m", "bench.csv_export", "--idle-child", database_url],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(child.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--idle-child"]:
        bench_app(argv[1], **APP_OVERRIDES).test_client().get("/api/v1/health")
        print(peak_rss() / 2**20)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.csv_export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--python", action="store_true", help="the Python export (VSYNC_CSV_COPY=0)")
    args = parser.parse_args(argv)
    if args.python:
        os.environ["VSYNC_CSV_COPY"] = "0"
    app, key, written = build(args)
    passed = True
    try:
        api = Api(app, key)
        with app.app_context(), platform_bypass("bench: the measured org"):
            org = db.session.scalar(db.select(Organization).where(Organization.slug == ORG))
            db.session.expunge(org)
        print(f"Data: {written[0]:,} calls; export: {'Python' if args.python else 'COPY'}")
        print(f"The app alone (health request): peak RSS {idle_rss_mb(args.database_url):.0f} MB")
        for _ in range(args.runs):
            (row,) = measure_csv(api, app, args.database_url, key, org)
            note = row.note or ""
            found = re.search(r"peak RSS (\d+) MB.*\(([\d.]+)x\)", note)
            ok = found is not None and float(found[2]) >= TARGET_RATIO and int(found[1]) < TARGET_RSS_MB
            passed &= ok
            print(f"- {note} [{'ok' if ok else 'MISS'}: >= {TARGET_RATIO}x COPY, RSS < {TARGET_RSS_MB} MB]")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        if not args.keep:
            recreate_database(args.database_url, drop_only=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
