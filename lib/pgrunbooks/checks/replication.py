"""Replication: slots that keep WAL on disk (a forgotten slot is the classic way a Supabase disk fills)."""

from __future__ import annotations

from pgrunbooks.checks.format import duration, plural, size
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import finding, grade, ok, skipped
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


# ----------------------------------------------------------------------------------- backup freshness
#: what to look at where the server shows no archiver (archive_mode off here, archiving done by the platform)
DASHBOARD = ("On a Supabase-hosted project the platform archives WAL with its own agent, invisible here: open "
             "Dashboard → Database → Backups and check the date of the latest daily backup (and, with the PITR "
             "add-on, the latest recoverable point), then record it (the backup runbook's "
             "dashboard_checked_at and dashboard_latest_backup parameters).")


def _segment_number(name: str | None, segment_bytes: int) -> int | None:
    """A WAL file name (timeline, log, segment in hex) as an absolute segment number."""
    if not name or len(name) < 24:
        return None
    return int(name[8:16], 16) * (0x100000000 // segment_bytes) + int(name[16:24], 16)


def _backup_freshness(check, rows, t, ctx):
    r = rows[0]
    if r["archive_mode"] == "off":
        return [skipped(check, "archive_mode is off: this server archives no WAL, so there is no archiver to "
                               "check (point-in-time recovery needs it on). " + DASHBOARD,
                        "alter system set archive_mode = on; and an archive_command or archive_library, then "
                        "restart — or rely on the platform's backups (see the detail)")]
    segment = r["wal_segment_bytes"]
    current = _segment_number(r["current_wal"], segment)
    last = _segment_number(r["last_archived_wal"], segment)
    pending = None if current is None else max(0, current - (last if last is not None else current) - 1)
    age = r["last_archived_age_s"]
    facts = (f"archived {plural(r['archived_count'], 'segment')}, last {r['last_archived_wal'] or 'none'}"
             + (f" {duration(age)} ago" if age is not None else "")
             + f"; {r['failed_count']:,} failures since {r['stats_reset'] or 'the statistics reset'}"
             + ("" if pending is None else f"; {plural(pending, 'segment')} waiting"))
    if r["failing"]:
        return [finding(
            check, Severity.CRITICAL,
            f"WAL archiving is failing: {r['last_failed_wal']} failed at {r['last_failed_time']:%Y-%m-%d %H:%M:%S %Z}"
            + (", no segment archived since" if r["last_archived_time"] is None
               or r["last_failed_time"] > r["last_archived_time"] else ""),
            object="archiver", value=r["failed_count"], threshold=0, detail=facts + ". Until it succeeds, WAL "
            "piles up in pg_wal (the disk fills) and no backup can be recovered past the last archived segment.",
            remediation="Read the server log for the archive_command's error (permissions, a full or unmounted "
                        "archive, a missing tool), fix it, then watch pg_stat_archiver.last_archived_time move "
                        "past last_failed_time.",
            data=r)]
    severity = grade(age, t["warning_age_s"], t["critical_age_s"]) if pending else Severity.OK
    if pending is not None and pending >= t["warning_pending"] and severity.rank < Severity.WARNING.rank:
        severity = Severity.WARNING
    if severity is Severity.OK:
        return [ok(check, facts, value=age, data=r)]
    return [finding(check, severity, f"WAL archiving is behind: {plural(pending, 'segment')} waiting, last success "
                                     f"{duration(age) if age is not None else 'never'} ago",
                    object="archiver", value=age, threshold=t["warning_age_s"], detail=facts, data=r)]


register(Check(
    id="backup_freshness",
    title="WAL archiving (backup freshness)",
    category="replication",
    description="pg_stat_archiver when archive_mode is on: critical when the latest archiving attempt failed, "
                "warning / critical when segments wait and the last success is older than warning_age_s / "
                "critical_age_s, or warning_pending segments wait. Skipped, saying what to check in the Supabase "
                "dashboard instead, when archive_mode is off.",
    why="Point-in-time recovery can only reach the last archived WAL segment: an archiver that fails silently "
        "means the backups stop at that point, and the WAL it cannot archive fills the disk.",
    remediation="Fix the archive_command (its error is in the server log); on Supabase check the dashboard's "
                "Backups page.",
    evaluate=_backup_freshness,
    thresholds={"warning_age_s": 3600, "critical_age_s": 6 * 3600, "warning_pending": 16},
))
