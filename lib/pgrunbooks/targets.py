"""Target names -> connection settings, without a password ever passing through a parameter.

A runbook's ``target`` parameter is one of:

``local`` / ``local:DBNAME``
    the sandbox under ``.pgrunbooks/`` (database ``victorysync`` unless named).
``env:VAR``
    a DSN held in the environment variable ``VAR`` (it may carry a password; it is redacted).
``service:NAME`` or a bare ``NAME``
    a libpq service from ``pg_service.conf``; its password comes from ``.pgpass``.
a DSN without a password
    ``postgresql://user@host/db`` or ``host=… dbname=…``; passwords go to ``.pgpass``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgrunbooks.errors import ConnectError, TargetError
from pgrunbooks.redact import redact, register_secret

_SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PASSWORD_HINT = (
    "put the password in ~/.pgpass or a pg_service.conf service, or pass the whole DSN "
    "through an environment variable with target=env:VAR"
)


@dataclass(frozen=True)
class Target:
    """A resolved target. ``conninfo`` may hold a password: never print it, print the target."""

    spec: str
    kind: str
    conninfo: str = field(repr=False)

    def __str__(self) -> str:
        return redact(self.spec)

    @property
    def dbname(self) -> str | None:
        return conninfo_to_dict(self.conninfo).get("dbname")

    def with_options(self, **options: object) -> str:
        """The conninfo with extra libpq options (``application_name``, ``connect_timeout``…)."""
        return make_conninfo(self.conninfo, **{k: v for k, v in options.items() if v is not None})


def resolve(spec: str, *, home: Path | str | None = None) -> Target:
    """Resolve a target name without connecting. Bad names raise :class:`TargetError` (exit 3)."""
    if not isinstance(spec, str) or not spec.strip():
        raise TargetError("the target is empty", hint="use local, env:VAR, service:NAME or a DSN without password")
    spec = spec.strip()
    if spec == "local" or spec.startswith("local:"):
        return _local(spec, home)
    if spec.startswith("env:"):
        return _from_env(spec)
    if spec.startswith("service:") or _SERVICE_NAME.match(spec):
        return _service(spec)
    return _dsn(spec)


def _local(spec: str, home: Path | str | None) -> Target:
    from pgrunbooks.sandbox import DEFAULT_DATABASE, Sandbox

    dbname = spec.partition(":")[2] or DEFAULT_DATABASE
    if not _SERVICE_NAME.match(dbname):
        raise TargetError(f"invalid database name in target {spec!r}", hint="use local or local:DBNAME")
    status = Sandbox(home).status()
    if not status.running:
        raise ConnectError(
            f"the local sandbox ({status.home}) is not running", hint="start it with `pgrunbooks sandbox start`"
        )
    return Target(spec, "local", status.conninfo(dbname))


def _from_env(spec: str) -> Target:
    name = spec[len("env:"):]
    if not _ENV_NAME.match(name):
        raise TargetError(f"invalid environment variable name in target {spec!r}")
    dsn = os.environ.get(name)
    if not dsn:
        raise TargetError(f"environment variable {name} is not set or empty", hint=f"export {name}='postgresql://…'")
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        # libpq's message quotes the string it failed on, password included: don't echo it.
        raise TargetError(f"the value of {name} is not a valid PostgreSQL connection string") from None
    register_secret(params.get("password"))
    return Target(spec, "env", dsn)


def _service(spec: str) -> Target:
    name = spec.partition(":")[2] if spec.startswith("service:") else spec
    if not _SERVICE_NAME.match(name):
        raise TargetError(f"invalid service name {name!r}")
    files = service_files()
    if not any(name in _service_names(path) for path in files):
        where = ", ".join(str(p) for p in files) or "no service file found"
        raise TargetError(
            f"unknown target {spec!r}: no libpq service named {name!r} ({where})",
            hint="use local, env:VAR, or define the service in ~/.pg_service.conf (see params/production.template.yaml)",
        )
    return Target(spec, "service", make_conninfo(service=name))


def _dsn(spec: str) -> Target:
    try:
        params = conninfo_to_dict(spec)
    except Exception:
        raise TargetError(
            f"unknown target {redact(spec)!r}", hint="use local, local:DBNAME, env:VAR, service:NAME or a DSN"
        ) from None
    if params.get("password") is not None:
        register_secret(params["password"])
        raise TargetError("a target parameter must not carry a password", hint=PASSWORD_HINT)
    return Target(spec, "dsn", spec)


def service_files() -> list[Path]:
    """The pg_service.conf files libpq would read, in its order, that exist."""
    candidates = []
    if os.environ.get("PGSERVICEFILE"):
        candidates.append(Path(os.environ["PGSERVICEFILE"]))
    else:
        candidates.append(Path.home() / ".pg_service.conf")
    sysconf = os.environ.get("PGSYSCONFDIR")
    candidates += [Path(sysconf) / "pg_service.conf"] if sysconf else [Path("/etc/postgresql-common/pg_service.conf")]
    return [p for p in candidates if p.is_file()]


def _service_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(errors="ignore").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            names.add(line[1:-1].strip())
    return names
