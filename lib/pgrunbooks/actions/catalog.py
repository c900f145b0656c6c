"""Catalog look-ups for actions: names become catalog rows before they become SQL.

A table or index name given by a user (or a params file) is treated as data: it is
resolved with ``to_regclass(%s)`` (a bound value, never spliced into SQL) and must exist
with the expected kind; the SQL then uses the catalog's own schema and name through
``psycopg.sql.Identifier``. Anything else (``calls; drop table x``, a missing table, a
view where a table is needed) is a :class:`~pgrunbooks.errors.UsageError` before
anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgrunbooks.checks import REGISTRY
from pgrunbooks.errors import PreconditionError, UsageError
from pgrunbooks.names import qualified

MAX_NAME = 200
TABLE_KINDS = ("r", "p")  # ordinary, partitioned
INDEX_KINDS = ("i", "I")  # index, partitioned index


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    kind: str

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def qualified(self) -> str:
        """``schema.name`` as PostgreSQL's ``quote_ident`` prints it (for display and matching findings)."""
        return qualified(self.schema, self.name)

    def __str__(self) -> str:
        return self.qualified


def lookup(session, name: Any, *, what: str = "table") -> Relation:
    """The catalog entry for ``name`` (``schema.name`` or a name on the search_path), of any kind.

    Raises :class:`UsageError` when it does not exist or is not a plausible name at all.
    The name is only ever a bound value.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise UsageError(f"invalid {what} name {name!r}", hint=f"give an existing {what} as schema.name")
    try:
        row = session.fetch_one(
            "select c.oid::int8 as oid, n.nspname as schema, c.relname as name, c.relkind::text as kind"
            " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
            " where c.oid = pg_catalog.to_regclass(%s)",
            (name.strip(),),
        )
    except psycopg.errors.InvalidName:
        # to_regclass raises on malformed names (unbalanced quotes...): still just "no such table".
        row = None
    if row is None:
        raise UsageError(f"no {what} named {name!r} in the database", hint=f"give an existing {what} as schema.name")
    return Relation(int(row["oid"]), row["schema"], row["name"], row["kind"])


def resolve(session, name: Any, *, kinds: tuple[str, ...] = TABLE_KINDS, what: str = "table") -> Relation:
    """:func:`lookup`, and the relation must be of one of ``kinds`` (else :class:`UsageError`)."""
    rel = lookup(session, name, what=what)
    require_kind(rel, kinds, what)
    return rel


def require_kind(rel: Relation, kinds: tuple[str, ...], what: str) -> None:
    """Raise :class:`UsageError` unless ``rel`` is of one of ``kinds``."""
    if rel.kind not in kinds:
        raise UsageError(f"{rel} is not a {what} (relkind {rel.kind!r})")


def ensure_unchanged(session, rel: Relation) -> None:
    """Raise :class:`PreconditionError` when ``rel`` was dropped or renamed since it was resolved."""
    row = session.fetch_one(
        "select n.nspname as schema, c.relname as name from pg_catalog.pg_class c"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = %s",
        (rel.oid,),
    )
    if row is None or (row["schema"], row["name"]) != (rel.schema, rel.name):
        raise PreconditionError(f"{rel} was dropped or renamed since the plan", hint="make a new plan")


def columns(session, rel: Relation) -> list[dict[str, Any]]:
    """Columns in order: name, type (format_type), not_null, generated, identity."""
    return session.fetch(
        "select a.attname as name, pg_catalog.format_type(a.atttypid, a.atttypmod) as type,"
        " a.attnotnull as not_null, a.attgenerated::text as generated, a.attidentity::text as identity"
        " from pg_catalog.pg_attribute a where a.attrelid = %s and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        (rel.oid,),
    )


def primary_key(session, rel: Relation) -> list[dict[str, Any]]:
    """The primary key's columns (name, type) in key order; empty when there is none."""
    return session.fetch(
        "select a.attname as name, pg_catalog.format_type(a.atttypid, a.atttypmod) as type"
        " from pg_catalog.pg_constraint con"
        " cross join lateral unnest(con.conkey) with ordinality as k(attnum, ord)"
        " join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum"
        " where con.conrelid = %s and con.contype = 'p' order by k.ord",
        (rel.oid,),
    )


FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def referencing_foreign_keys(session, rel: Relation) -> list[dict[str, Any]]:
    """Foreign keys that reference ``rel``: name, dependent table, column pairs, ON DELETE action."""
    rows = session.fetch(
        "select con.conname as name, con.conrelid::int8 as dep_oid, dn.nspname as dep_schema,"
        " dc.relname as dep_name, con.confdeltype::text as on_delete,"
        " array(select a.attname from unnest(con.conkey) with ordinality k(n, o)"
        "       join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.o)::text[] as dep_columns,"
        " array(select a.attname from unnest(con.confkey) with ordinality k(n, o)"
        "       join pg_catalog.pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.o)::text[] as ref_columns"
        " from pg_catalog.pg_constraint con"
        " join pg_catalog.pg_class dc on dc.oid = con.conrelid"
        " join pg_catalog.pg_namespace dn on dn.oid = dc.relnamespace"
        " where con.contype = 'f' and con.confrelid = %s and con.conparentid = 0"
        " order by dn.nspname, dc.relname, con.conname",
        (rel.oid,),
    )
    for r in rows:
        r["dependent"] = Relation(int(r["dep_oid"]), r["dep_schema"], r["dep_name"], "r")
        r["on_delete_sql"] = FK_ACTIONS.get(r["on_delete"], r["on_delete"])
    return rows


def inferred_references(session, rel: Relation) -> list[dict[str, Any]]:
    """Columns that reference ``rel``'s key **without** a foreign key, shaped like :func:`referencing_foreign_keys`.

    The inference is the ``missing_foreign_keys`` check's own SQL (one query, not a second
    heuristic), run over every user schema with the check's default exclusions (archive
    tables, tables commented "no foreign keys"). Each row has ``name`` None, ``inferred``
    True, ``on_delete_sql`` ``"none (no foreign key)"`` and the check's ``evidence``.
    """
    check = REGISTRY["missing_foreign_keys"]
    schemas = session.scalar(
        "select coalesce(array_agg(n.nspname::text), '{}') from pg_catalog.pg_namespace n"
        " where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'"
    )
    rows = session.fetch(check.sql(session.server_version), {**check.thresholds, "schemas": schemas})
    out = []
    for r in rows:
        if int(r["referenced_oid"]) != rel.oid:
            continue
        out.append({
            "name": None,
            "inferred": True,
            "evidence": r["evidence"],
            "indexed": r["indexed"],
            "dep_oid": int(r["table_oid"]),
            "dep_schema": r["schema"],
            "dep_name": r["table"],
            "dep_columns": [r["column"]],
            "ref_columns": [r["referenced_column"]],
            "on_delete": None,
            "on_delete_sql": "none (no foreign key)",
            "dependent": Relation(int(r["table_oid"]), r["schema"], r["table"], "r"),
        })
    return out


def referencing_columns(session, rel: Relation) -> list[dict[str, Any]]:
    """Everything whose rows point at ``rel``: its referencing foreign keys, then its inferred references."""
    return referencing_foreign_keys(session, rel) + inferred_references(session, rel)


def user_triggers(session, rel: Relation) -> list[str]:
    """Names of enabled user triggers on ``rel`` (they fire on the action's writes)."""
    return [
        r["name"]
        for r in session.fetch(
            "select t.tgname as name from pg_catalog.pg_trigger t"
            " where t.tgrelid = %s and not t.tgisinternal and t.tgenabled <> 'D' order by t.tgname",
            (rel.oid,),
        )
    ]


def privileges(session, rel: Relation, privs: str) -> bool:
    """``has_table_privilege(current_user, rel, privs)`` (e.g. ``'SELECT,DELETE'``: any of them)."""
    needed = [p.strip() for p in privs.split(",") if p.strip()]
    return all(
        session.scalar("select pg_catalog.has_table_privilege(%s::oid, %s)", (rel.oid, p)) for p in needed
    )
