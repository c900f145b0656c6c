"""``pgrunbooks history``: create and migrate the history database, show what it holds, capture a
snapshot from cron, seed the sandbox's synthetic history. The same functions the runbooks call."""

from __future__ import annotations

import json

from pgrunbooks.errors import UsageError

_HISTORY_HELP = ("the history database: local:pgrunbooks_history (default, on the sandbox), a target name, "
                 "or 'target' for the target itself")


def register(sub) -> None:
    from pgrunbooks.history.store import HISTORY_DEFAULT

    p = sub.add_parser("history", help="the metric history: migrate, status, capture, seed-synthetic",
                       description="The history database keeps daily metric and pg_stat_statements snapshots, "
                                   "every suite run's findings and restore drills (schema pgrunbooks, never "
                                   "granted to anon or authenticated).")
    actions = p.add_subparsers(dest="history_command", metavar="ACTION")
    actions.required = True

    def add(name: str, help_text: str, handler, *, target: bool = False):
        q = actions.add_parser(name, help=help_text, description=help_text)
        q.add_argument("--history", default=HISTORY_DEFAULT, help=_HISTORY_HELP)
        if target:
            q.add_argument("--target", default="local", help="local, local:DB, service:NAME, env:VAR or a DSN without password")
        q.set_defaults(handler=handler)
        return q

    add("migrate", "create the history database (on the sandbox) and apply the pending migrations", _migrate,
        target=True)
    status = add("status", "the schema version and, per target, the snapshots, runs and drills stored", _status,
                 target=True)
    status.add_argument("--format", choices=("table", "json"), default="table")
    add("capture", "take today's snapshot of the target (read-only there) into the history (what "
                   "daily/capture_metrics does)", _capture, target=True)
    seed = add("seed-synthetic", "write 13 months of deterministic synthetic daily snapshots for a sandbox "
                                 "target (local, local:DB only); days already stored are kept", _seed, target=True)
    seed.add_argument("--days", type=int, default=396, help="how many days, ending yesterday (default 396: 13 months)")


def _connect(args):
    from pgrunbooks.history import store

    return store.connect(args.history, target=args.target)


def _migrate(args) -> int:
    from pgrunbooks.history import store

    conn = store.connect(args.history, target=args.target, migrate_schema=False)
    try:
        applied = store.migrate(conn)
        versions = store.schema_versions(conn)
    finally:
        conn.close()
    latest = versions[-1] if versions else None
    print(f"history schema at version {latest['version']:03d} ({latest['name']})" if latest else "no migration")
    print(f"applied now: {', '.join(f'{v:03d}' for v in applied) or 'nothing (up to date)'}")
    return 0


def _status(args) -> int:
    from pgrunbooks.history import store

    conn = _connect(args)
    try:
        versions = store.schema_versions(conn)
        rows = conn.execute("""
            select t.target,
                   (select count(*) from pgrunbooks.snapshots s where s.target = t.target) as snapshots,
                   (select count(*) from pgrunbooks.snapshots s where s.target = t.target and s.synthetic) as synthetic,
                   (select min(s.day)::text from pgrunbooks.snapshots s where s.target = t.target) as first_day,
                   (select max(s.day)::text from pgrunbooks.snapshots s where s.target = t.target) as last_day,
                   (select count(*) from pgrunbooks.runs r where r.target = t.target) as runs,
                   (select count(*) from pgrunbooks.drills d where d.target = t.target) as drills
            from (select target from pgrunbooks.snapshots union select target from pgrunbooks.runs
                  union select target from pgrunbooks.drills) t
            order by t.target""").fetchall()
    finally:
        conn.close()
    columns = ("target", "snapshots", "synthetic", "first_day", "last_day", "runs", "drills")
    if args.format == "json":
        print(json.dumps({"schema_version": versions[-1]["version"] if versions else None,
                          "targets": [dict(zip(columns, r)) for r in rows]}, indent=2))
        return 0
    print(f"history schema version {versions[-1]['version']:03d}" if versions else "history schema: none")
    if not rows:
        print("nothing stored yet: run `pgrunbooks run daily/capture_metrics` (the daily suite runs it)")
    for row in rows:
        item = dict(zip(columns, row))
        print(f"{item['target']}: {item['snapshots']} snapshots ({item['synthetic']} synthetic, "
              f"{item['first_day'] or '-'} to {item['last_day'] or '-'}), {item['runs']} runs, {item['drills']} drills")
    return 0


def _capture(args) -> int:
    from pgrunbooks import db
    from pgrunbooks.history import capture

    with db.connect(args.target, runbook="history capture") as session:
        conn = _connect(args)
        try:
            snap = capture.capture(session, conn)
        finally:
            conn.close()
    replaced = " (replaced the earlier one of that day)" if snap.replaced else ""
    print(f"snapshot {snap.day} of {snap.target}: {snap.tables} relations, {snap.statements} statements{replaced}")
    if snap.statements_skipped:
        print(f"statements skipped: {snap.statements_skipped}")
    return 0


def _seed(args) -> int:
    from pgrunbooks import db
    from pgrunbooks.history import capture, synthetic
    from pgrunbooks.targets import resolve

    if not 1 <= args.days <= 3660:
        raise UsageError(f"--days {args.days} is out of range", hint="between 1 and 3660")
    resolved = resolve(args.target)
    if resolved.kind != "local":
        raise UsageError(f"synthetic history is for the sandbox only, not {resolved}",
                         hint="use --target local (or local:DB); real targets get their history from capture")
    with db.connect(resolved, runbook="history seed-synthetic") as session:
        measured = capture.measure(session)
    conn = _connect(args)
    try:
        written = synthetic.seed_synthetic(conn, args.target, current=measured, days=args.days)
    finally:
        conn.close()
    print(f"{written} synthetic daily snapshots written for {args.target} ({args.days - written} days already held one)")
    return 0
