"""Where ``pg_stat_statements`` lives in a database, and which of its version-dependent columns it has.

Checks, evidence capture, ``EXPLAIN`` of a hot statement and the metric history all read the
view; each used to find its schema its own way. One query answers all of them: the schema the
extension was created in (Supabase: ``extensions``), its version, whether the current role has
``USAGE`` on that schema, and the view's column names (1.8 renamed ``total_time`` to
``total_exec_time``, 1.11 added ``stats_since`` and renamed ``blk_read_time``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from psycopg import sql

#: one row when the extension is installed in the current database, none otherwise
LOCATE_SQL = """
select n.nspname::text as schema, e.extversion::text as version,
       pg_catalog.has_schema_privilege(n.oid, 'USAGE') as usable,
       -- from the catalog, not to_regclass(): that one needs USAGE on the schema, which may be missing
       array(select a.attname::text from pg_catalog.pg_attribute a
             join pg_catalog.pg_class c on c.oid = a.attrelid
             where c.relnamespace = n.oid and c.relname = 'pg_stat_statements'
               and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns
from pg_catalog.pg_extension e
join pg_catalog.pg_namespace n on n.oid = e.extnamespace
where e.extname = 'pg_stat_statements'
"""


@dataclass(frozen=True)
class Pgss:
    """The installed extension: ``schema``, ``version``, ``usable`` (USAGE on the schema) and ``columns``."""

    schema: str
    version: str
    usable: bool
    columns: frozenset[str]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Pgss":
        """From a row of :data:`LOCATE_SQL` (a dict row, as every pgrunbooks session returns)."""
        return cls(row["schema"], row["version"], bool(row["usable"]), frozenset(row["columns"] or ()))

    def relation(self, name: str = "pg_stat_statements") -> sql.Identifier:
        """``schema.name`` quoted: the view, or ``pg_stat_statements_info`` / ``_reset`` beside it."""
        return sql.Identifier(self.schema, name)

    def column(self, *candidates: str) -> sql.Identifier:
        """The first of ``candidates`` (newest name first) the view has; the last one when it has none
        (the view is unreadable: the statement then fails with the server's own reason)."""
        return sql.Identifier(next((c for c in candidates if c in self.columns), candidates[-1]))

    @property
    def unusable_reason(self) -> str | None:
        """Why the current role cannot read the view, with the grant that fixes it; None when it can."""
        if self.usable:
            return None
        return (f"no USAGE on schema {self.schema} (pg_stat_statements): "
                f"grant usage on schema {self.schema} to the monitoring role")


#: why statements are missing when the extension is not there
NOT_INSTALLED = "pg_stat_statements is not installed in this database (create extension pg_stat_statements)"


def locate(session) -> Pgss | None:
    """The extension in ``session``'s database (a :class:`pgrunbooks.db.Session`), or None."""
    rows = session.fetch(LOCATE_SQL)
    return Pgss.from_row(rows[0]) if rows else None
