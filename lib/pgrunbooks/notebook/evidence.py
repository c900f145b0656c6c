"""``rb.capture``: capture the evidence in a playbook, show it, attach ``evidence.json``.

```python
evidence = rb.capture(s, seconds=evidence_seconds, samples=evidence_samples, disk=True)
```

It calls :func:`pgrunbooks.evidence.capture` on the playbook's session (read-only, bounded),
displays a one-line summary, the wait-event chart, the top statements now and the lock tree,
hands the compact JSON to the run (``rb.attach("evidence.json", …)``: written beside the
report) and returns the :class:`~pgrunbooks.evidence.Evidence` for the ranking cells.
"""

from __future__ import annotations

import json
from typing import Any

from pgrunbooks.notebook.display import attach, publish, show
from pgrunbooks.redact import redact


def capture(session, *, seconds: float = 10.0, samples: int = 500, disk: bool = False,
            statement_timeout: str = "5s", progress: bool = True, charts: bool = True, name: str = "evidence.json"):
    """Capture (see :func:`pgrunbooks.evidence.capture`), show and attach the evidence; return it."""
    from pgrunbooks.evidence import capture as _capture
    from pgrunbooks.evidence import charts as ev_charts

    ev = _capture(session, seconds=seconds, samples=samples, disk=disk, statement_timeout=statement_timeout,
                  progress=progress)
    publish({"text/markdown": f"**Evidence:** {redact(ev.summary())}", "text/plain": redact(ev.summary())})
    if charts:
        for fig, none in ((ev_charts.wait_events(ev), "no session was active during the window"),
                          (ev_charts.top_statements(ev), "no statement completed during the window")):
            if fig is not None:
                show(fig)
            else:
                publish({"text/markdown": f"*{none}*", "text/plain": none})
    if ev.lock_tree:
        show(_frame(ev.lock_tree, ("root", "depth", "pid", "blocked_by", "state", "mode", "relation", "xact_age_s", "query")))
    attach(name, json.loads(ev.to_json()))  # through JSON: timestamps (the archiver's) become text
    return ev


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]):
    import pandas as pd

    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))


def show_causes(causes) -> None:
    """The ranked causes as a table, the most likely first (``rb.record`` reports them; this only shows)."""
    if not causes:
        publish({"text/markdown": "*No cause found in the evidence.*", "text/plain": "No cause found in the evidence."})
        return
    show(_frame([{"rank": i, "score": round(c.score, 1), "severity": c.severity, "kind": c.kind, "object": c.object,
                  "title": c.title, "action": c.action} for i, c in enumerate(causes, 1)],
                ("rank", "score", "severity", "kind", "object", "title", "action")))


def show_disk(ev) -> None:
    """Where the space goes: pg_wal, the slots and what they retain, the archiver, temp files, the largest tables."""
    disk = ev.disk or {}
    mb = 1024 * 1024
    wal, arch, temp = disk.get("wal") or {}, disk.get("archiver") or {}, disk.get("temp_files") or {}
    facts = [
        ("database size", f"{(disk.get('database_bytes') or 0) / mb:,.0f} MB"),
        ("pg_wal", f"{(wal.get('bytes') or 0) / mb:,.0f} MB in {wal.get('files', '?')} files (max_wal_size {wal.get('max_wal_size', '?')}, "
                   f"wal_keep_size {wal.get('wal_keep_size', '?')}, max_slot_wal_keep_size {wal.get('max_slot_wal_keep_size', '?')})"),
        ("replication slots", f"{len(disk.get('slots') or [])}, retaining "
                              f"{sum((s.get('retained_bytes') or 0) for s in disk.get('slots') or []) / mb:,.0f} MB"),
        ("archiver", f"archive_mode {arch.get('archive_mode', '?')}, {arch.get('failed_count', 0)} failure(s)"
                     + (", FAILING" if arch.get("failing") else "")),
        ("temp files now", f"{(temp.get('bytes') or 0) / mb:,.0f} MB in {temp.get('files', 0)} files"),
    ] + [(f"skipped: {k}", v) for k, v in ev.skipped.items()]
    show(_frame([{"what": k, "value": v} for k, v in facts], ("what", "value")))
    if disk.get("slots"):
        show(_frame(disk["slots"], ("slot", "slot_type", "active", "active_pid", "wal_status", "retained_bytes", "safe_wal_size")))
    if disk.get("largest_tables"):
        show(_frame([{**t, "total_mb": round(t["total_bytes"] / mb, 1), "dead_mb": round((t["dead_bytes"] or 0) / mb, 1)}
                     for t in disk["largest_tables"]], ("table", "total_mb", "live_tuples", "dead_tuples", "dead_mb")))


#: how long the informational dry runs below may wait for a lock (a queued DDL must not stall the playbook)
RELEASE_PLAN_LOCK_TIMEOUT = "500ms"


def show_release_plans(session, ev) -> None:
    """The dry runs of ``monthly/archive_old_data`` (what it would move, per table) and
    ``weekly/vacuum_analyze`` (its outline), for the disk playbook. Information only: a plan
    that cannot be made now (a lock queued on its table, a check that failed) is said, not raised."""
    import pandas as pd

    from pgrunbooks import actions
    from pgrunbooks.errors import PgRunbooksError
    from pgrunbooks.evidence import archive_frees
    from pgrunbooks.notebook import act

    previous, session.lock_timeout = session.lock_timeout, RELEASE_PLAN_LOCK_TIMEOUT
    try:
        for what, make in (
            ("archive", lambda: show(pd.DataFrame(archive_frees(
                actions.plan_archive(session, act.pin_cutoffs(session, actions.DEFAULT_PAIRS)[0],
                                     lock_timeout=RELEASE_PLAN_LOCK_TIMEOUT), ev)))),
            ("vacuum_analyze", lambda: print(act.outline(actions.plan_vacuum_analyze(
                session, from_checks=True, lock_timeout=RELEASE_PLAN_LOCK_TIMEOUT)))),
        ):
            try:
                make()
            except PgRunbooksError as exc:
                note = f"{what} plan not available now: {exc.message}"
                publish({"text/markdown": f"*{redact(note)}*", "text/plain": redact(note)})
    finally:
        session.lock_timeout = previous
