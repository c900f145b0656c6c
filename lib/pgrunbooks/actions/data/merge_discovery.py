"""Where an organization's rows live, read from the catalog (never a hand-written list of tables).

* **Tenant columns**: every column that references ``organizations``' key — by a foreign key
  from ``pg_constraint`` (:func:`pgrunbooks.actions.catalog.referencing_foreign_keys`) or without
  one, as the ``missing_foreign_keys`` check infers it (:func:`~pgrunbooks.actions.catalog.inferred_references`,
  the check's own SQL: the ``org_id`` columns the ``orphaned_rows`` fault leaves without a constraint).
  A merge rewrites each of them from B to A, one set-based ``UPDATE`` per column.
* **Hanging rows**: rows of other tables that reference a moved table's key (recordings → calls,
  call_event_log → calls). The key does not change, so they stay attached to their parent and move
  with it implicitly; the plan says so and counts them.

Tables designed without foreign keys (archives, tables commented "no foreign keys") are left out by
the same rule the check applies: their rows outlive the organizations they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from pgrunbooks.actions import catalog
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.errors import PreconditionError

ORGANIZATIONS = "public.organizations"


@dataclass(frozen=True)
class TenantColumn:
    """One column holding organization ids: ``table.column`` → ``organizations(ref_column)``."""

    table: Relation
    column: str
    ref_column: str
    constraint: str | None  # the foreign key's name; None for an inferred reference
    on_delete: str
    key: tuple[str, ...]  # the table's primary key columns (the undo needs them)
    key_type: str  # format_type of a single-column key, else ""

    @property
    def has_fk(self) -> bool:
        return self.constraint is not None

    @property
    def reference(self) -> str:
        return f"foreign key {self.constraint}" if self.constraint else "no foreign key (inferred)"

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"

    def signature(self) -> tuple[Any, ...]:
        """What must not change between the plan and the apply."""
        return (self.table.oid, self.column, self.constraint, self.key)


@dataclass(frozen=True)
class HangingRows:
    """Rows of ``child`` that reference ``parent``'s key: they move with their parent implicitly."""

    child: Relation
    child_columns: tuple[str, ...]
    parent: TenantColumn
    parent_columns: tuple[str, ...]
    constraint: str | None
    own_tenant_column: bool  # the child also has a tenant column of its own (moved directly as well)


def typed_keys(table: Relation, key: str, keys: sql.Composable) -> sql.Composed:
    """``array(…)`` of ``keys`` (a text[] expression) cast to the type of ``table.key``, via the row type."""
    return sql.SQL(
        "array(select (pg_catalog.jsonb_populate_record(null::{t}, pg_catalog.jsonb_build_object({name}::text, k))).{pk}"
        " from unnest({keys}::text[]) k)"
    ).format(t=table.ident, name=sql.Literal(key), pk=sql.Identifier(key), keys=keys)


def organizations(session) -> Relation:
    """The ``organizations`` table (a :class:`PreconditionError` when the schema has none)."""
    try:
        return catalog.resolve(session, ORGANIZATIONS)
    except Exception as exc:  # UsageError: no such table; here it means the schema is not VictorySync's
        raise PreconditionError(f"this database has no {ORGANIZATIONS} table", hint="merge on a VictorySync database") from exc


def tenant_columns(session, orgs: Relation, problems: list[str] | None = None) -> list[TenantColumn]:
    """Every column referencing ``orgs``' id (foreign keys, then inferred references), in a deterministic order.

    A reference the merge cannot rewrite (a composite key, another column than the id, a
    self-reference of ``organizations``) is appended to ``problems`` as a blocker: left alone,
    its rows would keep pointing at B (or cascade with it).
    """
    out: dict[tuple[int, str], TenantColumn] = {}
    org_key = [c["name"] for c in catalog.primary_key(session, orgs)]
    for ref in catalog.referencing_columns(session, orgs):
        if len(ref["dep_columns"]) != 1 or ref["ref_columns"] != org_key or ref["dependent"].oid == orgs.oid:
            if problems is not None:
                problems.append(f"{ref['dependent']} ({', '.join(ref['dep_columns'])}) references {orgs} "
                                f"({', '.join(ref['ref_columns'])}) in a way the merge cannot rewrite (a composite "
                                "key, another column than the id, or a self-reference): merge those rows by hand first")
            continue
        rel = ref["dependent"]
        pk = catalog.primary_key(session, rel)
        key, key_type = tuple(c["name"] for c in pk), (pk[0]["type"] if len(pk) == 1 else "")
        col = TenantColumn(rel, ref["dep_columns"][0], ref["ref_columns"][0], ref.get("name"),
                           ref["on_delete_sql"], key, key_type)
        out.setdefault((rel.oid, col.column), col)  # a declared key wins over an inference
    return sorted(out.values(), key=lambda c: (c.table.schema, c.table.name, c.column))


def hanging_rows(session, columns: list[TenantColumn]) -> list[HangingRows]:
    """Per moved table, what references its key (declared or inferred), except the organizations table."""
    moved = {c.table.oid for c in columns}
    out: list[HangingRows] = []
    seen: set[tuple[int, tuple[str, ...], int]] = set()
    for parent in columns:
        for ref in catalog.referencing_columns(session, parent.table):
            sig = (ref["dependent"].oid, tuple(ref["dep_columns"]), parent.table.oid)
            if sig in seen:
                continue
            seen.add(sig)
            out.append(HangingRows(ref["dependent"], tuple(ref["dep_columns"]), parent, tuple(ref["ref_columns"]),
                                   ref.get("name"), ref["dependent"].oid in moved))
    return sorted(out, key=lambda h: (h.child.schema, h.child.name, h.child_columns, h.parent.table.name))


def count_rows(cur, col: TenantColumn, org_id: str) -> int:
    """Rows of ``col.table`` whose tenant column is ``org_id`` (through its index, when there is one)."""
    cur.execute(sql.SQL("select count(*) as n from {} where {} = %s").format(col.table.ident, sql.Identifier(col.column)),
                (org_id,))
    return int(cur.fetchone()["n"])


def count_hanging(cur, h: HangingRows, org_id: str) -> int:
    """Rows of ``h.child`` hanging under the rows of ``h.parent`` that belong to ``org_id``."""
    join = sql.SQL(" and ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(pc), sql.Identifier(cc))
        for pc, cc in zip(h.parent_columns, h.child_columns)
    )
    cur.execute(
        sql.SQL("select count(*) as n from {} c where exists (select from {} p where p.{} = %s and {})").format(
            h.child.ident, h.parent.table.ident, sql.Identifier(h.parent.column), join),
        (org_id,),
    )
    return int(cur.fetchone()["n"])


def access_blockers(session, columns: list[TenantColumn], orgs: Relation) -> list[str]:
    """Reasons the current role cannot do the merge: privileges, row-level security, a key the undo cannot name."""
    from pgrunbooks.names import quote_ident

    out = []
    role = quote_ident(session.scalar("select current_user"))
    if not catalog.privileges(session, orgs, "SELECT,UPDATE,DELETE"):
        out.append(f"the current role {role} may not SELECT, UPDATE and DELETE on {orgs}")
    for col in columns:
        if not catalog.privileges(session, col.table, "SELECT,UPDATE,DELETE,INSERT"):
            out.append(f"the current role {role} may not SELECT, UPDATE, DELETE and INSERT on {col.table}")
        # Policies would filter every count and every UPDATE: rows hidden from this role would stay in B.
        if session.scalar("select pg_catalog.row_security_active(%s::oid)", (col.table.oid,)):
            out.append(f"row-level security on {col.table} applies to role {role}: its policies would hide rows of "
                       "the organizations from the merge. Connect as a role with BYPASSRLS (postgres on Supabase)")
        if len(col.key) != 1:
            out.append(f"{col.table} has no single-column primary key: the moved rows could not be named in the "
                       "undo. Add a primary key first")
    return out
