"""``pgrunbooks list | run | suite`` (the runbook engine)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pgrunbooks import runner
from pgrunbooks.errors import UsageError
from pgrunbooks.redact import redact

FAIL_ON_HELP = "exit 1 when a finding is at or above this severity: info, warning, error, critical (default), none"


def register(sub) -> None:
    lst = sub.add_parser(
        "list",
        help="list the runbooks (group, name, title, purpose, whether they mutate)",
        description="Runbooks under runbooks/ (or $PGRUNBOOKS_RUNBOOKS), from each notebook's metadata.pgrunbooks.",
    )
    lst.add_argument("--group", help="only this group (daily, weekly, monthly, incidents…)")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=_list)

    run = sub.add_parser(
        "run",
        help="run one runbook headlessly and write its reports",
        description=(
            "Run a runbook with papermill: parameters from params files (-f, in order) then -p key=value "
            "(YAML values: -p limit=5 is an int), validated before anything connects. Writes "
            "<out>/<UTC timestamp>/<group>-<name>.{ipynb,html,findings.json} and index.html."
        ),
        epilog="exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 the runbook failed, 3 bad usage",
    )
    run.add_argument("name", help="group/name (e.g. daily/health_overview) or a unique bare name")
    _common(run)
    run.set_defaults(handler=_run)

    suite = sub.add_parser(
        "suite",
        help="run a suite of runbooks (daily, weekly, monthly) in parallel",
        description=(
            "Run every runbook of params/<suite>.yaml (or a suite YAML file) with bounded parallelism; "
            "one failing runbook never stops the others; one aggregated index.html."
        ),
        epilog="exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 a runbook failed, 3 bad usage",
    )
    suite.add_argument("suite", help="daily | weekly | monthly, or a path to a suite YAML file")
    suite.add_argument("--jobs", "-j", type=int, default=None, help="runbooks at a time (default: number of cores)")
    _common(suite)
    suite.set_defaults(handler=_suite)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--params-file", dest="files", action="append", default=[], metavar="FILE",
                   help="YAML params file (repeatable; later files win)")
    p.add_argument("-p", "--param", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="one parameter (repeatable; wins over files)")
    p.add_argument("--target", help="where to connect: local, local:DB, env:VAR, service:NAME (overrides params)")
    p.add_argument("--out", default="reports", help="reports directory (default: reports)")
    p.add_argument("--show-code", action="store_true", help="show code cells in the HTML report")
    p.add_argument("--fail-on", default=runner.DEFAULT_FAIL_ON, help=FAIL_ON_HELP)
    p.add_argument("--timeout", type=float, default=runner.DEFAULT_TIMEOUT_S,
                   help=f"seconds a runbook may run in total (default {runner.DEFAULT_TIMEOUT_S})")
    p.add_argument("--cell-timeout", type=float, default=runner.DEFAULT_CELL_TIMEOUT_S,
                   help=f"seconds one cell may run (default {runner.DEFAULT_CELL_TIMEOUT_S})")


def _quiet_libraries(verbose: bool) -> None:
    # papermill warns about parameters it does not know (suppress) and logs nbclient chatter.
    level = logging.INFO if verbose else logging.CRITICAL
    for name in ("papermill", "traitlets", "nbclient"):
        logging.getLogger(name).setLevel(level)


def _options(args) -> runner.Options:
    if args.timeout <= 0 or args.cell_timeout <= 0:
        raise UsageError("--timeout and --cell-timeout must be positive")
    return runner.Options(show_code=args.show_code, timeout=args.timeout, cell_timeout=min(args.cell_timeout, args.timeout))


def _list(args) -> int:
    runbooks = runner.discover()
    if args.group:
        runbooks = [r for r in runbooks if r.group == args.group or r.name.startswith(args.group + "/")]
    if args.json:
        print(json.dumps([
            {"name": r.name, "group": r.group, "title": r.title, "purpose": r.purpose, "mutates": r.mutates, "path": str(r.path)}
            for r in runbooks
        ], indent=2))
        return 0
    if not runbooks:
        print(f"no runbooks under {runner.runbooks_dir()}")
        return 0
    rows = [(r.group, r.name, "yes" if r.mutates else "no", r.title, r.purpose) for r in runbooks]
    header = ("group", "runbook", "mutates", "title", "purpose")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)][:4]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row[:4], widths)) + "  " + str(row[4]))
    return 0


def _run(args) -> int:
    _quiet_libraries(args.verbose)
    fail_on = runner.parse_fail_on(args.fail_on)
    options = _options(args)
    runbook = runner.find_runbook(args.name)
    from pgrunbooks import params

    values, raw = params.merge(args.files, args.assignments)
    prepared = runner.prepare(runbook, values, raw=raw, target=args.target)
    run_dir = runner.new_run_dir(args.out)
    print(redact(f"running {runbook.name}" + (f" on {prepared.target}" if prepared.target else "") + " …"), file=sys.stderr)
    results = runner.run_all([prepared], run_dir, options, jobs=1, title=f"pgrunbooks run {runbook.name}")
    return _finish(results, run_dir, fail_on)


def _suite(args) -> int:
    _quiet_libraries(args.verbose)
    fail_on = runner.parse_fail_on(args.fail_on)
    options = _options(args)
    jobs = args.jobs if args.jobs is not None else runner.default_jobs()
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    suite = runner.load_suite(args.suite)
    from pgrunbooks import params

    extra, raw = params.merge(args.files, args.assignments)
    prepared = runner.prepare_suite(suite, extra=extra, raw=raw, target=args.target)
    run_dir = runner.new_run_dir(args.out)
    targets = sorted({p.target for p in prepared if p.target})
    print(
        redact(f"suite {suite.name}: {len(prepared)} runbook(s), {min(jobs, max(1, len(prepared)))} at a time"
               + (f", target {', '.join(targets)}" if targets else "")),
        file=sys.stderr,
    )
    results = runner.run_all(prepared, run_dir, options, jobs=jobs, title=f"pgrunbooks suite {suite.name}", progress=True)
    return _finish(results, run_dir, fail_on)


def _finish(results, run_dir: Path, fail_on: str) -> int:
    table = runner.summary_table(results, run_dir)
    print(table)
    code = runner.exit_code(results, fail_on)
    (run_dir / "run.log").write_text(table + f"\nexit code: {code} (fail-on {fail_on})\n", encoding="utf-8")
    return code
