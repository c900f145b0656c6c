"""What a planted fault is: a registry entry plus its SQL files under ``seed/sql/faults/``.

For a fault ``<name>``:

* ``<name>.sql`` plants it. All its statements run in one transaction, sent in one round trip
  (``psycopg.ClientCursor``: psycopg binds the values on the client, with the same adaptation
  as server-side parameters, because the server binds parameters only for a single statement).
* ``<name>.probe.sql`` is one query returning one boolean: is the fault there?
* ``<name>.revert.sql`` (cluster faults only) removes it again.

The files take the fault's ``names`` as ``{key}`` (a ``psycopg.sql.Identifier`` of the name's
parts) and as ``%(key)s`` (the same name as text, quoted as ``quote_ident`` prints it, the form
``to_regclass`` and ``to_regrole`` read), its ``params`` as ``%(key)s``, and ``%(anchor)s``, the
instant the seeded data ends at. Values are always bound, so a literal ``%`` is written ``%%``;
``{`` and ``}`` are placeholders only in the files of a fault that declares ``names``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any, Callable, Mapping, Optional

import psycopg
from psycopg import sql

from pgrunbooks.names import qualified

#: ``hook(conn, fault, values)``: a procedural step that SQL in one transaction cannot do; it
#: calls ``fault.run_sql(conn, values)`` itself, where the fault's SQL file belongs.
Hook = Callable[[psycopg.Connection, "Fault", dict], None]

SCOPES = ("database", "cluster")


def sql_folder():
    """The folder of the faults' SQL files (a package resource)."""
    return resources.files("pgrunbooks.seed").joinpath("sql", "faults")


def data_anchor(conn: psycopg.Connection) -> datetime:
    """The anchor the data was generated with (the day after the newest call), so that the
    faults' timestamps are deterministic too."""
    newest = conn.execute("select max(created_at) from public.calls").fetchone()[0]
    if newest is None:
        return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = newest.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One planted fault. ``docs/faults.md`` is rendered from these fields."""

    name: str
    #: "database" (lives in one database) or "cluster" (roles: seen by every database)
    scope: str
    #: check ids that must report this fault
    finds: tuple[str, ...]
    #: one line for the summary table of docs/faults.md
    summary: str
    #: what it plants, in full
    description: str
    #: why a DBA should care
    why: str
    #: a remark on how the checks report it (docs)
    found_note: str = ""
    #: the objects it plants or changes, qualified (for check authors and tests)
    objects: tuple[str, ...] = ()
    #: other checks that legitimately report it too (not required to)
    also_flagged_by: tuple[str, ...] = ()
    #: names the SQL files use: key -> name parts (see the module docstring)
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: values the SQL files bind: key -> value
    params: Mapping[str, Any] = field(default_factory=dict)
    #: why it needs a Python step, and the step (None: the SQL file alone plants it)
    hook: Optional[Hook] = None
    hook_reason: str = ""

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"fault {self.name}: scope must be one of {SCOPES}, not {self.scope!r}")
        if bool(self.hook) != bool(self.hook_reason):
            raise ValueError(f"fault {self.name}: a hook needs its reason, and a reason its hook")
        for kind in ("", "probe"):
            if not self._file(kind).is_file():
                raise ValueError(f"fault {self.name}: {self.file_name(kind)} is missing")

    # ----------------------------------------------------------------- files

    def file_name(self, kind: str = "") -> str:
        """``<name>.sql``, ``<name>.probe.sql`` or ``<name>.revert.sql``."""
        return f"{self.name}.{kind}.sql" if kind else f"{self.name}.sql"

    def _file(self, kind: str = ""):
        return sql_folder().joinpath(self.file_name(kind))

    def sql_files(self) -> list[str]:
        """The fault's SQL files that exist: apply, probe, revert."""
        return [self.file_name(k) for k in ("", "probe", "revert") if self._file(k).is_file()]

    def statements(self, kind: str = "") -> sql.Composable:
        """The text of one of the fault's files, with its ``{key}`` identifiers filled in."""
        body = sql.SQL(self._file(kind).read_text(encoding="utf-8"))
        if not self.names:
            return body
        return body.format(**{key: sql.Identifier(*parts) for key, parts in self.names.items()})

    def values(self, anchor: Optional[datetime] = None) -> dict[str, Any]:
        """The values the fault's SQL binds: its names as text, its params, and *anchor*."""
        values: dict[str, Any] = {key: qualified(*parts) for key, parts in self.names.items()}
        values.update(self.params)
        if anchor is not None:
            values["anchor"] = anchor
        return values

    # ----------------------------------------------------------------- actions

    def run_sql(self, conn: psycopg.Connection, values: dict, kind: str = "") -> None:
        """Run every statement of one of the fault's files, in one transaction."""
        with conn.transaction(), psycopg.ClientCursor(conn) as cur:
            cur.execute(self.statements(kind), values)

    def apply(self, conn: psycopg.Connection) -> None:
        """Plant the fault (*conn*: superuser, autocommit, to a seeded database)."""
        binds_anchor = "%(anchor)s" in self._file().read_text(encoding="utf-8")
        values = self.values(data_anchor(conn) if binds_anchor else None)
        if self.hook is not None:
            self.hook(conn, self, values)
        else:
            self.run_sql(conn, values)

    def present(self, conn: psycopg.Connection) -> bool:
        """Whether the fault is there (its probe; no row counts as no)."""
        row = conn.execute(self.statements("probe"), self.values()).fetchone()
        return bool(row and row[0])

    @property
    def revert(self) -> Optional[Callable[[psycopg.Connection], None]]:
        """``revert(conn)`` removes the fault, or ``None`` when it has no ``<name>.revert.sql``
        (database faults go away with their database)."""
        if not self._file("revert").is_file():
            return None
        return lambda conn: self.run_sql(conn, self.values(), "revert")


@dataclass(frozen=True, kw_only=True)
class RuntimeFault:
    """A fault of a *running* database (scope ``runtime``): live sessions, a slot or a policy that
    exists only while something holds it. Started and stopped on demand (``pgrunbooks sandbox
    fault start|stop NAME``, or ``with fault.context(conninfo) as planted:``), never by
    ``seed --faults``. The context manager is ``pgrunbooks.seed.incidents.<name>``."""

    name: str
    #: one line for the summary table of docs/faults.md
    summary: str
    #: what it plants, in full
    description: str
    #: the incident playbook (``runbooks/incidents/<playbook>.ipynb``) that must name it first
    playbook: str
    #: what the playbook's first finding says
    found_note: str
    #: what resolves it (the trainee's fix in the game day; ``hold.fix`` does the same headlessly)
    fix: str
    scope: str = "runtime"

    def __post_init__(self) -> None:
        if self.scope != "runtime":
            raise ValueError(f"runtime fault {self.name}: scope must be 'runtime'")

    @property
    def start_command(self) -> str:
        return f"pgrunbooks sandbox fault start {self.name}"

    @property
    def stop_command(self) -> str:
        return f"pgrunbooks sandbox fault stop {self.name}"

    def context(self, conninfo: str, **options: Any):
        """The fault's context manager on *conninfo* (an admin conninfo to the seeded database)."""
        from pgrunbooks.seed import incidents  # late: incidents reads the database faults of this package

        return incidents.INCIDENTS[self.name](conninfo, **options)
