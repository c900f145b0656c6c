"""Rank the causes an :class:`~pgrunbooks.evidence.model.Evidence` points to, per playbook.

Each ``_<kind>`` function reads the evidence and returns the causes of one kind (usually
none); :func:`rank` runs a playbook's kinds and sorts them: the highest score first, so the
first finding a playbook records is the most likely root cause. Scores are on one scale
(0–100) across kinds: a lock queue stops everything behind it, so it outranks a slow
statement, which outranks a spike in calls, which outranks checkpoints. Thresholds are
keyword defaults a caller can override (``rank(ev, "high_load", regression_ratio=3)``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from pgrunbooks.errors import UsageError
from pgrunbooks.evidence.model import Cause, Evidence

MB = 1024 * 1024
BLOCK = 8192

#: default thresholds (every one can be passed to :func:`rank`)
THRESHOLDS: dict[str, Any] = {
    "regression_ratio": 3.0,        # mean per call over the window / mean before it
    "regression_min_ms": 1.0,       # ... and at least this many ms slower per call
    "regression_min_share": 0.1,    # ... and at least this share of the window's statement time
    "regression_min_calls_before": 20,
    "spike_ratio": 5.0,             # calls per second in the window / since the statistics were reset
    "spike_min_rate": 50.0,         # calls per second in the window
    "temp_min_bytes": 1 * MB,       # temp files written during the window
    "io_min_share": 0.5,            # average sessions waiting on IO
    "slot_min_bytes": 16 * MB,      # WAL an inactive slot retains
    "wal_over_max": 2.0,            # pg_wal larger than this many times max_wal_size
    "temp_disk_min_bytes": 100 * MB,
    "bloat_min_bytes": 64 * MB,     # dead tuples' estimated bytes in one table
}


def _pids_running(ev: Evidence, queryid: Any) -> list[int]:
    return sorted(s["pid"] for s in ev.sessions if s["query_id"] == queryid and s["active"] and s["backend_type"] == "client backend")


def _short(query: str | None, n: int = 80) -> str:
    text = " ".join((query or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- high_load ------------------------------------------------------------------------------------


def _lock_queue(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    out = []
    for root in (r for r in ev.lock_tree if r["depth"] == 0 and r["waiters"]):
        waiting_on = sorted({r["relation"] for r in ev.lock_tree if r["root"] == root["pid"] and r["relation"]})
        where = f" on {', '.join(waiting_on)}" if waiting_on else ""
        age = root.get("xact_age_s")
        out.append(Cause(
            kind="lock_queue",
            title=f"{root['waiters']} session(s) wait in a lock queue behind pid {root['pid']}{where}",
            object=f"pid:{root['pid']}",
            score=80 + min(15, 3 * root["waiters"]),
            severity="critical" if root["waiters"] >= 5 else "warning",
            detail=(f"root pid {root['pid']} ({root.get('role')}, {root.get('application') or '-'}) is {root.get('state')}"
                    + (f", its transaction open for {age:.0f} s" if age is not None else "")
                    + f"; it blocks {root['waiters']} session(s){where}. Its last statement: {_short(root.get('query'), 200)}"),
            action="terminate_sessions",
            data={"pids": [root["pid"]], "relations": waiting_on, "waiters": root["waiters"]},
        ))
    return out


def _regressed(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    out = []
    window_ms = sum(s["total_ms"] for s in ev.statements) or 1.0
    for s in ev.statements:
        before, now = s["mean_ms_before"], s["mean_ms"]
        if before is None or now is None or s["calls_before"] < t["regression_min_calls_before"]:
            continue
        if _spilled(s, t):  # slower because it spills: the temp_spills cause says so
            continue
        ratio = now / max(before, 0.001)
        if ratio < t["regression_ratio"] or now - before < t["regression_min_ms"]:
            continue
        share = s["total_ms"] / window_ms
        if share < t["regression_min_share"]:
            continue
        out.append(Cause(
            kind="regressed_statement",
            title=f"statement {s['queryid']} regressed: {now:.1f} ms per call now, {before:.2f} ms before",
            object=f"queryid:{s['queryid']}",
            score=50 + min(25, 10 * math.log10(ratio)) + 10 * share,
            detail=(f"{s['calls']} call(s) in the window, {share:.0%} of its statement time, {ratio:.0f}x slower per call "
                    f"than its {s['calls_before']} call(s) before; query: {_short(s['query'], 200)}"),
            action="explain",
            data={"queryid": s["queryid"], "query": s["query"], "pids": _pids_running(ev, s["queryid"]), "ratio": round(ratio, 1)},
        ))
    return out


def _spilled(s: dict[str, Any], t: dict[str, Any]) -> bool:
    return s["temp_blks_written"] * BLOCK >= t["temp_min_bytes"]


def _temp_spills(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    out = []
    for s in (s for s in ev.statements if _spilled(s, t)):
        written = s["temp_blks_written"] * BLOCK
        out.append(Cause(
            kind="temp_spills",
            title=f"statement {s['queryid']} spills to temp files: {written / MB:.1f} MB in {s['calls']} call(s)",
            object=f"queryid:{s['queryid']}",
            score=50 + min(30, 10 * math.log10(1 + written / MB)),
            detail=(f"{written / MB:.1f} MB of temp files written during the window"
                    + (f", {s['mean_ms']:.1f} ms per call" if s["mean_ms"] is not None else "")
                    + f"; sorts or hashes larger than work_mem. Query: {_short(s['query'], 200)}"),
            action="work_mem",
            data={"queryid": s["queryid"], "query": s["query"], "pids": _pids_running(ev, s["queryid"]), "temp_bytes": written},
        ))
    return out


def _traffic_spike(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    since = ev.database.get("statements_since_s")
    if not since or ev.seconds <= 0:
        return []
    out = []
    for s in ev.statements:
        rate = s["calls"] / ev.seconds
        baseline = s["calls_before"] / since
        if rate < t["spike_min_rate"] or rate < t["spike_ratio"] * max(baseline, 1e-6):
            continue
        ratio = rate / max(baseline, 0.01)
        out.append(Cause(
            kind="traffic_spike",
            title=f"statement {s['queryid']} is called {rate:.0f} times a second ({ratio:.0f}x its usual rate)",
            object=f"queryid:{s['queryid']}",
            score=35 + min(25, 10 * math.log10(ratio)),
            detail=f"{s['calls']} calls in {ev.seconds:.1f} s against {baseline:.2f}/s since the statistics were reset; "
                   f"query: {_short(s['query'], 200)}. Find the client (application_name) that sends it.",
            action="",
            data={"queryid": s["queryid"], "rate": round(rate, 1), "baseline": round(baseline, 3)},
        ))
    return out


def _io(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    # client sessions only: the checkpointer and the WAL writer wait on I/O by design
    waiting = sum(r["sessions"] for r in ev.samples
                  if r["backend_type"] == "client backend" and r["state"] == "active" and r["wait_event_type"] == "IO")
    share = waiting / ev.sample_count if ev.sample_count else 0.0
    if share < t["io_min_share"]:
        return []
    return [Cause(kind="io", title=f"{share:.1f} client sessions on average wait on I/O", object=ev.datname,
                  score=35 + min(20, 10 * share), severity="warning",
                  detail=f"{ev.database.get('blks_read', 0)} blocks read from outside shared buffers during the window",
                  data={"io_sessions": round(share, 2)})]


def _wraparound(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    return [
        Cause(kind="antiwraparound_autovacuum", title=f"an anti-wraparound autovacuum runs (pid {s['pid']})",
              object=f"pid:{s['pid']}", score=30, severity="warning",
              detail=f"{_short(s['query'], 200)}: it reads the whole table and cannot be skipped; let it finish",
              action="wait", data={"pids": [s["pid"]]})
        for s in ev.sessions
        if s["backend_type"] == "autovacuum worker" and "to prevent wraparound" in (s["query"] or "")
    ]


def _checkpoints(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    requested = ev.database.get("checkpoints_requested") or 0
    if requested <= 0:
        return []
    return [Cause(kind="checkpoints", title=f"{requested} requested checkpoint(s) during the window", object=ev.datname,
                  score=20, severity="info",
                  detail="checkpoints forced by WAL volume (max_wal_size) write every dirty buffer at once",
                  data={"requested": requested})]


# -- disk_space -----------------------------------------------------------------------------------


def _slots(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    out = []
    for s in (ev.disk or {}).get("slots", []):
        retained = s.get("retained_bytes") or 0
        lagging = s.get("wal_status") in ("extended", "unreserved", "lost")
        if s["active"] and not lagging or retained < t["slot_min_bytes"] and not lagging:
            continue
        out.append(Cause(
            kind="wal_retaining_slot",
            title=f"{'inactive' if not s['active'] else 'lagging'} replication slot {s['slot']} retains {retained / MB:.0f} MB of WAL",
            object=f"slot:{s['slot']}",
            score=70 + min(25, 25 * retained / (10 * 1024 * MB)) + (0 if s["active"] else 3),
            severity="critical" if s.get("wal_status") in ("unreserved", "lost") else "warning",
            detail=(f"{s['slot_type']} slot, {'no consumer connected' if not s['active'] else 'consumer pid ' + str(s['active_pid'])}, "
                    f"wal_status {s.get('wal_status')}, restart_lsn {s.get('restart_lsn')}; pg_wal cannot be recycled past it"),
            action="drop_slot" if not s["active"] else "",
            data={"slot": s["slot"], "retained_bytes": retained, "active": s["active"]},
        ))
    return out


def _archiver(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    a = (ev.disk or {}).get("archiver")
    if not a or not a.get("failing") or a.get("archive_mode") == "off":
        return []
    return [Cause(kind="archiver_failing", title=f"archive_command fails (last failed segment {a['last_failed_wal']})",
                  object="archiver", score=80, severity="critical",
                  detail=f"{a['failed_count']} failure(s); every segment not archived stays in pg_wal",
                  action="archive_command", data={"last_failed_wal": a["last_failed_wal"]})]


def _wal_size(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    w = (ev.disk or {}).get("wal")
    if not w or not w.get("max_wal_bytes") or w["bytes"] < t["wal_over_max"] * w["max_wal_bytes"]:
        return []
    return [Cause(kind="wal_size", title=f"pg_wal holds {w['bytes'] / MB:.0f} MB ({w['files']} files), over {t['wal_over_max']:g}x max_wal_size",
                  object="pg_wal", score=45, detail="look at the slots and the archiver above; wal_keep_size also keeps segments",
                  data={"bytes": w["bytes"]})]


def _temp_disk(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    tf = (ev.disk or {}).get("temp_files")
    if not tf or tf["bytes"] < t["temp_disk_min_bytes"]:
        return []
    return [Cause(kind="temp_files", title=f"{tf['bytes'] / MB:.0f} MB of temp files on disk now ({tf['files']} files)",
                  object="pgsql_tmp", score=50, detail="they go away when the queries writing them end; find them in high_load",
                  action="terminate_sessions", data={"bytes": tf["bytes"]})]


def _bloat(ev: Evidence, t: dict[str, Any]) -> list[Cause]:
    return [
        Cause(kind="bloat", title=f"{r['table']}: about {r['dead_bytes'] / MB:.0f} MB of dead tuples", object=r["table"],
              score=35, detail=f"{r['dead_tuples']} dead tuples in {r['total_bytes'] / MB:.0f} MB; VACUUM makes it reusable",
              action="vacuum_analyze", data={"table": r["table"], "dead_bytes": r["dead_bytes"]})
        for r in (ev.disk or {}).get("largest_tables", [])
        if (r.get("dead_bytes") or 0) >= t["bloat_min_bytes"]
    ]


#: playbook -> the kinds it ranks
PLAYBOOKS: dict[str, tuple[Callable[[Evidence, dict[str, Any]], list[Cause]], ...]] = {
    "high_load": (_lock_queue, _regressed, _temp_spills, _traffic_spike, _io, _wraparound, _checkpoints),
    "disk_space": (_archiver, _slots, _wal_size, _temp_disk, _bloat),
}


def rank(evidence: Evidence, playbook: str, **thresholds: Any) -> list[Cause]:
    """The causes ``evidence`` points to for ``playbook``, the most likely first (empty: nothing wrong)."""
    if playbook not in PLAYBOOKS:
        raise UsageError(f"no ranking for playbook {playbook!r}", hint=f"use one of {', '.join(PLAYBOOKS)}")
    unknown = set(thresholds) - set(THRESHOLDS)
    if unknown:
        raise UsageError(f"unknown threshold(s) {sorted(unknown)}", hint=f"use {', '.join(THRESHOLDS)}")
    t = {**THRESHOLDS, **thresholds}
    causes = [c for kind in PLAYBOOKS[playbook] for c in kind(evidence, t)]
    # A statement already named as regressed or spilling is not also a "spike": the slower calls are the cause.
    slow = {c.object for c in causes if c.kind in ("regressed_statement", "temp_spills")}
    causes = [c for c in causes if not (c.kind == "traffic_spike" and c.object in slow)]
    return sorted(causes, key=lambda c: (-c.score, c.kind, c.object))


def findings(causes: list[Cause], playbook: str, evidence: Evidence) -> list[Any]:
    """The causes as findings, most likely first; one ``ok`` finding when no cause reaches ``warning``."""
    from pgrunbooks.findings import Finding

    out = [c.finding(playbook) for c in causes]
    if not any(c.severity in ("warning", "critical") for c in causes):
        out.insert(0, Finding(check_id=f"{playbook}.nothing_wrong", severity="ok",
                              title="the evidence shows no cause of this incident", object=evidence.datname,
                              value=evidence.sample_count, detail=evidence.summary()))
    return out


def verdict(causes: list[Cause]) -> str:
    """One stable line: the most likely cause's kind and object, or that nothing is wrong."""
    serious = [c for c in causes if c.severity in ("warning", "critical")]
    if not serious:
        return "nothing is wrong: the evidence shows no cause"  # notes (info) may follow: the line stays the same
    top = serious[0]
    return f"most likely cause: {top.kind} ({top.object}); {len(serious) - 1} other cause(s)"


def archive_frees(plan, ev: Evidence) -> list[dict[str, Any]]:
    """What an archive plan (``actions.plan_archive``, a dry run) would move per table, and roughly how
    many MB of the source that is (its share of the live rows times the table's size)."""
    tables = {r["table"]: r for r in (ev.disk or {}).get("largest_tables", [])}
    out = []
    for o in plan.objects:
        t = tables.get(o["source"]) or {}
        live = t.get("live_tuples") or 0
        share = (o["rows_to_move"] or 0) / live if live else None
        out.append({"source": o["source"], "archive": o["archive"], "rows_to_move": o["rows_to_move"],
                    "source_mb": o.get("source_size_mb"),
                    "moves_mb_estimate": round(share * (o.get("source_size_mb") or 0), 1) if share is not None else None})
    return out
