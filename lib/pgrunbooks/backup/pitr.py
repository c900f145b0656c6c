"""``pitr_drill``: point-in-time recovery rehearsed on local servers only.

A drill server with WAL archiving (``archive_command`` copying each segment to a directory) is
seeded small; ``pg_basebackup`` takes a base backup; one organization's calls are deleted "by
accident"; a copy is recovered from the base backup and the archive (``restore_command``,
``recovery_target_time`` just before the delete, ``recovery.signal``) on another port; the rows
are counted back. Both servers and every file are removed at the end (unless ``keep``).
Nothing here can reach a non-local server: it starts its own.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import psycopg

from pgrunbooks.backup import binaries
from pgrunbooks.errors import PreconditionError, UsageError
from pgrunbooks.findings import Finding, Severity

CHECK_ID = "pitr_drill"
DATABASE = "victorysync"
RECOVERY_TIMEOUT_S = 60


@dataclass
class ArchivingServer:
    """A sandbox instance with archive_mode on, in its own temporary home."""

    sandbox: object
    archive: Path
    home: Path

    def conninfo(self, dbname: str = DATABASE) -> str:
        from pgrunbooks.sandbox import ADMIN_USER

        return self.sandbox.conninfo(dbname, ADMIN_USER)


@contextlib.contextmanager
def archiving_server(pg_bin: Path | str | None = None, *, archive_command: str | None = None,
                     home: Path | None = None) -> Iterator[ArchivingServer]:
    """Start a throwaway server that archives WAL (``archive_command`` default: copy to ``home/archive``).

    ``archive_command='false'`` gives a server whose archiver fails (the freshness check's positive).
    Stopped and deleted on exit.
    """
    from pgrunbooks.sandbox import Sandbox, free_port, give_to_server_user

    home = home or Path(tempfile.mkdtemp(prefix="pgrb-drill-"))
    home.chmod(0o755)
    archive = give_to_server_user(home / "archive")
    command = archive_command or f"test ! -f {archive}/%f && cp %p {archive}/%f"
    box = Sandbox(home / "primary", pg_bin=pg_bin, port=free_port(),
                  settings={"archive_mode": "on", "archive_command": command, "wal_level": "replica",
                            "shared_buffers": "32MB", "max_connections": "20"}, no_sync=True)
    try:
        box.start()
        yield ArchivingServer(box, archive, home)
    finally:
        with contextlib.suppress(Exception):
            box.stop()
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class PitrResult:
    """What a PITR drill did and how long each step took."""

    organization: str
    calls_before: int
    calls_after_delete: int
    calls_recovered: int
    target_time: datetime
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def recovered(self) -> bool:
        return self.calls_recovered == self.calls_before and self.calls_after_delete == 0

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())

    def summary(self) -> str:
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items())
        state = "rows back" if self.recovered else "ROWS NOT RECOVERED"
        return (f"PITR drill: deleted {self.calls_before:,} calls of organization {self.organization}, recovered "
                f"{self.calls_recovered:,} to {self.target_time.isoformat(timespec='milliseconds')} — {state} "
                f"({phases}; {self.seconds:.1f} s in all)")

    def finding(self) -> Finding:
        return Finding(CHECK_ID, Severity.OK if self.recovered else Severity.CRITICAL, self.summary(),
                       object=f"organization:{self.organization}", value=round(self.seconds, 3),
                       data={"phases": self.phases, "calls_before": self.calls_before,
                             "calls_recovered": self.calls_recovered})

    def record(self) -> dict:
        return {"kind": "pitr_drill", "started_at": datetime.now(timezone.utc).isoformat(), "target": "local drill",
                "verdict": "pass" if self.recovered else "fail", "rto_seconds": round(self.seconds, 3),
                "rpo_seconds": 0.0, "phases": self.phases, "calls_before": self.calls_before,
                "calls_recovered": self.calls_recovered}


def pitr_drill(pg_bin: Path | str | None = None, *, scale: float = 0.05, record_to: Path | str | None = None,
               history_target: str | None = None) -> PitrResult:
    """Run the whole drill on throwaway local servers and return its result (see the module docstring)."""
    from pgrunbooks.sandbox import create_database
    from pgrunbooks.seed import seed

    if not 0 < scale <= 2:
        raise UsageError(f"scale must be in (0, 2] for a drill (got {scale})", hint="0.05 seeds in about a second")
    if pg_bin and binaries.tool_major(pg_bin) is None:
        raise UsageError(f"pg_bin {pg_bin} holds no PostgreSQL programs", hint="e.g. /usr/lib/postgresql/15/bin")
    phases: dict[str, float] = {}
    with archiving_server(pg_bin) as primary:
        clock = time.monotonic()
        create_database(primary.conninfo("postgres"), DATABASE)
        with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
            seed(conn, scale=scale, faults="none")
        phases["seed"] = time.monotonic() - clock
        clock = time.monotonic()
        recovered_home = _base_backup(primary)
        phases["base_backup"] = time.monotonic() - clock
        org, before, target_time, after = _accident(primary)
        result = PitrResult(org, before, after, -1, target_time, phases)
        clock = time.monotonic()
        with _recovered(primary, recovered_home, target_time) as conninfo:
            phases["recovery"] = time.monotonic() - clock
            with psycopg.connect(conninfo) as conn:
                result.calls_recovered = conn.execute(
                    "select pg_catalog.count(*) from public.calls where org_id = %s", (org,)).fetchone()[0]
    if record_to is not None:
        from pgrunbooks.backup import drills

        drills.record(record_to, result.record(), history_target=history_target)
    return result


def _base_backup(primary: ArchivingServer) -> Path:
    from pgrunbooks.sandbox import ADMIN_USER, give_to_server_user, run_as_server_user

    home = give_to_server_user(primary.home / "recovered", mode=0o755)
    box = primary.sandbox
    result = run_as_server_user([str(box.pg_bin / "pg_basebackup"), "-D", str(home / "data"), "-X", "stream",
                                 "-c", "fast", "--no-sync", "-h", str(box.socket_dir), "-p", str(box.port), "-U", ADMIN_USER,
                                 "--no-password"], check=False)
    if result.returncode != 0:
        raise PreconditionError(f"pg_basebackup failed: {result.stderr.strip()[-1500:]}")
    return home


def _accident(primary: ArchivingServer) -> tuple[str, int, datetime, int]:
    """Delete the calls of the organization with most calls; the recovery target is just before it."""
    with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
        org, before = conn.execute("select org_id::text, pg_catalog.count(*) from public.calls "
                                   "group by 1 order by 2 desc, 1 limit 1").fetchone()
        target_time = conn.execute("select pg_catalog.clock_timestamp()").fetchone()[0]
        time.sleep(0.01)  # the delete commits strictly after the target time
        conn.execute("delete from public.calls where org_id = %s", (org,))
        after = conn.execute("select pg_catalog.count(*) from public.calls where org_id = %s", (org,)).fetchone()[0]
        segment = conn.execute("select pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal())").fetchone()[0]
        _wait_archived(conn, segment)
    return org, before, target_time, after


def _wait_archived(conn, segment: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = conn.execute("select last_archived_wal >= %s from pg_catalog.pg_stat_archiver", (segment,)).fetchone()[0]
        if done:
            return
        if time.monotonic() > deadline:
            raise PreconditionError(f"WAL segment {segment} was not archived within {timeout:.0f} s",
                                    hint="see the drill server's log: its archive_command is failing")
        time.sleep(0.05)


@contextlib.contextmanager
def _recovered(primary: ArchivingServer, home: Path, target_time: datetime) -> Iterator[str]:
    """Start the base backup as a server recovering to ``target_time`` from the archive; yield its conninfo."""
    from pgrunbooks.sandbox import ADMIN_USER, Sandbox, free_port, run_as_server_user

    archive = primary.archive
    box = Sandbox(home, pg_bin=primary.sandbox.pg_bin, port=free_port(),
                  settings={"restore_command": f"cp {archive}/%f %p",
                            "recovery_target_time": target_time.isoformat(),
                            "recovery_target_action": "promote", "archive_mode": "off",
                            "shared_buffers": "32MB", "max_connections": "20"}, no_sync=True)
    run_as_server_user(["touch", str(home / "data" / "recovery.signal")])
    try:
        box.start()
        conninfo = box.conninfo(DATABASE, ADMIN_USER)
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        while True:
            with psycopg.connect(conninfo) as conn:
                if not conn.execute("select pg_catalog.pg_is_in_recovery()").fetchone()[0]:
                    break
            if time.monotonic() > deadline:
                raise PreconditionError(f"recovery did not finish within {RECOVERY_TIMEOUT_S} s",
                                        hint=f"see {box.log_file}")
            time.sleep(0.05)
        yield conninfo
    finally:
        with contextlib.suppress(Exception):
            box.stop()
