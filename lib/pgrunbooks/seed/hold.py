"""Hold one runtime fault in its own process until SIGTERM, and the controls around it.

``python -m pgrunbooks.seed.hold NAME --conninfo CONNINFO [--ready-file PATH]`` (or the conninfo in
``$PGRUNBOOKS_HOLD_CONNINFO``, which is how :func:`start` passes it) plants the
fault (``pgrunbooks.seed.incidents.<NAME>``), writes what it planted as JSON to the ready file,
and holds it until SIGTERM/SIGINT (or ``--max-seconds``, one hour by default, so a forgotten
fault cannot outlive the afternoon), then undoes it and exits 0.

:func:`start` / :func:`stop` / :func:`running` keep one pid file per fault under
``<sandbox home>/faults/`` (``pgrunbooks sandbox fault …`` and the game day notebook use them);
:func:`present` says whether a planted fault is still visible and :func:`fix` resolves it the
way its playbook's action would (the game day's headless fix).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import psycopg
from psycopg import sql

from pgrunbooks.errors import SandboxError, UsageError

from .faults.runtime_catalogue import RUNTIME_FAULT_LIST
from .incidents import Planted

#: every runtime fault by name
RUNTIME: dict = {f.name: f for f in RUNTIME_FAULT_LIST}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
MAX_SECONDS = 3600.0
#: how :func:`start` hands the conninfo to the holder (not on its command line, which `ps` shows)
CONNINFO_ENV = "PGRUNBOOKS_HOLD_CONNINFO"


def runtime_fault(name: str):
    """The catalogue entry of *name*; :class:`UsageError` (exit 3) listing the valid ones."""
    if name not in RUNTIME:
        raise UsageError(f"unknown runtime fault {name!r}", hint="one of: " + ", ".join(RUNTIME))
    return RUNTIME[name]


# ----------------------------------------------------------------------------- the holder


def hold(name: str, conninfo: str, ready_file: Optional[Path] = None, max_seconds: float = MAX_SECONDS) -> int:
    """Plant *name*, report it, hold it until a signal or *max_seconds*, undo it."""
    fault = runtime_fault(name)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with fault.context(conninfo) as planted:
        report = json.dumps(planted.as_dict())
        if ready_file:
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(report)
            tmp.replace(ready_file)  # whole or absent: the starter polls for it
        print(report, flush=True)
        done.wait(max_seconds)
    print(f"{name}: undone", flush=True)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pgrunbooks.seed.hold", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="runtime fault: " + ", ".join(RUNTIME))
    parser.add_argument("--conninfo", default=os.environ.get(CONNINFO_ENV),
                        help=f"admin conninfo to the seeded database (default: ${CONNINFO_ENV})")
    parser.add_argument("--ready-file", type=Path, help="write the planted state here (JSON) once visible")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="undo and exit after this long")
    args = parser.parse_args(argv)
    if not args.conninfo:
        parser.error(f"--conninfo (or ${CONNINFO_ENV}) is required")
    try:
        return hold(args.name, args.conninfo, args.ready_file, args.max_seconds)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3


# ----------------------------------------------------------------------------- pid files


def _files(state_dir: Path, name: str) -> tuple[Path, Path, Path]:
    return state_dir / f"{name}.pid", state_dir / f"{name}.json", state_dir / f"{name}.log"


def _alive_holder(pid: int) -> bool:
    """Whether *pid* is alive and is one of our holders (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if b"pgrunbooks.seed.hold" not in cmdline:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # exited, not yet reaped by its parent
    return True


def running(state_dir: Path) -> dict[str, dict]:
    """Runtime faults held now: name -> {"pid": …, "planted": {…}}; stale pid files are removed."""
    held = {}
    for name in RUNTIME:
        pid_file, ready, log = _files(state_dir, name)
        if not pid_file.is_file():
            continue
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            if _alive_holder(pid):
                planted = json.loads(ready.read_text()) if ready.is_file() else {}
                held[name] = {"pid": pid, "planted": planted}
                continue
        for f in (pid_file, ready):
            f.unlink(missing_ok=True)
    return held


def start(name: str, conninfo: str, state_dir: Path, *, timeout: float = START_TIMEOUT) -> dict:
    """Start a holder process for *name*; return ``{"pid", "planted"}`` once the fault is visible.
    Already held: the running one is returned (``"already": True``)."""
    runtime_fault(name)
    state_dir.mkdir(parents=True, exist_ok=True)
    current = running(state_dir).get(name)
    if current:
        return {**current, "already": True}
    pid_file, ready, log = _files(state_dir, name)
    ready.unlink(missing_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pgrunbooks.seed.hold", name, "--ready-file", str(ready)],
            env=dict(os.environ, **{CONNINFO_ENV: conninfo}),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + timeout
    while not ready.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait(5)
            pid_file.unlink(missing_ok=True)
            tail = log.read_text(errors="replace")[-1500:]
            raise SandboxError(f"runtime fault {name} did not start", hint=tail.strip() or None)
        time.sleep(0.05)
    # Popen's child is ours: reap it in the background when it exits, so it is not a zombie.
    threading.Thread(target=process.wait, daemon=True).start()
    return {"pid": process.pid, "planted": json.loads(ready.read_text())}


def stop(name: str, state_dir: Path, *, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM *name*'s holder and wait until it has undone the fault; False if none was held."""
    runtime_fault(name)
    current = running(state_dir).get(name)
    pid_file, ready, _ = _files(state_dir, name)
    if not current:
        return False
    pid = current["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive_holder(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    for f in (pid_file, ready):
        f.unlink(missing_ok=True)
    return True


# ----------------------------------------------------------------------------- probe and fix


def _planted(planted) -> Planted:
    if isinstance(planted, Planted):
        return planted
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(planted).items()}
    return Planted(**values)


def present(conninfo: str, planted) -> bool:
    """Whether the planted fault (a :class:`Planted` or its ``as_dict()``) is still visible."""
    p = _planted(planted)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if p.kind in ("leaking_policy", "lockout_policy"):
            from .faults.plant import FAULTS

            return FAULTS["leaky_policy" if p.kind == "leaking_policy" else "locking_out_policy"].present(conn)
        if p.kind == "wal_retaining_slot":
            return conn.execute("select exists (select 1 from pg_catalog.pg_replication_slots where slot_name = %s)",
                                (p.slot,)).fetchone()[0]
        if p.kind == "lock_queue":
            return conn.execute(
                "select exists (select 1 from pg_catalog.pg_stat_activity where pid = any(%s)"
                " and (wait_event_type = 'Lock' or (pid = %s and state = 'idle in transaction')))",
                (list(p.pids), p.root_pid)).fetchone()[0]
        if p.kind == "idle_in_transaction_holders":
            return conn.execute("select exists (select 1 from pg_catalog.pg_stat_activity where pid = any(%s)"
                                " and state like 'idle in transaction%%')", (list(p.pids),)).fetchone()[0]
        return conn.execute("select exists (select 1 from pg_catalog.pg_stat_activity where pid = any(%s))",
                            (list(p.pids),)).fetchone()[0]


def fix(conninfo: str, planted) -> str:
    """Resolve the planted fault as its playbook's action would; returns what was done."""
    p = _planted(planted)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if p.kind == "leaking_policy":
            conn.execute(sql.SQL("drop policy if exists {} on public.billing_records").format(sql.Identifier(p.policy)))
            return f"dropped policy {p.policy} on public.billing_records"
        if p.kind == "lockout_policy":
            member = sql.SQL("org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid()))")
            with conn.transaction():
                conn.execute("set local role postgres")
                conn.execute(sql.SQL("alter policy {} on public.invoices using ({}) with check ({})").format(
                    sql.Identifier(p.policy), member, member))
            return f"restored the membership check of policy {p.policy} on public.invoices"
        if p.kind == "wal_retaining_slot":
            conn.execute("select pg_catalog.pg_drop_replication_slot(slot_name) from pg_catalog.pg_replication_slots"
                         " where slot_name = %s and not active", (p.slot,))
            return f"dropped replication slot {p.slot}"
        targets = [p.root_pid] if p.kind == "lock_queue" else list(p.pids)
        killed = conn.execute("select count(*) filter (where pg_catalog.pg_terminate_backend(pid))"
                              " from pg_catalog.pg_stat_activity where pid = any(%s)", (targets,)).fetchone()[0]
        return f"terminated {killed} session(s)"


# ----------------------------------------------------------------------------- game day


#: runtime fault -> the cause kinds its playbook may name it by (first: the playbook's; then the check's)
EXPECTED_CAUSE = {
    "regressed_statement": ("regressed_statement",),
    "lock_queue": ("lock_queue",),
    "temp_spills": ("temp_spills",),
    "connection_flood": ("connection_flood",),
    "idle_in_transaction_holders": ("idle_in_transaction",),
    "wal_retaining_slot": ("wal_retaining_slot",),
    "leaking_policy": ("leak", "tenant_isolation"),
    "lockout_policy": ("locked_out", "tenant_isolation"),
}


def diagnose(session, name: str, *, seconds: float = 2.0, samples: int = 200, planted=None) -> list[dict]:
    """The game day's diagnosis of *name*, as its playbook's library reaches it: evidence captured
    for *seconds* and ranked (high_load, disk_space, connections_exhausted); for the tenant faults
    the playbook's probe of a sample member on the planted table (*planted*: what :func:`start`
    returned), else the ``tenant_isolation`` check. Returns ``[{"kind", "title", "object"}]``, most
    likely first (empty: nothing found). Read-only."""
    playbook = runtime_fault(name).playbook
    if playbook == "tenant_data_exposure":
        return _tenant_diagnosis(session, (dict(planted or {})).get("table"))
    from pgrunbooks.evidence import capture, rank

    ev = capture(session, seconds=seconds, samples=samples, disk=playbook == "disk_space", progress=False)
    if playbook == "connections_exhausted":
        from pgrunbooks.incidents import connections

        causes = connections.rank(ev, idle_in_transaction_s=0.5)
    else:
        causes = rank(ev, playbook)
    return [{"kind": c.kind, "title": c.title, "object": c.object} for c in causes
            if c.severity in ("warning", "critical")]


def _tenant_diagnosis(session, table: Optional[str]) -> list[dict]:
    serious = ("warning", "critical")
    try:
        from pgrunbooks.incidents import exposure
    except ImportError:  # the playbook's library is not there: its check says the same, for every table
        exposure = None
    if exposure is not None and table:
        result = exposure.probe(session, exposure.sample_member(session), table=table)
        found = exposure.findings(result)
    else:
        from pgrunbooks.notebook.diagnostics import diagnose as run_checks

        found = run_checks(session, ["tenant_isolation"]).findings
    return [{"kind": f.check_id, "title": f.title, "object": f.object} for f in found
            if str(getattr(f.severity, "value", f.severity)) in serious]


def named_first(causes: list[dict], name: str, planted=None) -> bool:
    """Whether the first cause is the planted one: its kind, and for the tenant faults its table."""
    if not causes or causes[0]["kind"].split(".")[-1] not in EXPECTED_CAUSE[runtime_fault(name).name]:
        return False
    table = (dict(planted or {})).get("table")
    return not (runtime_fault(name).playbook == "tenant_data_exposure" and table) \
        or str(causes[0]["object"]).startswith(table)


if __name__ == "__main__":
    sys.exit(main())
