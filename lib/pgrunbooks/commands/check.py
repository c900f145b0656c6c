"""``pgrunbooks check``: run the checks registry directly, without a notebook (cron, alerting).

Same findings as the runbooks (the runbooks call the same :func:`pgrunbooks.checks.run_checks`)
and the same exit codes as ``pgrunbooks run``: 0 nothing at or above ``--fail-on``, 1 findings at
or above it, 2 the tool failed (e.g. the target is unreachable), 3 bad usage (unknown check,
category or threshold; nothing ran).
"""

from __future__ import annotations

import json
import sys
import time

from pgrunbooks.findings import Severity, at_or_above, severity_counts, worst
from pgrunbooks.redact import redact

from pgrunbooks.engine.run import DEFAULT_FAIL_ON, parse_fail_on  # the same default and parsing as `pgrunbooks run`


def register(sub) -> None:
    from pgrunbooks.checks.registry import CATEGORIES

    p = sub.add_parser(
        "check",
        help="run the diagnostic checks directly (no notebook) and print the findings",
        description=(
            "Run the checks registry against a target in read-only transactions and print the findings. "
            "Categories: " + ", ".join(CATEGORIES) + ". `--list` shows every check with its thresholds."
        ),
        epilog="exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, "
               "2 the tool failed (target unreachable…), 3 bad usage",
    )
    p.add_argument("--target", default="local", help="local, local:DB, service:NAME, env:VAR or a DSN without password")
    p.add_argument("--category", action="append", default=[], metavar="CATEGORY",
                   help="only this category (repeatable, or comma-separated)")
    p.add_argument("--check", action="append", default=[], metavar="ID", help="only this check (repeatable, or comma-separated)")
    p.add_argument("--threshold", action="append", default=[], metavar="ID.NAME=VALUE",
                   help="override a threshold, e.g. dead_tuples.warning=0.1 (repeatable)")
    p.add_argument("--suppress", action="append", default=[], metavar="KEY",
                   help="drop findings with this key (check_id:object) or check id (repeatable)")
    p.add_argument("--exposed-schemas", default=None, metavar="SCHEMA,…",
                   help="the schemas the Data API serves (default: the database's pgrst.db_schemas, else public)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("--fail-on", default=DEFAULT_FAIL_ON,
                   help="exit 1 when a finding is at or above this severity: info, warning, error, critical (default), none")
    p.add_argument("--all", action="store_true", help="table format: also list the checks that found nothing (ok)")
    p.add_argument("--list", action="store_true", help="list the checks (id, category, requirements, thresholds) and exit")
    p.set_defaults(handler=_handle)


def _split(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _handle(args) -> int:
    from pgrunbooks import checks
    from pgrunbooks.checks import thresholds as _thresholds

    fail_on = parse_fail_on(args.fail_on)
    ids, categories = _split(args.check), _split(args.category)
    selected = checks.select(ids, categories)  # unknown names: UsageError before connecting
    overrides = _thresholds.validate(_thresholds.parse_assignments(args.threshold), checks.REGISTRY)
    if args.list:
        _print_list(selected, args.format)
        return 0
    from pgrunbooks import db

    started = time.monotonic()
    with db.connect(args.target, runbook="check") as session:
        results = checks.run_results(
            session, ids=[c.id for c in selected], thresholds=overrides, suppress=_split(args.suppress),
            exposed_schemas=args.exposed_schemas,
        )
        info = session.fetch_one("select current_user::text as role, current_database()::text as database") or {}
        version = session.conn.info.parameter_status("server_version")
    findings = results.findings
    elapsed = time.monotonic() - started
    if args.format == "json":
        payload = {
            "target": str(session.target),
            "database": info.get("database"),
            "role": info.get("role"),
            "server_version": version,
            "worst": worst(findings).value,
            "counts": severity_counts(findings),
            "fail_on": fail_on,
            "elapsed_s": round(elapsed, 3),
            "checks": [
                {"id": r.check.id, "category": r.check.category, "status": r.status.value,
                 "elapsed_ms": round(r.elapsed_s * 1000, 1), "rows": len(r.rows)}
                for r in results
            ],
            "findings": [f.to_dict() for f in findings],
        }
        sys.stdout.write(redact(json.dumps(payload, indent=2, default=str)) + "\n")
    else:
        sys.stdout.write(_table(findings, show_ok=args.all) + "\n")
        counts = severity_counts(findings)
        summary = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
        sys.stdout.write(
            f"\n{len(results)} checks on {session.target} ({info.get('database')}, PostgreSQL {version}, "
            f"role {info.get('role')}) in {elapsed:.2f}s: {summary or 'nothing'}\n"
        )
    if fail_on == "none":
        return 0
    return 1 if at_or_above(findings, fail_on) else 0


def _table(findings, *, show_ok: bool) -> str:
    from pgrunbooks.checks import REGISTRY

    order = {cid: i for i, cid in enumerate(REGISTRY)}
    rows = [f for f in findings if show_ok or f.severity is not Severity.OK]
    rows.sort(key=lambda f: (-f.severity.rank, order.get(f.check_id, 999), f.object))
    if not rows:
        return "no findings above ok (use --all to list every check)"
    header = ("severity", "check", "object", "finding")
    # A skipped check says why instead of its bare title, and what enables it on the next line.
    cells = [(f.severity.value, f.check_id, _clip(f.object, 48),
              _clip(f.detail if f.severity is Severity.SKIPPED and f.detail else f.title, 110)) for f in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(3)]
    indent = " " * (sum(widths) + 2 * len(widths))
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths + [0])).rstrip()]
    lines.append("  ".join("-" * w for w in widths + [len(header[3])]))
    for f, c in zip(rows, cells):
        lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths + [0])).rstrip())
        if f.severity is Severity.SKIPPED and f.remediation:
            lines.append(f"{indent}enable: {' '.join(f.remediation.split())}")
    return redact("\n".join(lines))


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _print_list(selected, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps([
            {"id": c.id, "category": c.category, "title": c.title, "description": c.description,
             "requirements": c.requirements, "thresholds": dict(c.thresholds), "fixed_by": c.fixed_by}
            for c in selected
        ], indent=2, default=str) + "\n")
        return
    rows = [("check", "category", "title", "needs", "thresholds")]
    for c in selected:
        limits = ", ".join(f"{k}={_threshold_text(c.id, k, v)}" for k, v in c.thresholds.items()
                           if not isinstance(v, (list, tuple)))
        rows.append((c.id, c.category, c.title, "; ".join(c.requirements[1:]) or "-", limits or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        sys.stdout.write("  ".join(x.ljust(w) for x, w in zip(r, widths + [0])).rstrip() + "\n")
        if i == 0:
            sys.stdout.write("  ".join("-" * w for w in widths + [len(r[4])]) + "\n")


#: checks whose warning/critical thresholds are durations, and in which unit (the check's own)
_DURATION_UNITS = {
    "long_running_queries": "s", "idle_in_transaction": "s", "blocking_locks": "s",
    "slow_statements": "ms", "statements_reset_age": "days", "vacuum_age": "days",
}
_LEVELS = ("warning", "critical", "info")


def _threshold_text(check_id: str, name: str, value) -> str:
    """A threshold with its unit: ``75%`` for shares, ``8 GiB`` for sizes, ``300 s`` for durations."""
    if value is None:
        return "off"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if name in _LEVELS and check_id in _DURATION_UNITS:
        return f"{value:g} {_DURATION_UNITS[check_id]}"
    if name.endswith("_ms"):
        return f"{value:g} ms"
    if name.endswith("_hours"):
        return f"{value:g} h"
    if name.endswith("bytes") or (isinstance(value, int) and value >= 1024**2 and value % 1024**2 == 0):
        for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("kiB", 1024)):
            if value >= size and value % size == 0:
                return f"{value // size:,} {unit}"
        return f"{value:,} B"
    if isinstance(value, float) and 0 <= value <= 1 and (name in _LEVELS or name == "share"):
        return f"{value * 100:g}%"  # shares and ratios: dead/total, used/max, growth…
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"

