#!/usr/bin/env python3
"""Benchmark the incident evidence: time to evidence, its overhead on a workload, each playbook's runtime.

On a throwaway server (or ``--conninfo``) with the VictorySync seed (``--scale``, default 1):

* **time to evidence** — :func:`pgrunbooks.evidence.capture` with its defaults (500 samples over
  10 s; also ``--short`` seconds with 500 samples), wall time from the call to the Evidence, and
  the samples taken. Goal: under 30 s with at least 500 samples.
* **overhead** — the app workload (``seed/workload.py``: pgbench with the app's scripts,
  ``--clients``) for ``--duration`` seconds alone, then again with a capture (at the default rate,
  50 samples a second) running through it, alternated ``--pairs`` times after a warm-up;
  the median transactions per second of both and the difference.
* **playbooks** — ``pgrunbooks run incidents/high_load`` and ``incidents/disk_space`` (the real CLI,
  a kernel each, default parameters: a 5 s window) on the quiet database, and with their planted
  fault (a lock queue; a WAL-retaining slot): wall time and the first finding.

Prints one line per figure. ``--repeat`` runs each capture that many times (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _server import server  # first: it puts lib/ on the path in a bare checkout

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

from pgrunbooks.db import connect
from pgrunbooks.evidence import capture
from pgrunbooks.seed import incidents, seed, workload

DATABASE = "victorysync"  # the sandbox's default database: `local` in the playbooks' runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/evidence.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-bin", help="PostgreSQL bin directory for the throwaway server (default: the wheel)")
    p.add_argument("--scale", type=float, default=1.0, help="seed scale (default 1)")
    p.add_argument("--short", type=float, default=5.0, help="the short window also measured, seconds (default 5)")
    p.add_argument("--duration", type=float, default=12.0, help="workload seconds per tps measurement (default 12)")
    p.add_argument("--clients", type=int, default=2, help="workload clients (default 2)")
    p.add_argument("--pairs", type=int, default=2, help="alone/with-capture workload pairs (median; default 2)")
    p.add_argument("--repeat", type=int, default=1, help="captures per window (median reported; default 1)")
    p.add_argument("--no-playbooks", action="store_true", help="skip the playbook runs (a kernel each)")
    return p.parse_args(argv)


def time_to_evidence(conninfo: str, seconds: float, repeat: int) -> tuple[float, int]:
    times, samples = [], []
    for _ in range(repeat):
        with connect(conninfo, runbook="bench/evidence") as s:
            started = time.monotonic()
            ev = capture(s, seconds=seconds, samples=500, progress=False)
            times.append(time.monotonic() - started)
            samples.append(ev.sample_count)
    return statistics.median(times), min(samples)


def overhead(conninfo: str, duration: float, clients: int, pairs: int) -> tuple[float, float]:
    """Median tps without and with a capture running; a warm-up run first, then the two alternated
    (caches and autovacuum favour whichever runs later)."""
    workload.run(conninfo, duration=3, clients=clients)
    alone, with_capture = [], []
    for _ in range(pairs):
        alone.append(workload.run(conninfo, duration=duration, clients=clients).tps)
        with workload.running(conninfo, duration=duration, clients=clients) as handle:
            worker = threading.Thread(target=_capture_quietly, args=(conninfo, duration - 2))
            worker.start()
            with_capture.append(handle.wait().tps)
            worker.join()
    return statistics.median(alone), statistics.median(with_capture)


def _capture_quietly(conninfo: str, seconds: float):
    with connect(conninfo, runbook="bench/evidence") as s:
        # the default rate: 500 samples per 10 s
        return capture(s, seconds=max(seconds, 1), samples=int(max(seconds, 1) * 50), progress=False)


def playbook(home: Path, name: str) -> tuple[float, str]:
    out = Path(tempfile.mkdtemp(prefix="pgrb-bench-ev-"))
    env = dict(os.environ, PGRUNBOOKS_HOME=str(home), PLOOMBER_STATS_ENABLED="false")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pgrunbooks", "run", name, "--out", str(out), "--no-history",
                           "--fail-on", "none"], env=env, cwd=out, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    found = sorted(out.glob("*/*.findings.json"))
    if proc.returncode != 0 or not found:
        return seconds, f"FAILED ({proc.returncode}): {proc.stdout[-300:]}{proc.stderr[-300:]}"
    first = (json.loads(found[0].read_text())["findings"] or [{}])[0]
    return seconds, f"{first.get('check_id')} {first.get('object')}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with server(None, args.pg_bin, prefix="pgrb-bench-ev-") as (admin, where):
        home = Path(pg_conninfo.conninfo_to_dict(admin)["host"]).parent
        with psycopg.connect(admin, dbname="postgres", autocommit=True) as c:
            c.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(DATABASE)))
            c.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
        db_admin = pg_conninfo.make_conninfo(admin, dbname=DATABASE)
        with psycopg.connect(db_admin) as c:
            seed(c, scale=args.scale, faults="none")
        app = pg_conninfo.make_conninfo(admin, dbname=DATABASE, user="postgres")
        print(f"server: {where}; seed scale {args.scale:g}")
        for seconds in (10.0, args.short):
            t, n = time_to_evidence(app, seconds, args.repeat)
            print(f"time to evidence ({seconds:g} s window): {t:.2f} s, {n} samples (goal < 30 s with >= 500)")
        alone, with_capture = overhead(app, args.duration, args.clients, args.pairs)
        print(f"workload ({args.clients} clients, {args.duration:g} s, median of {args.pairs}): {alone:.0f} tps alone, "
              f"{with_capture:.0f} tps with a capture running ({(with_capture - alone) / alone:+.1%})")
        if not args.no_playbooks:
            for name, fault in (("incidents/high_load", incidents.lock_queue),
                                ("incidents/disk_space", incidents.wal_retaining_slot)):
                t, first = playbook(home, name)
                print(f"{name} (quiet): {t:.1f} s, first finding {first}")
                with fault(db_admin):
                    t, first = playbook(home, name)
                print(f"{name} ({fault.__name__} planted): {t:.1f} s, first finding {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
