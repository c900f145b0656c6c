"""``restore_test``: restore a backup on a scratch server (or a given target, never the source), verify it
against its manifest, time each phase and give a verdict.

Phases: ``files`` (sha256 of every file), ``server`` (a scratch server: a second sandbox instance in
a temporary home on a free port, with the backup's roles), ``restore`` (``pg_restore -e -j N``),
``verify`` (:func:`pgrunbooks.backup.verify.verify_restored`, then a tenant-isolation probe).
RTO = server + restore + verify;
RPO = snapshot time minus the newest ``created_at`` in the restored copy. Verdict: ``fail`` when
anything differs or the restore did not complete, ``partial`` when the copy is right but the RTO
is over ``rto_target``, else ``pass``. Each drill is recorded (:mod:`pgrunbooks.backup.drills`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pgrunbooks.backup import binaries, drills, manifest as mf
from pgrunbooks.backup.verify import CHECK_ID, tenant_probe, verify_files, verify_restored
from pgrunbooks.errors import PreconditionError, UsageError
from pgrunbooks.findings import Finding, Severity, worst
from pgrunbooks.redact import redact

COMPLETE = "pgrunbooks: restore complete from "


@dataclass
class Drill:
    """What a restore test found: verdict, findings, per-phase seconds, RTO and RPO."""

    backup: Path
    target: str
    verdict: str
    findings: list[Finding]
    phases: dict[str, float]
    rto_seconds: float
    rpo_seconds: float | None
    rto_target: float
    started_at: datetime
    complete: bool
    restored_database: str | None = None
    #: the scratch server's home while the drill ran (removed afterwards unless keep_scratch)
    scratch_home: Path | None = None
    kept: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items())
        rpo = "unknown" if self.rpo_seconds is None else f"{self.rpo_seconds:.0f} s"
        return (f"restore test of {self.backup.name}: {self.verdict.upper()} — RTO {self.rto_seconds:.1f} s "
                f"(target {self.rto_target:g} s; {phases}), RPO {rpo}, {len(self.problems)} discrepancies")

    @property
    def problems(self) -> list[Finding]:
        """Discrepancies (warning and above); ``info`` findings are context, not problems."""
        return [f for f in self.findings if f.severity.rank >= Severity.WARNING.rank]

    def report_findings(self) -> list[Finding]:
        """What a runbook records: the verdict first, then every finding that is not ``ok``."""
        return [self.verdict_finding()] + [f for f in self.findings if f.severity is not Severity.OK]

    def verdict_finding(self) -> Finding:
        severity = {"pass": Severity.OK, "partial": Severity.WARNING, "fail": Severity.CRITICAL}[self.verdict]
        return Finding(CHECK_ID, severity, self.summary(), object=self.backup.name, value=round(self.rto_seconds, 3),
                       threshold=self.rto_target, data={"phases": self.phases, "rpo_seconds": self.rpo_seconds})

    def record(self) -> dict[str, Any]:
        return {"kind": "restore_test", "started_at": self.started_at.isoformat(), "backup": str(self.backup),
                "target": self.target, "verdict": self.verdict, "rto_seconds": round(self.rto_seconds, 3),
                "rpo_seconds": self.rpo_seconds, "rto_target": self.rto_target, "phases": self.phases,
                "complete": self.complete, "problems": [f.title for f in self.problems][:50]}


def newest_backup(backup_dir: Path | str) -> Path:
    """The newest complete backup under ``backup_dir``."""
    found = mf.backups(backup_dir)
    if not found:
        raise PreconditionError(f"no complete backup under {backup_dir}", hint="run backup/backup_database first")
    return found[-1]


def restore_test(backup: Path | str | None = None, *, backup_dir: Path | str | None = None,
                 target: str | None = None, jobs: int = 2, rto_target: float = 900.0,
                 pg_bin: Path | str | None = None, keep_scratch: bool = False, history_target: str | None = None,
                 on_restore_started: Callable[[subprocess.Popen], None] | None = None,
                 tenant_probe_enabled: bool = True) -> Drill:
    """Restore ``backup`` (default: the newest under ``backup_dir``), verify it, record the drill."""
    from pgrunbooks.backup.dump import default_backup_dir

    if jobs < 1 or rto_target <= 0:
        raise UsageError("jobs must be at least 1 and rto_target positive")
    folder = Path(backup) if backup else newest_backup(backup_dir or default_backup_dir())
    manifest = mf.read(folder)
    tools = binaries.for_server(manifest["server_version_num"], pg_bin)
    started_at = datetime.now(timezone.utc)
    phases: dict[str, float] = {}
    clock = time.monotonic()
    findings = verify_files(folder, manifest)
    phases["files"] = time.monotonic() - clock
    scratch = None
    complete, restored, rpo = False, None, None
    try:
        clock = time.monotonic()
        if target is None:
            scratch = ScratchServer.start(tools, manifest, folder)
            conninfo, label = scratch.conninfo, f"scratch server (PostgreSQL {tools.major}, port {scratch.sandbox.port})"
        else:
            conninfo, label = _given_target(target, manifest)
        phases["server"] = time.monotonic() - clock
        restored = psycopg.conninfo.conninfo_to_dict(conninfo).get("dbname")
        if not findings:
            clock = time.monotonic()
            findings += _pg_restore(tools, folder, conninfo, jobs, on_restore_started)
            phases["restore"] = time.monotonic() - clock
            complete = restore_state(conninfo) == "complete"
            if complete:
                clock = time.monotonic()
                with psycopg.connect(conninfo, row_factory=dict_row) as conn, conn.cursor() as cur:
                    findings += verify_restored(cur, manifest)
                    rpo = _rpo(manifest)
                if tenant_probe_enabled and _has_tenant_schema(manifest):
                    findings += tenant_probe(conninfo, manifest.get("tenant_probe"))
                phases["verify"] = time.monotonic() - clock
        else:
            findings.append(Finding(CHECK_ID, Severity.CRITICAL, "restore not attempted: the backup's files do not "
                                    "match its manifest", object=folder.name))
    finally:
        if scratch is not None and not keep_scratch:
            scratch.remove()
    rto = sum(v for k, v in phases.items() if k != "files")
    verdict = verdict_of(complete=complete, findings=findings, rto_seconds=rto, rto_target=rto_target)
    drill = Drill(folder, label, verdict, findings, {k: round(v, 3) for k, v in phases.items()}, rto, rpo,
                  rto_target, started_at, complete, restored, scratch.home if scratch else None,
                  kept={"home": str(scratch.home), "conninfo": scratch.conninfo} if scratch and keep_scratch else {})
    drills.record(folder.parent, drill.record(), history_target=history_target)
    return drill


def verdict_of(*, complete: bool, findings: list[Finding], rto_seconds: float, rto_target: float) -> str:
    """``fail``: incomplete, or anything critical; ``partial``: a right copy over the RTO target (or a
    warning); ``pass`` otherwise."""
    if not complete or worst(findings) in (Severity.CRITICAL, Severity.ERROR):
        return "fail"
    warned = any(f.severity.rank >= Severity.WARNING.rank for f in findings)
    return "partial" if rto_seconds > rto_target or warned else "pass"


def _has_tenant_schema(manifest: dict[str, Any]) -> bool:
    """The probe needs the VictorySync tenancy (organizations, org_users) and its API roles."""
    names = {t["name"] for t in manifest["tables"]}
    return {"public.organizations", "public.org_users"} <= names


def _rpo(manifest: dict[str, Any]) -> float | None:
    """Snapshot time minus the newest row the backup holds (what a restore would lose, at the least)."""
    newest = [datetime.fromisoformat(t["newest"]) for t in manifest["tables"] if t.get("newest")]
    if not newest:
        return None
    taken = datetime.fromisoformat(manifest["snapshot_time"])
    return max(0.0, (taken - max(newest)).total_seconds())


def _pg_restore(tools, folder: Path, conninfo: str, jobs: int, on_started) -> list[Finding]:
    dsn, env = binaries.client_env(conninfo)
    args = [tools.tool("pg_restore"), "--exit-on-error", f"--jobs={jobs}", "--no-password", f"--dbname={dsn}",
            str(folder / mf.DATA_DIR)]
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
        if on_started is not None:
            on_started(proc)
        code = proc.wait()
        err.seek(0)
        message = redact(err.read().strip())[-1500:]
    if code != 0:
        how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        return [Finding(CHECK_ID, Severity.CRITICAL, f"restore incomplete: pg_restore {how}",
                        object=psycopg.conninfo.conninfo_to_dict(conninfo).get("dbname") or "",
                        detail=message, remediation="the scratch copy is unusable; fix the cause and run the "
                        "restore test again")]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("comment on database {} is {}").format(
            sql.Identifier(conn.info.dbname), sql.Literal(COMPLETE + folder.name)))
    return []


def restore_state(conninfo: str) -> str:
    """``complete`` when a restore of this database finished (its marker comment), else ``incomplete``."""
    with psycopg.connect(conninfo) as conn:
        note = conn.execute("select pg_catalog.shobj_description(d.oid, 'pg_database') from pg_catalog.pg_database d "
                            "where d.datname = current_database()").fetchone()[0]
    return "complete" if note and note.startswith(COMPLETE) else "incomplete"


def _given_target(target: str, manifest: dict[str, Any]) -> tuple[str, str]:
    """A target database to restore into: never the source's database, and empty."""
    from pgrunbooks.targets import resolve

    resolved = resolve(target)
    with psycopg.connect(resolved.conninfo) as conn:
        db = conn.info.dbname
        try:
            ident = str(conn.execute("select system_identifier from pg_catalog.pg_control_system()").fetchone()[0])
        except psycopg.errors.InsufficientPrivilege:
            ident = None
            conn.rollback()
        tables = conn.execute("select pg_catalog.count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace n "
                              "on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname not in "
                              "('pg_catalog', 'information_schema')").fetchone()[0]
    same_cluster = ident is None or manifest.get("system_identifier") in (None, ident)
    if same_cluster and db == manifest["database"]:
        raise UsageError(f"target {resolved} is the backup's source database {db}: a restore test never touches "
                         "the source", hint="leave target empty (a scratch server) or name an empty scratch database")
    if tables:
        raise UsageError(f"target {resolved} is not empty ({tables} tables)", hint="restore into an empty database")
    return resolved.conninfo, str(resolved)


class ScratchServer:
    """A second sandbox instance in a temporary home, on a free port, with the backup's roles."""

    def __init__(self, sandbox, database: str):
        self.sandbox = sandbox
        self.database = database

    @property
    def home(self) -> Path:
        return self.sandbox.home

    @property
    def conninfo(self) -> str:
        from pgrunbooks.sandbox import ADMIN_USER

        return self.sandbox.conninfo(self.database, ADMIN_USER)

    @classmethod
    def start(cls, tools: binaries.Binaries, manifest: dict[str, Any], folder: Path) -> "ScratchServer":
        from pgrunbooks.sandbox import ADMIN_USER, Sandbox, create_database, free_port

        home = Path(tempfile.mkdtemp(prefix="pgrb-restore-"))
        home.chmod(0o755)
        box = Sandbox(home, pg_bin=tools.bin_dir, port=free_port(),
                      settings={"shared_buffers": "64MB", "max_connections": "20"}, no_sync=True)
        server = cls(box, f"restore_{manifest['database']}"[:63])
        try:
            box.start()
            _create_roles(tools, box, manifest, folder)
            create_database(box.admin_conninfo(), server.database)
        except BaseException:
            server.remove()
            raise
        return server

    def remove(self) -> None:
        try:
            self.sandbox.stop()
        finally:
            shutil.rmtree(self.sandbox.home, ignore_errors=True)


def _create_roles(tools, box, manifest: dict[str, Any], folder: Path) -> None:
    """The backup's roles on the scratch server: its ``roles.sql``, else CREATE ROLE from the manifest."""
    roles_file = folder / mf.ROLES_FILE
    if roles_file.is_file():
        # no ON_ERROR_STOP: the bootstrap superuser already exists and "already exists" is expected
        subprocess.run([tools.tool("psql"), "-X", "-q", "-d", box.admin_conninfo(), "-f", str(roles_file)],
                       capture_output=True, text=True)
        return
    with psycopg.connect(box.admin_conninfo(), autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("select rolname::text from pg_catalog.pg_roles")}
        for role in manifest["catalog"]["roles"]:
            if role["name"] in existing:
                continue
            options = [sql.SQL(("" if role[k] else "no") + k) for k in
                       ("login", "inherit", "createrole", "createdb", "bypassrls")]
            conn.execute(sql.SQL("create role {} {}").format(sql.Identifier(role["name"]), sql.SQL(" ").join(options)))
        for role in manifest["catalog"]["roles"]:
            for parent in role["member_of"]:
                conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(parent), sql.Identifier(role["name"])))
