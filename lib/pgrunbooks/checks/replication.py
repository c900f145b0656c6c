"""Replication: slots that keep WAL on disk (a forgotten slot is the classic way a Supabase disk fills)."""

from __future__ import annotations

from pgrunbooks.checks.format import plural, size
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import finding, grade, ok
from pgrunbooks.findings import Severity

#: wal_status values meaning the slot has lost, or is about to lose, WAL its consumer still needs
_LOSING = {"unreserved": "WAL it needs is past max_slot_wal_keep_size and will be removed at the next checkpoint",
           "lost": "WAL it needs has been removed: its consumer can no longer resume from it"}


def _slots(check, rows, t, ctx):
    out = []
    for r in rows:
        retained = r["retained_bytes"]
        severity = grade(retained, t["warning_bytes"], t["critical_bytes"])
        reasons = []
        if retained is not None and severity is not Severity.OK:
            reasons.append(f"it keeps {size(retained)} of WAL")
        if r["wal_status"] in _LOSING:
            severity = Severity.CRITICAL
            reasons.append(_LOSING[r["wal_status"]])
        safe = r["safe_wal_size"]
        if safe is not None and t["critical_safe_bytes"] is not None and safe <= t["critical_safe_bytes"]:
            severity = Severity.CRITICAL
            reasons.append(f"only {size(max(safe, 0))} more WAL before the server drops what it needs")
        if not r["active"] and retained is not None:
            if severity.rank < Severity.WARNING.rank:
                severity = Severity.WARNING
            reasons.insert(0, f"no consumer is connected and it keeps {size(retained)} of WAL since {r['restart_lsn']}")
        if severity is Severity.OK:
            continue
        out.append(finding(
            check, severity, f"replication slot {r['slot']} ({r['slot_type']}): {reasons[0]}",
            object=f"slot:{r['slot']}", value=retained, threshold=t["warning_bytes"],
            detail="; ".join(reasons[1:] + [f"wal_status {r['wal_status'] or '-'}",
                                            "safe_wal_size " + ("unlimited (max_slot_wal_keep_size = -1)"
                                                                if safe is None else size(max(safe, 0)))])
                   + ". WAL a slot retains is never recycled: it grows until the consumer catches up or the "
                     "disk is full.",
            remediation=_remediation(r),
            data=r,
        ))
    if out:
        return out
    return [ok(check, f"{plural(len(rows), 'replication slot')}, none inactive or lagging"
                      f" (warning at {size(t['warning_bytes'])} retained)", value=len(rows))]


def _remediation(r) -> str:
    slot = r["slot"].replace("'", "''")
    if r["active"]:
        return (f"-- Its consumer (pid {r['active_pid']}) is connected but behind: find out why (replica lag, a "
                "stuck subscription) before anything else. If it is abandoned, stop it, then:\n"
                f"--   select pg_catalog.pg_drop_replication_slot('{slot}');\n"
                "-- and bound what any slot may keep: alter system set max_slot_wal_keep_size = '10GB';")
    return ("-- Make sure no replica, subscriber or CDC tool still needs it (it cannot be recreated at the same "
            "position), then:\n"
            f"select pg_catalog.pg_drop_replication_slot('{slot}');\n"
            "-- The retained WAL is recycled at the next checkpoint.")


register(Check(
    id="replication_slots",
    title="Replication slots retaining WAL",
    category="replication",
    description="Replication slots with no connected consumer, or retaining warning_bytes / critical_bytes of "
                "WAL, or whose wal_status is unreserved or lost, or with safe_wal_size at or below "
                "critical_safe_bytes.",
    why="A slot keeps every WAL segment from its restart_lsn on until its consumer confirms it: a replica or "
        "CDC tool that went away fills the disk, and the database stops accepting writes.",
    remediation="select pg_drop_replication_slot('<slot>'); once nothing needs it; set max_slot_wal_keep_size.",
    evaluate=_slots,
    thresholds={"warning_bytes": 1024**3, "critical_bytes": 10 * 1024**3, "critical_safe_bytes": 1024**3},
))
