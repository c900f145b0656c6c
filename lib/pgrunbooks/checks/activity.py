"""Activity: connections, long-running queries, idle-in-transaction sessions, lock trees."""

from __future__ import annotations

from collections import Counter, defaultdict

from pgrunbooks.checks.format import duration, one_line, plural
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import OWN_APPLICATIONS, finding, grade, ok
from pgrunbooks.findings import Severity

STATS = ("pg_read_all_stats",)


def _connections(check, rows, t, ctx):
    if not rows:
        return [ok(check, "no client connections visible")]
    usable = rows[0]["usable_connections"] or rows[0]["max_connections"]
    total = sum(r["connections"] for r in rows)
    share = total / usable if usable else 0.0
    by_state, by_user, by_app = Counter(), Counter(), Counter()
    for r in rows:
        by_state[r["state"]] += r["connections"]
        by_user[r["username"] or "?"] += r["connections"]
        by_app[r["application"] or "(none)"] += r["connections"]

    def top(counter, n=5):
        return ", ".join(f"{k} {v}" for k, v in counter.most_common(n))

    severity = grade(share, t["warning"], t["critical"])
    detail = f"by state: {top(by_state)}; by user: {top(by_user)}; by application: {top(by_app)}"
    title = f"{total} of {usable} usable connections in use ({share:.0%})"
    data = {"by_state": dict(by_state), "by_user": dict(by_user), "by_application": dict(by_app),
            "max_connections": rows[0]["max_connections"], "usable_connections": usable}
    if severity is Severity.OK:
        return [ok(check, detail, title=title, value=round(share, 3), data=data)]
    idle = by_state.get("idle", 0)
    hint = ""
    if idle >= total / 2:
        hint = (f" {idle} of them are idle: the clients hold connections they do not use; "
                "put a transaction-mode pooler in front or lower the pool sizes.")
    return [finding(check, severity, title, value=round(share, 3), threshold=t["warning"],
                    detail=detail + "." + hint, data=data)]


def _long_running(check, rows, t, ctx):
    out = []
    for r in rows:
        severity = grade(r["duration_s"], t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        out.append(finding(
            check, severity,
            f"pid {r['pid']} ({r['application'] or r['username']}) has run one statement for {duration(r['duration_s'])}",
            object=f"pid:{r['pid']}", value=round(r["duration_s"], 1), threshold=t["warning"],
            detail=f"user {r['username']}, database {r['database']}, waiting on {r['wait_event_type'] or 'nothing'}"
                   f"/{r['wait_event'] or '-'}: {one_line(r['query'], 300)}",
            remediation=check.remediation.replace("<pid>", str(r["pid"])) + check.action_hint,
            data=r,
        ))
    if not out:
        return [ok(check, f"no statement has run longer than {duration(t['warning'])}")]
    return out


def _idle_in_transaction(check, rows, t, ctx):
    out = []
    for r in rows:
        severity = grade(r["idle_s"], t["warning"], t["critical"])
        if r["blocking"]:
            severity = Severity.CRITICAL
        if severity is Severity.OK:
            continue
        holds = []
        if r["locked_relations"]:
            holds.append("locks on " + ", ".join(r["locked_relations"][:5]))
        if r["blocking"]:
            holds.append(f"blocks {plural(r['blocking'], 'session')}")
        if r["xmin_age"]:
            holds.append(f"holds back vacuum by {r['xmin_age']:,} transactions")
        out.append(finding(
            check, severity,
            f"pid {r['pid']} ({r['application'] or r['username']}) idle in transaction for {duration(r['idle_s'])}",
            object=f"pid:{r['pid']}", value=round(r["idle_s"], 1), threshold=t["warning"],
            detail=f"user {r['username']}, transaction open {duration(r['transaction_s'])}"
                   + (f"; {'; '.join(holds)}" if holds else "") + f"; last statement: {one_line(r['last_query'], 300)}",
            remediation=check.remediation.replace("<pid>", str(r["pid"])) + check.action_hint,
            data=r,
        ))
    if not out:
        return [ok(check, f"no session idle in a transaction longer than {duration(t['warning'])}")]
    return out


def _blocking(check, rows, t, ctx):
    if not rows:
        return [ok(check, "no session waits on a lock")]
    children = defaultdict(list)
    blocked = set()
    info = {}
    for r in rows:
        children[r["blocking_pid"]].append(r)
        blocked.add(r["blocked_pid"])
        info.setdefault(r["blocking_pid"], r)
    roots = [pid for pid in children if pid not in blocked] or sorted(children)[:1]  # a cycle: deadlock detector's job
    out = []
    for root in sorted(roots):
        lines, seen, waits = [], set(), []

        def walk(pid, depth):
            for edge in sorted(children.get(pid, []), key=lambda e: e["blocked_pid"]):
                if edge["blocked_pid"] in seen:
                    continue
                seen.add(edge["blocked_pid"])
                waits.append(edge["wait_s"] or 0)
                lines.append(
                    "  " * depth + f"└ pid {edge['blocked_pid']} ({edge['blocked_application'] or edge['blocked_user']})"
                    f" waits {duration(edge['wait_s'])} for {edge['waiting_for'] or 'a lock'}:"
                    f" {one_line(edge['blocked_query'], 120)}"
                )
                walk(edge["blocked_pid"], depth + 1)

        walk(root, 1)
        head = info[root]
        longest = max(waits or [0])
        severity = grade(longest, t["warning"], t["critical"])
        if severity is Severity.OK:
            severity = Severity.INFO
        who = "a prepared transaction" if root == 0 else f"pid {root} ({head['blocking_application'] or head['blocking_user']})"
        tree = [f"{who}, {head['blocking_state'] or '?'}, transaction open "
                f"{duration(head['blocking_transaction_s'])}: {one_line(head['blocking_query'], 160)}"] + lines
        out.append(finding(
            check, severity,
            f"{who} blocks {plural(len(seen), 'session')}, longest wait {duration(longest)}",
            object=f"pid:{root}", value=round(longest, 1), threshold=t["warning"],
            detail="\n".join(tree),
            remediation=(_PREPARED if root == 0 else check.remediation.replace("<pid>", str(root)) + check.action_hint),
            data={"root": root, "blocked": sorted(seen), "edges": [e for e in rows if e["blocked_pid"] in seen]},
        ))
    return out


_CANCEL = (
    "-- Cancel first; terminate only if it is still there:\n"
    "select pg_catalog.pg_cancel_backend(<pid>);\n"
    "select pg_catalog.pg_terminate_backend(<pid>, 5000);  -- rolls its transaction back; waits up to 5 s for it to end"
)
#: a lock held by a prepared transaction (pid 0) outlives every session: only its gid releases it
_PREPARED = (
    "-- The root is a prepared transaction (two-phase commit): no session to cancel. Find it and ask its\n"
    "-- owner whether to finish or abandon it:\n"
    "select gid, prepared, owner, database from pg_catalog.pg_prepared_xacts order by prepared;\n"
    "-- then: commit prepared '<gid>';  or  rollback prepared '<gid>';"
)

register(Check(
    id="connections",
    title="Connections",
    category="activity",
    description="Client connections against max_connections, by state, user and application.",
    why="When the usable slots run out, new logins fail with 'too many clients' (the API goes down); "
        "idle connections held by oversized pools are the usual cause.",
    remediation="Find who holds them (by user and application in the detail). Idle sessions: lower the "
                "application pool sizes or use the transaction-mode pooler (port 6543 on Supabase); "
                "stuck ones: the terminate_sessions action. Raising max_connections needs a restart and memory.",
    evaluate=_connections,
    thresholds={"warning": 0.75, "critical": 0.9},
    roles=STATS,
    fixed_by="terminate_sessions",
))

register(Check(
    id="long_running_queries",
    title="Long-running queries",
    category="activity",
    description="Active statements running longer than the threshold (seconds), excluding pgrunbooks' own sessions.",
    why="A statement running for minutes holds locks and snapshots, stops vacuum from cleaning up, and "
        "is often a runaway report or a missing index.",
    remediation=_CANCEL,
    evaluate=_long_running,
    thresholds={"warning": 300, "critical": 1800, "exclude_applications": OWN_APPLICATIONS},
    roles=STATS,
    fixed_by="terminate_sessions",
))

register(Check(
    id="idle_in_transaction",
    title="Idle in transaction",
    category="activity",
    description="Sessions idle inside an open transaction longer than the threshold (seconds); "
                "critical when they block others.",
    why="An open transaction keeps its locks and its snapshot: writers queue behind it and vacuum cannot "
        "remove rows deleted since it began. It is almost always an application bug (a missing commit).",
    remediation=_CANCEL + "\n-- Prevent it: alter role … set idle_in_transaction_session_timeout = '60s';",
    evaluate=_idle_in_transaction,
    thresholds={"warning": 60, "critical": 600, "exclude_applications": OWN_APPLICATIONS},
    roles=STATS,
    fixed_by="terminate_sessions",
))

register(Check(
    id="blocking_locks",
    title="Blocking locks",
    category="activity",
    description="Lock waits as trees: who blocks whom, both queries, how long (seconds). Any wait is reported; "
                "its severity grows with the longest wait.",
    why="One session holding a lock (often idle in transaction) can stall every writer behind it; "
        "the root of the tree is the session to deal with.",
    remediation=_CANCEL + "\n-- Deal with the root of the tree, not with the waiters.",
    evaluate=_blocking,
    thresholds={"warning": 10, "critical": 60},
    roles=STATS,
    fixed_by="terminate_sessions",
))
