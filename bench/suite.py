"""Suite overhead: N runbooks through the engine against N bare papermill runs.

The floor is what papermill alone costs: N executions of an empty notebook (a kernel start
and shutdown each). The suite is N executions of the fixture runbook
``tests/notebooks/fixtures/findings.ipynb`` through ``pgrunbooks.engine`` — parameter
validation, target resolution, a database connection, findings recorded twice, a plotly
chart, the redacted notebook, the self-contained HTML report (plotly.js inline), the
findings JSON and the run index. Both are timed with 1 and 2 parallel jobs.

The engine starts each runbook's kernel while the previous runbook runs (pgrunbooks.engine.kernels);
bare papermill, and so the floor, starts it when the notebook starts. With one job that hides
the kernel start behind the work of the runbook before; with as many jobs as cores the machine
is CPU-bound and what is left over the floor is the runbook's own CPU (imports, chart, queries).

    python bench/suite.py                 # the local sandbox (started if needed), N=6
    python bench/suite.py -n 10 --target env:BENCH_DSN

Prints the overhead ratio suite/floor at equal parallelism (target: <= 1.3) and against
papermill's own way of running N notebooks (one after the other), the engine's own share (the
same runbook through bare papermill, no validation, findings or reports), and the speed-up of
2 jobs over 1.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT / "tests" / "notebooks"
BENCH_DB = "bench_suite"


def _sandbox_target() -> str:
    """Start the local sandbox if needed and give the bench its own small database."""
    import psycopg

    from pgrunbooks.sandbox import ADMIN_USER, Sandbox, create_database

    status = Sandbox().start()
    admin = status.conninfo("postgres", ADMIN_USER)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_catalog.pg_database where datname = %s", (BENCH_DB,)).fetchone()
        conn.execute(
            "do $$ begin if not exists (select from pg_catalog.pg_roles where rolname = 'postgres') then "
            "create role postgres login nosuperuser createrole createdb bypassrls; end if; end $$"
        )
        conn.execute("grant pg_monitor to postgres")
    if not exists:
        create_database(admin, BENCH_DB)
    return f"local:{BENCH_DB}"


def _floor(n: int, jobs: int) -> float:
    """N papermill runs of the empty notebook (no output written), ``jobs`` at a time."""
    import papermill

    empty = str(FIXTURES / "fixtures" / "empty.ipynb")

    def one(_: int) -> None:
        # Same kernel shutdown as the engine: a graceful one waits ~1 s per kernel for nothing,
        # and a floor that pays it would flatter the engine.
        papermill.execute_notebook(empty, None, kernel_name="python3", progress_bar=False, log_output=False,
                                   cwd=None, request_save_on_cell_execute=False, shutdown_kernel="immediate")

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - started


def _bare(n: int, jobs: int, target: str) -> float:
    """N papermill runs of the fixture runbook itself, no engine: what its cells cost on top of the floor."""
    import papermill

    fixture = str(FIXTURES / "fixtures" / "findings.ipynb")
    parameters = {"severities": ["warning", "ok"], "limit": 20, "target": target}

    def one(_: int) -> None:
        papermill.execute_notebook(fixture, None, parameters=parameters, kernel_name="python3", progress_bar=False,
                                   log_output=False, cwd=None, request_save_on_cell_execute=False,
                                   shutdown_kernel="immediate")

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - started


def _suite(n: int, jobs: int, target: str, out: Path) -> tuple[float, int]:
    """N runbooks through the engine; returns (seconds, failed runbooks)."""
    from pgrunbooks.engine.artifacts import new_run_dir
    from pgrunbooks.engine.catalog import find_runbook
    from pgrunbooks.engine.prepare import prepare, unique_stems
    from pgrunbooks.engine.results import Options
    from pgrunbooks.engine.run import run_all

    runbook = find_runbook("fixtures/findings")
    prepared = [prepare(runbook, {"severities": ["warning", "ok"], "limit": 20}, target=target) for _ in range(n)]
    unique_stems(prepared)
    run_dir = new_run_dir(out)
    started = time.perf_counter()
    results = run_all(prepared, run_dir, Options(), jobs=jobs, title="bench")
    seconds = time.perf_counter() - started
    return seconds, sum(r.status != "ok" for r in results)


def _cli(n: int, jobs: int, target: str, out: Path) -> float:
    """The same suite through the command line (adds interpreter start and imports once)."""
    suite = out / "bench-suite.yaml"
    suite.write_text("runbooks:\n" + "".join("  - fixtures/findings\n" for _ in range(n)))
    env = dict(os.environ)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pgrunbooks", "suite", str(suite), "--jobs", str(jobs), "--target", target,
         "--out", str(out / "cli"), "--fail-on", "none"],
        env=env, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=6, help="runbooks per suite (default 6)")
    parser.add_argument("--target", help="where the fixture runbook connects (default: the local sandbox)")
    parser.add_argument("--repeat", type=int, default=2, help="measurements per figure; the median is kept (default 2)")
    args = parser.parse_args(argv)

    os.environ["PGRUNBOOKS_RUNBOOKS"] = str(FIXTURES)
    os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")
    import logging

    logging.getLogger("papermill").setLevel(logging.CRITICAL)
    target = args.target or _sandbox_target()
    out = Path(tempfile.mkdtemp(prefix="pgrb-bench-"))
    try:
        print(f"target {target}; N = {args.n} runbooks; {os.cpu_count()} cores; median of {args.repeat}", flush=True)
        _floor(1, 1)  # warm-up: kernel spec lookup, byte-compiled imports
        _suite(1, 1, target, out)
        rows = []
        for jobs in (1, 2):
            # Interleaved, repeat after repeat, so background load hits the three alike.
            floors, bares, timings = [], [], []
            for _ in range(args.repeat):
                floors.append(_floor(args.n, jobs))
                bares.append(_bare(args.n, jobs, target))
                timings.append(_suite(args.n, jobs, target, out))
            floor, bare = statistics.median(floors), statistics.median(bares)
            suite = statistics.median(t for t, _ in timings)
            failed = max(f for _, f in timings)
            rows.append((jobs, floor, suite, failed))
            print(
                f"jobs {jobs}: floor {floor:6.2f}s ({floor / args.n:.2f}s/notebook)   "
                f"bare papermill {bare:6.2f}s ({bare / args.n:.2f}s)   "
                f"suite {suite:6.2f}s ({suite / args.n:.2f}s/runbook)   overhead {suite / floor:.2f}x "
                f"(engine alone, vs bare papermill on the same runbook: {suite / bare:.2f}x)"
                + (f"   FAILED runbooks: {failed}" if failed else ""),
                flush=True,
            )
        (_, floor1, suite1, _), (_, floor2, suite2, _) = rows
        cli2 = _cli(args.n, 2, target, out)
        print(f"overhead vs floor: {suite1 / floor1:.2f}x (jobs 1), {suite2 / floor2:.2f}x (jobs 2); target <= 1.30x")
        print(f"against papermill as it runs N notebooks (one at a time): {suite1 / floor1:.2f}x (jobs 1), "
              f"{suite2 / floor1:.2f}x (jobs 2)")
        print(f"speed-up of --jobs 2 over --jobs 1: {suite1 / suite2:.2f}x (floor: {floor1 / floor2:.2f}x)")
        print(f"`pgrunbooks suite` CLI, jobs 2, wall time incl. interpreter start: {cli2:.2f}s")
        return 0
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
