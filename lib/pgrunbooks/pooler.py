"""A real pgbouncer in front of a sandbox or test server: transaction mode, loopback only.

Supabase puts a transaction-mode pooler (Supavisor, port 6543) in front of every project; the
runbooks must work through one (``SET LOCAL`` only, no session state kept between
transactions). :func:`start` writes ``pgbouncer.ini`` and its ``userlist.txt`` in a fresh
temporary directory, picks a free loopback port, starts Debian's ``/usr/sbin/pgbouncer`` (as the
sandbox's service account when we are root: pgbouncer refuses to run as root), waits until its
admin console answers and returns a :class:`Pooler`; :func:`stop` ends it and removes the
directory. Clients authenticate with ``trust`` over 127.0.0.1 only (the sandbox's own rule for
its unix socket); pgbouncer reaches the server over the server's unix socket.

:func:`admin` reads pgbouncer's own view through its admin console (the ``pgbouncer`` database):
``SHOW POOLS``, ``SHOW CLIENTS``, ``SHOW STATS``. The console speaks only the simple query
protocol, so every statement goes through a :class:`psycopg.ClientCursor` (parameters are merged
client-side, nothing is prepared) on an autocommit connection.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from pgrunbooks.errors import SandboxError
from pgrunbooks.sandbox import ADMIN_USER, DEFAULT_USER, _service_account, free_port

PGBOUNCER = "/usr/sbin/pgbouncer"
INSTALL_HINT = "install it: apt-get install -y pgbouncer (the Makefile's setup does)"
START_TIMEOUT_S = 15.0
#: roles a pooler admits (trust, loopback): the sandbox's API-facing and admin roles
DEFAULT_USERS = (DEFAULT_USER, ADMIN_USER, "authenticator", "pgrunbooks_monitor")
#: the admin console's SHOW commands :func:`admin` reads (fixed words: never built from input)
SHOW = {name: f"show {name}" for name in ("pools", "clients", "stats", "servers", "config")}


@dataclass
class Pooler:
    """A running pgbouncer: where it listens and how to reach it (no password anywhere)."""

    port: int
    directory: Path
    pid: int
    server_conninfo: str = field(repr=False)
    pool_mode: str = "transaction"
    pool_size: int = 5
    admin_user: str = ADMIN_USER
    host: str = "127.0.0.1"

    def conninfo(self, dbname: str, user: str = DEFAULT_USER) -> str:
        """A libpq conninfo for ``dbname`` through the pooler (what a ``service:`` or ``env:`` target holds)."""
        return make_conninfo(host=self.host, port=self.port, dbname=dbname, user=user)

    def admin_conninfo(self) -> str:
        """The admin console (database ``pgbouncer``)."""
        return self.conninfo("pgbouncer", self.admin_user)

    @property
    def log_file(self) -> Path:
        return self.directory / "pgbouncer.log"

    @property
    def running(self) -> bool:
        """Alive and not a zombie (a daemon's exit is reaped by init, which may take its time)."""
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except (OSError, IndexError):
            pass
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def binary() -> Path:
    """pgbouncer's executable, or :class:`SandboxError` saying how to install it."""
    found = Path(PGBOUNCER) if Path(PGBOUNCER).exists() else (Path(p) if (p := shutil.which("pgbouncer")) else None)
    if found is None:
        raise SandboxError("pgbouncer is not installed (no /usr/sbin/pgbouncer, none on PATH)", hint=INSTALL_HINT)
    return found


def _ini(server: dict[str, Any], *, port: int, directory: Path, pool_mode: str, pool_size: int,
         admin_user: str, max_client_conn: int) -> str:
    # Every database name maps to the same server: a clone created after the start is reachable too.
    backend = make_conninfo(host=server.get("host") or "/tmp", port=server.get("port") or 5432)
    lines = [
        "[databases]",
        f"* = {backend}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        f"unix_socket_dir = {directory}",
        "auth_type = trust",
        f"auth_file = {directory / 'userlist.txt'}",
        f"admin_users = {admin_user}",
        f"stats_users = {admin_user}",
        f"pool_mode = {pool_mode}",
        f"default_pool_size = {pool_size}",
        "min_pool_size = 0",
        "reserve_pool_size = 0",
        f"max_client_conn = {max_client_conn}",
        # libpq and psycopg send it; pgbouncer would refuse the connection otherwise.
        "ignore_startup_parameters = extra_float_digits",
        "server_reset_query = discard all",
        "server_check_delay = 1",
        f"logfile = {directory / 'pgbouncer.log'}",
        f"pidfile = {directory / 'pgbouncer.pid'}",
        "log_connections = 0",
        "log_disconnections = 0",
        "",
    ]
    return "\n".join(lines)


def start(server_conninfo: str, *, pool_mode: str = "transaction", pool_size: int = 5,
          users: tuple[str, ...] = DEFAULT_USERS, admin_user: str = ADMIN_USER, port: int | None = None,
          max_client_conn: int = 200, timeout: float = START_TIMEOUT_S) -> Pooler:
    """Start pgbouncer in front of the server ``server_conninfo`` points at (its host and port;
    a unix socket directory works) and return once its admin console answers."""
    exe = binary()
    if pool_mode not in ("transaction", "session", "statement"):
        raise SandboxError(f"unknown pool_mode {pool_mode!r}", hint="transaction, session or statement")
    server = conninfo_to_dict(server_conninfo)
    directory = Path(tempfile.mkdtemp(prefix="pgrb-pooler-"))
    owner = _service_account()
    port = port or free_port()
    (directory / "pgbouncer.ini").write_text(_ini(server, port=port, directory=directory, pool_mode=pool_mode,
                                                  pool_size=pool_size, admin_user=admin_user,
                                                  max_client_conn=max_client_conn))
    # trust still needs the user to be listed; no password is written.
    (directory / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in dict.fromkeys((*users, admin_user))))
    kwargs: dict[str, Any] = {}
    if owner:
        directory.chmod(0o755)
        for path in (directory, *directory.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        kwargs = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [], "cwd": "/"}
    result = subprocess.run([str(exe), "-d", "-q", str(directory / "pgbouncer.ini")], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, **kwargs)
    if result.returncode != 0:
        log = _tail(directory / "pgbouncer.log")
        shutil.rmtree(directory, ignore_errors=True)
        raise SandboxError(f"pgbouncer did not start: {result.stderr.strip() or result.stdout.strip()}\n{log}",
                           hint="see the message above; is the port free?")
    pooler = Pooler(port=port, directory=directory, pid=_read_pid(directory, timeout), server_conninfo=server_conninfo,
                    pool_mode=pool_mode, pool_size=pool_size, admin_user=admin_user)
    _wait_ready(pooler, timeout)
    return pooler


def stop(pooler: Pooler, *, timeout: float = 10.0) -> None:
    """Stop pgbouncer and remove its directory. SIGTERM is its immediate shutdown (clients are
    disconnected; SIGINT would wait for them, which a test's or a sandbox's pooler never needs)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pooler.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pooler.running and time.monotonic() < deadline:
        time.sleep(0.02)
    if pooler.running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pooler.pid, signal.SIGKILL)
    shutil.rmtree(pooler.directory, ignore_errors=True)


@contextlib.contextmanager
def running(server_conninfo: str, **options: Any) -> Iterator[Pooler]:
    """:func:`start` … :func:`stop` as a context manager."""
    pooler = start(server_conninfo, **options)
    try:
        yield pooler
    finally:
        stop(pooler)


def admin(pooler: Pooler | str, *, connect_timeout: int = 5) -> dict[str, list[dict[str, Any]]]:
    """pgbouncer's own view: ``{"pools": [...], "clients": [...], "stats": [...]}``, each a list of
    row dicts as ``SHOW POOLS`` / ``SHOW CLIENTS`` / ``SHOW STATS`` return them. ``pooler`` is a
    :class:`Pooler` or the conninfo of an admin console (database ``pgbouncer``)."""
    conninfo = pooler.admin_conninfo() if isinstance(pooler, Pooler) else pooler
    return {name: show(conninfo, name, connect_timeout=connect_timeout) for name in ("pools", "clients", "stats")}


def show(conninfo: str, what: str, *, connect_timeout: int = 5) -> list[dict[str, Any]]:
    """One ``SHOW <what>`` of the admin console at ``conninfo`` (simple query protocol)."""
    if what not in SHOW:
        raise SandboxError(f"unknown admin console command SHOW {what}", hint="one of: " + ", ".join(SHOW))
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=connect_timeout,
                         cursor_factory=psycopg.ClientCursor) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            # A fixed statement from SHOW, never user input; the console takes no parameters.
            cur.execute(SHOW[what], prepare=False)
            return cur.fetchall()


def _read_pid(directory: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int((directory / "pgbouncer.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            if time.monotonic() > deadline:
                raise SandboxError(f"pgbouncer wrote no pid file:\n{_tail(directory / 'pgbouncer.log')}") from None
            time.sleep(0.05)


def _wait_ready(pooler: Pooler, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            show(pooler.admin_conninfo(), "pools", connect_timeout=2)
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline or not pooler.running:
                log = _tail(pooler.log_file)
                stop(pooler)
                raise SandboxError(f"pgbouncer on port {pooler.port} did not answer: {exc}\n{log}") from None
            time.sleep(0.1)


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no pgbouncer log)"
