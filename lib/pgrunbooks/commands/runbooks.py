"""``pgrunbooks list | run | suite``: the command line over :mod:`pgrunbooks.engine`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pgrunbooks import paths
from pgrunbooks.commands.console import runbook_table, summary_table
from pgrunbooks.engine import params
from pgrunbooks.engine.artifacts import new_run_dir
from pgrunbooks.engine.catalog import discover, find_runbook
from pgrunbooks.engine.prepare import prepare
from pgrunbooks.engine.results import DEFAULT_CELL_TIMEOUT_S, DEFAULT_TIMEOUT_S, Options
from pgrunbooks.engine.run import DEFAULT_FAIL_ON, default_jobs, exit_code, parse_fail_on, run_all
from pgrunbooks.engine.suites import load_suite, prepare_suite
from pgrunbooks.errors import ConnectError, UsageError
from pgrunbooks.history.runs import HISTORY_DEFAULT, RunHistory
from pgrunbooks.redact import redact

FAIL_ON_HELP = (
    "exit 1 when a finding is at or above this severity: info, warning, error, critical (default), none; "
    "or 'new': exit 1 only when a finding of warning or worse is new since the previous run of the same "
    "suite (or runbook) and target"
)
HISTORY_HELP = (
    f"history store the findings are compared with and recorded in (default {HISTORY_DEFAULT}: the sandbox; "
    "local:DB, service:NAME, env:VAR, or 'target' for the target itself). Unreachable: one warning, and the "
    "previous run directory under --out is compared instead"
)


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
            "<out>/<UTC timestamp>/<group>-<name>.{ipynb,html,findings.json} and index.html, which "
            "opens with the findings new, resolved and still open since the previous run of this "
            "runbook on this target (--history)."
        ),
        epilog=("exit codes: 0 nothing at or above --fail-on, 1 findings at or above it (--fail-on new: "
                "new ones), 2 the runbook failed, 3 bad usage"),
    )
    run.add_argument("name", help="group/name (e.g. daily/health_overview) or a unique bare name")
    _common(run)
    run.set_defaults(handler=_run)

    suite = sub.add_parser(
        "suite",
        help="run a suite of runbooks (daily, weekly, monthly) in parallel",
        description=(
            "Run every runbook of params/<suite>.yaml (or a suite YAML file) with bounded parallelism; "
            "one failing runbook never stops the others; one aggregated index.html, which opens with "
            "the findings new, resolved and still open since the previous run of this suite on this "
            "target (--history)."
        ),
        epilog=("exit codes: 0 nothing at or above --fail-on, 1 findings at or above it (--fail-on new: "
                "new ones), 2 a runbook failed, 3 bad usage"),
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
    p.add_argument("--fail-on", default=DEFAULT_FAIL_ON, help=FAIL_ON_HELP)
    history = p.add_mutually_exclusive_group()
    history.add_argument("--history", default=HISTORY_DEFAULT, metavar="TARGET", help=HISTORY_HELP)
    history.add_argument("--no-history", dest="history", action="store_const", const=None,
                         help="neither read nor write the history store: compare with the previous run directory under --out")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds a runbook may run in total (default {DEFAULT_TIMEOUT_S})")
    p.add_argument("--cell-timeout", type=float, default=DEFAULT_CELL_TIMEOUT_S,
                   help=f"seconds one cell may run (default {DEFAULT_CELL_TIMEOUT_S})")


def _quiet_libraries(verbose: bool) -> None:
    # papermill warns about parameters it does not know (suppress) and logs nbclient chatter.
    level = logging.INFO if verbose else logging.CRITICAL
    for name in ("papermill", "traitlets", "nbclient"):
        logging.getLogger(name).setLevel(level)


def _options(args) -> Options:
    """The run's one :class:`~pgrunbooks.engine.results.Options`, from the command line."""
    if args.timeout <= 0 or args.cell_timeout <= 0:
        raise UsageError("--timeout and --cell-timeout must be positive")
    return Options(show_code=args.show_code, timeout=args.timeout, cell_timeout=min(args.cell_timeout, args.timeout))


def _list(args) -> int:
    runbooks = discover()
    if args.group:
        runbooks = [r for r in runbooks if r.group == args.group or r.name.startswith(args.group + "/")]
    if args.json:
        print(json.dumps([
            {"name": r.name, "group": r.group, "title": r.title, "purpose": r.purpose, "mutates": r.mutates, "path": str(r.path)}
            for r in runbooks
        ], indent=2))
        return 0
    if not runbooks:
        print(f"no runbooks under {paths.runbooks_dir()}")
        return 0
    print(runbook_table(runbooks))
    return 0


def _history(args, suite: str, prepared) -> RunHistory:
    """This run's place in the history: the suite (``run:<runbook>`` for one runbook), its
    target(s) and the store (``--history``; a malformed name is bad usage, exit 3)."""
    store = args.history
    if store is not None and store != "target":
        from pgrunbooks.targets import resolve

        try:
            resolve(store)
        except ConnectError:
            pass  # a sandbox that is down: the run says so once, and compares with the directory
    targets = sorted({p.target for p in prepared if p.target})
    return RunHistory(suite=suite, target=", ".join(targets), store=store)


def _run(args) -> int:
    _quiet_libraries(args.verbose)
    fail_on = parse_fail_on(args.fail_on, allow_new=True)
    options = _options(args)
    runbook = find_runbook(args.name)
    values, raw = params.merge(args.files, args.assignments)
    try:
        prepared = prepare(runbook, values, raw=raw, target=args.target)
    except UsageError as exc:
        _record_refusal(runbook, values, args.target, exc)
        raise
    history = _history(args, f"run:{runbook.name}", [prepared])
    run_dir = new_run_dir(args.out)
    print(redact(f"running {runbook.name}" + (f" on {prepared.target}" if prepared.target else "") + " …"), file=sys.stderr)
    results = run_all([prepared], run_dir, options, jobs=1, title=f"pgrunbooks run {runbook.name}", history=history)
    return _finish(results, run_dir, fail_on, history)


def _record_refusal(runbook, values: dict, target: str | None, exc: UsageError) -> None:
    """An apply refused for its values, before anything connected, still leaves its audit record."""
    if not runbook.mutates or values.get("dry_run", True) is not False:
        return  # a dry run changes nothing: nothing to audit
    from pgrunbooks import audit

    audit.append(audit.new_record(
        action=runbook.short_name, runbook=runbook.name, operator=audit.operator_name(values.get("operator")),
        target=str(target or values.get("target") or ""), parameters=values, outcome="refused",
        started_at=audit.utc_now(),
        error={"type": type(exc).__name__, "message": exc.message, "hint": exc.hint, "while": "validating parameters"},
    ))


def _suite(args) -> int:
    _quiet_libraries(args.verbose)
    fail_on = parse_fail_on(args.fail_on, allow_new=True)
    options = _options(args)
    jobs = args.jobs if args.jobs is not None else default_jobs()
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    suite = load_suite(args.suite)
    extra, raw = params.merge(args.files, args.assignments)
    prepared = prepare_suite(suite, extra=extra, raw=raw, target=args.target)
    history = _history(args, suite.name, prepared)
    run_dir = new_run_dir(args.out)
    targets = sorted({p.target for p in prepared if p.target})
    print(
        redact(f"suite {suite.name}: {len(prepared)} runbook(s), {min(jobs, max(1, len(prepared)))} at a time"
               + (f", target {', '.join(targets)}" if targets else "")),
        file=sys.stderr,
    )
    results = run_all(prepared, run_dir, options, jobs=jobs, title=f"pgrunbooks suite {suite.name}", progress=True,
                      history=history)
    return _finish(results, run_dir, fail_on, history)


def _finish(results, run_dir: Path, fail_on: str, history: RunHistory | None = None) -> int:
    diff = history.diff if history is not None else None
    table = summary_table(results, run_dir, diff=diff)
    print(table)
    code = exit_code(results, fail_on, diff)
    (run_dir / "run.log").write_text(table + f"\nexit code: {code} (fail-on {fail_on})\n", encoding="utf-8")
    return code
