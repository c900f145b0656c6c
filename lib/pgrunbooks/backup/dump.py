"""``backup_database``: ``pg_dump -Fd -j N`` in an exported snapshot, with its manifest taken in that snapshot.

One REPEATABLE READ transaction exports a snapshot and stays open while ``pg_dump --snapshot``
runs; meanwhile the same transaction counts and hashes every table (:mod:`manifest`) and reads
the catalog (:mod:`catalog`), so the manifest describes exactly the rows the dump holds. Roles
come from ``pg_dumpall --roles-only --no-role-passwords`` (it reads ``pg_roles``, which every role
may), else from the catalog alone. The manifest, with the sha256 of every file, is written last:
a folder without one is an incomplete backup.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from pgrunbooks.backup import binaries, catalog, manifest as mf, verify
from pgrunbooks.backup.retention import Removal, apply_retention
from pgrunbooks.db import Session, connect
from pgrunbooks.errors import PreconditionError, PrivilegeError, UsageError
from pgrunbooks.findings import Finding, Severity
from pgrunbooks.progress import progress_bar
from pgrunbooks.redact import redact

RUNBOOK = "backup/backup_database"
SNAPSHOT_TIMEOUT = "6h"

PRIVILEGES = """
select current_user::text as role, r.rolsuper as superuser, r.rolbypassrls as bypassrls,
       pg_catalog.pg_has_role(current_user, 'pg_read_all_data', 'usage') as read_all_data
from pg_catalog.pg_roles r where r.rolname = current_user
"""

SOURCE = """
select current_database()::text as database, current_setting('server_version') as server_version,
       current_setting('server_version_num')::int as server_version_num,
       pg_catalog.pg_database_size(current_database()) as database_bytes
"""


def default_backup_dir() -> Path:
    """``$PGRUNBOOKS_HOME/backups`` (the sandbox home: ``.pgrunbooks/backups`` in the project)."""
    from pgrunbooks.sandbox import default_home

    return default_home() / "backups"


@dataclass
class Backup:
    """A finished backup: its folder, manifest, timings and what retention removed."""

    path: Path
    manifest: dict[str, Any]
    seconds: float
    removed: list[Removal] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(f["bytes"] for f in self.manifest["files"])

    def summary(self) -> str:
        m = self.manifest
        return (f"backup of {m['database']} (PostgreSQL {m['server_version']}) at {m['snapshot_time']}: "
                f"{len(m['tables'])} tables, {sum(t['rows'] for t in m['tables']):,} rows, "
                f"{len(m['files'])} files, {self.bytes / 1024**2:.1f} MiB in {self.seconds:.1f} s -> {self.path.name}")


    def finding(self) -> Finding:
        """The backup as one ``ok`` finding (what the runbook records)."""
        m = self.manifest
        return Finding("backup_database", Severity.OK, self.summary(), object=f"{m['database']}:{self.path.name}",
                       value=self.bytes, data={"snapshot_time": m["snapshot_time"], "tables": len(m["tables"]),
                                               "seconds": round(self.seconds, 3)})


def check_privileges(session: Session) -> dict[str, Any]:
    """The role must read every row: superuser, or BYPASSRLS plus ``pg_read_all_data`` (Supabase's
    ``backup_reader`` pattern). Raises :class:`PrivilegeError` naming the grants otherwise."""
    row = session.fetch_one(PRIVILEGES)
    if row["superuser"] or (row["bypassrls"] and row["read_all_data"]):
        return row
    role = row["role"]
    missing = ([] if row["read_all_data"] else [f"grant pg_read_all_data to {role};"]) + (
        [] if row["bypassrls"] else [f"alter role {role} bypassrls;"])
    raise PrivilegeError(
        f"role {role} cannot read every row for a backup: it lacks "
        + " and ".join(("pg_read_all_data" if "grant" in m else "BYPASSRLS") for m in missing)
        + " (row level security would silently leave rows out of the dump)",
        hint="as an administrator: " + " ".join(missing) + " — or use a dedicated backup role that has both",
    )


def backup_database(target: str = "local", *, backup_dir: Path | str | None = None, jobs: int = 2,
                    pg_bin: Path | str | None = None, keep: int | None = 7, max_age_days: float | None = None,
                    exact_rows: int = mf.EXACT_ROWS, compress: int | None = None) -> Backup:
    """Dump ``target``'s database to a new folder under ``backup_dir`` and write its manifest."""
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1 (got {jobs})")
    root = Path(backup_dir) if backup_dir else default_backup_dir()
    started = time.monotonic()
    with connect(target, runbook=RUNBOOK, read_only=True, statement_timeout=SNAPSHOT_TIMEOUT) as session:
        check_privileges(session)
        source = session.fetch_one(SOURCE) | {"system_identifier": _system_identifier(session)}
        tools = binaries.for_server(source["server_version_num"], pg_bin)
        session.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with session.transaction(statement_timeout=SNAPSHOT_TIMEOUT) as cur:
            cur.execute("select set_config('row_security', 'off', true)")
            cur.execute("select pg_catalog.pg_export_snapshot() as snapshot, pg_catalog.now() as taken")
            snap = cur.fetchone()
            taken: datetime = snap["taken"]
            folder = _new_folder(root, source["database"], taken)
            dump = _start_pg_dump(tools, session.target.conninfo, snap["snapshot"], folder / mf.DATA_DIR, jobs,
                                  compress)
            try:
                tables, sections = _measure(cur, dump, exact_rows)
            except BaseException:
                dump.kill()
                dump.wait()
                shutil.rmtree(folder, ignore_errors=True)
                raise
            _, err = dump.communicate()
        if dump.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise PreconditionError(f"pg_dump failed (exit {dump.returncode}): {redact(err.strip())[-2000:]}",
                                    hint="see the message; nothing was kept")
        roles_source = _dump_roles(tools, session.target.conninfo, folder / mf.ROLES_FILE)
        session.conn.isolation_level = None
        # Read-only, after the dump (the check sets its own roles per transaction): what the restored
        # copy's probe must reproduce.
        probe = verify.probe_keys(session) if {"public.organizations", "public.org_users"} <= {
            t["name"] for t in tables} else {"ran": False, "reason": "no VictorySync tenancy tables"}
    files = mf.file_digests(folder, mf.table_of_file(tools.tool("pg_restore"), folder / mf.DATA_DIR))
    seconds = time.monotonic() - started
    document = {
        "format": mf.FORMAT_VERSION, "database": source["database"], "server_version": source["server_version"],
        "server_version_num": source["server_version_num"], "system_identifier": source["system_identifier"],
        "database_bytes": source["database_bytes"], "snapshot_time": taken.astimezone(timezone.utc).isoformat(),
        "snapshot": snap["snapshot"], "jobs": jobs, "dump_seconds": round(seconds, 3),
        "pg_dump": _version(tools.tool("pg_dump")), "target": str(session.target),
        "roles_source": roles_source, "tenant_probe": probe, "tables": tables, "catalog": sections, "files": files,
    }
    mf.write(folder, document)
    removed = apply_retention(root, keep=keep, max_age_days=max_age_days)
    return Backup(folder, document, seconds, removed)


def _measure(cur, dump: subprocess.Popen, exact_rows: int) -> tuple[list[dict], dict]:
    """Counts, hashes and catalog sections in the open snapshot, while ``pg_dump`` runs beside it."""
    listed = mf.list_tables(cur)
    tables = []
    with progress_bar(total=len(listed) + 1, desc="backup", unit="step") as bar:
        for table in listed:
            bar.set_postfix_str(table["name"])
            tables.append(mf.table_content(cur, table, exact_rows=exact_rows))
            bar.update()
        sections = catalog.capture(cur)
        while dump.poll() is None:  # the snapshot must stay open until pg_dump has read it all
            time.sleep(0.05)
        bar.set_postfix_str(f"{len(tables)} tables hashed, pg_dump done")
        bar.update()
    return tables, sections


def _start_pg_dump(tools: binaries.Binaries, conninfo: str, snapshot: str, out: Path, jobs: int,
                   compress: int | None) -> subprocess.Popen:
    dsn, env = binaries.client_env(conninfo)
    dsn = psycopg.conninfo.make_conninfo(dsn, application_name="pgrunbooks/backup_database:pg_dump")
    args = [tools.tool("pg_dump"), "--format=directory", f"--jobs={jobs}", f"--snapshot={snapshot}",
            "--no-password", f"--file={out}", f"--dbname={dsn}"]
    if compress is not None:
        args.append(f"--compress={compress}")
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _dump_roles(tools: binaries.Binaries, conninfo: str, out: Path) -> str:
    """``pg_dumpall --roles-only`` without passwords; ``catalog`` when the server refuses it."""
    dsn, env = binaries.client_env(conninfo)
    result = subprocess.run([tools.tool("pg_dumpall"), "--roles-only", "--no-role-passwords", "--no-password",
                             f"--file={out}", f"--dbname={dsn}"], env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return "pg_dumpall"
    out.unlink(missing_ok=True)
    return "catalog"


def _system_identifier(session: Session) -> str | None:
    """The cluster's system identifier (tells the source cluster apart from a restore target)."""
    try:
        return str(session.scalar("select system_identifier from pg_catalog.pg_control_system()"))
    except psycopg.errors.InsufficientPrivilege:
        return None


def _version(program: str) -> str:
    return subprocess.run([program, "--version"], capture_output=True, text=True).stdout.strip()


def _new_folder(root: Path, database: str, taken: datetime) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    stamp = taken.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        folder = root / (f"{database}-{stamp}" + (f"-{n}" if n else ""))
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise PreconditionError(f"cannot create a backup folder under {root}")


def remove_backup(path: Path | str) -> None:
    """Delete one backup folder (tests, and the runbook's cleanup of a drill copy)."""
    shutil.rmtree(path, ignore_errors=True)
