"""Unique keys a merge could collide on, and the rule that resolves each collision.

Moving B's rows to A rewrites one column per table. Only a unique index that **contains** that
column can then reject a row: ``org_users (org_id, user_id)`` when someone is a member of both
organizations. Unique keys without it (``phone_numbers.number``, ``invoices.number``) hold the
same values before and after, so they cannot collide. Every index that can collide has a rule
(``on_collision``, by index/constraint name or by table; default ``fail``, except
``org_users`` → ``keep_higher_role``). A ``fail`` with real collisions refuses the plan and names
the index and the colliding keys, as Launchpad's ``merge_people`` does.

A collision's loser is deleted (and kept in full in the audit record for the undo):

* ``keep_into``: A's row stays, B's is deleted;
* ``keep_from``: A's row is deleted, B's row moves;
* ``keep_higher_role``: the row with the higher ``role`` (owner > admin > member > viewer) wins;
  on a tie A's stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from psycopg import sql

from pgrunbooks.actions import catalog
from pgrunbooks.actions.data.merge_discovery import TenantColumn, typed_keys
from pgrunbooks.errors import UsageError

RULES = ("keep_higher_role", "keep_into", "keep_from", "fail")
DEFAULT_RULES = {"public.org_users": "keep_higher_role"}
ROLE_RANK = {"owner": 4, "admin": 3, "member": 2, "viewer": 1}
ROLE_COLUMN = "role"
SHOWN_KEYS = 10


@dataclass(frozen=True)
class UniqueKey:
    """A unique index of a moved table that contains its tenant column."""

    column: TenantColumn
    name: str  # the index's name (the constraint's, for a unique constraint)
    others: tuple[str, ...]  # its other key columns
    nulls_not_distinct: bool
    computable: bool  # plain columns, no predicate: collisions can be computed
    rule: str

    @property
    def label(self) -> str:
        cols = ", ".join((self.column.column,) + self.others)
        return f"{self.name} on {self.column.table} ({cols})"


def normalise_rules(on_collision: Any) -> dict[str, str]:
    """``on_collision`` as ``{index name or table: rule}``, defaults first; :class:`UsageError` when malformed."""
    if on_collision is None:
        on_collision = {}
    if not isinstance(on_collision, Mapping):
        raise UsageError(f"on_collision must be a mapping of unique key or table to rule, not {on_collision!r}",
                         hint=f"e.g. {{'org_users_org_id_user_id_key': 'keep_into'}}; rules: {', '.join(RULES)}")
    # A default yields to any rule the caller gives for the same table (bare or qualified name).
    given = {str(k).strip() for k in on_collision}
    out = {k: v for k, v in DEFAULT_RULES.items() if k not in given and k.split(".", 1)[-1] not in given}
    for key, rule in on_collision.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 200:
            raise UsageError(f"on_collision: {key!r} is not an index, constraint or table name")
        if rule not in RULES:
            raise UsageError(f"on_collision[{key!r}] = {rule!r} is not a rule", hint=f"rules: {', '.join(RULES)}")
        out[key.strip()] = rule
    return out


def rule_for(rules: dict[str, str], column: TenantColumn, index_name: str) -> str:
    """The rule for one index: by its name, then by its table (qualified or bare), else ``fail``."""
    for key in (index_name, f"{column.table.schema}.{index_name}", column.table.qualified, column.table.name):
        if key in rules:
            return rules[key]
    return "fail"


def unused_rules(rules: dict[str, str], keys: list[UniqueKey], columns: list[TenantColumn]) -> list[str]:
    """Rule names that match no index and no moved table (a typo would otherwise silently do nothing)."""
    known = set()
    for k in keys:
        known |= {k.name, f"{k.column.table.schema}.{k.name}"}
    for c in columns:
        known |= {c.table.qualified, c.table.name}
    return sorted(k for k in rules if k not in known and k not in DEFAULT_RULES)


def unique_keys(session, columns: list[TenantColumn], rules: dict[str, str]) -> list[UniqueKey]:
    """Every valid unique index of a moved table that contains the table's tenant column."""
    out = []
    for col in columns:
        rows = session.fetch(
            "select ic.relname as name, i.indpred is not null as partial, 0 = any(i.indkey::int2[]) as expression,"
            " coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) as nulls_not_distinct,"
            " array(select a.attname from unnest(i.indkey::int2[]) with ordinality k(n, o)"
            "       join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n"
            "       where k.o <= i.indnkeyatts order by k.o)::text[] as columns"
            " from pg_catalog.pg_index i join pg_catalog.pg_class ic on ic.oid = i.indexrelid"
            " where i.indrelid = %s and i.indisunique and i.indisvalid and not i.indisprimary"
            " order by ic.relname",
            (col.table.oid,),
        )
        for r in rows:
            if col.column not in r["columns"]:
                continue  # the move does not change this key's values
            others = tuple(c for c in r["columns"] if c != col.column)
            rule = rule_for(rules, col, r["name"])
            out.append(UniqueKey(col, r["name"], others, bool(r["nulls_not_distinct"]),
                                 not (r["partial"] or r["expression"]), rule))
    return out


def collisions(cur, key: UniqueKey, from_id: str, into_id: str) -> list[dict[str, Any]]:
    """Pairs (B's row, A's row) that would share ``key`` after the move, ordered by B's key.

    Each has ``from_key`` and ``into_key`` (primary key values), ``values`` (the other key
    columns) and, where the table has a ``role`` column, ``from_role`` / ``into_role``.
    """
    col = key.column
    pk = sql.Identifier(col.key[0])
    eq = sql.SQL("is not distinct from") if key.nulls_not_distinct else sql.SQL("=")
    match = sql.SQL(" and ").join(
        sql.SQL("a.{c} {eq} b.{c}").format(c=sql.Identifier(o), eq=eq) for o in key.others
    ) if key.others else sql.SQL("true")
    values = sql.SQL(", ").join(sql.SQL("b.{}::text").format(sql.Identifier(o)) for o in key.others) if key.others else sql.SQL("")
    roles = has_role(cur, col)
    cur.execute(
        sql.SQL(
            "select b.{pk}::text as from_key, a.{pk}::text as into_key, array[{values}]::text[] as values,"
            " {from_role} as from_role, {into_role} as into_role"
            " from {t} b join {t} a on a.{c} = %(into)s and {match}"
            " where b.{c} = %(from)s order by b.{pk}, a.{pk}"
        ).format(
            pk=pk, values=values, t=col.table.ident, c=sql.Identifier(col.column), match=match,
            from_role=sql.SQL("b.{}::text").format(sql.Identifier(ROLE_COLUMN)) if roles else sql.SQL("null::text"),
            into_role=sql.SQL("a.{}::text").format(sql.Identifier(ROLE_COLUMN)) if roles else sql.SQL("null::text"),
        ),
        {"from": from_id, "into": into_id},
    )
    return cur.fetchall()


def has_role(cur, col: TenantColumn) -> bool:
    """Whether ``col.table`` has a ``role`` column (``keep_higher_role`` needs one)."""
    cur.execute("select exists (select from pg_catalog.pg_attribute where attrelid = %s and attname = %s"
                " and attnum > 0 and not attisdropped) as ok", (col.table.oid, ROLE_COLUMN))
    return bool(cur.fetchone()["ok"])


def losers(key: UniqueKey, pairs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(side, primary key)`` of each row the rule deletes: side ``"from"`` (B's row) or ``"into"`` (A's)."""
    out = []
    for p in pairs:
        if key.rule == "keep_into":
            out.append(("from", p["from_key"]))
        elif key.rule == "keep_from":
            out.append(("into", p["into_key"]))
        elif key.rule == "keep_higher_role":
            higher = ROLE_RANK.get(p["from_role"] or "", 0) > ROLE_RANK.get(p["into_role"] or "", 0)
            out.append(("into", p["into_key"]) if higher else ("from", p["from_key"]))
    return out


def describe(key: UniqueKey, pairs: list[dict[str, Any]]) -> str:
    """The colliding keys, for a blocker or the plan: ``(user_id)=(…), …``."""
    cols = ", ".join(key.others) or key.column.column
    shown = [f"({cols})=({', '.join(str(v) for v in p['values'])})" for p in pairs[:SHOWN_KEYS]]
    more = f" and {len(pairs) - SHOWN_KEYS} more" if len(pairs) > SHOWN_KEYS else ""
    return ", ".join(shown) + more


def key_problems(cur, key: UniqueKey, pairs: list[dict[str, Any]]) -> list[str]:
    """Blockers for one unique key: a ``fail`` with collisions, a rule that cannot apply, an index we cannot compute."""
    if not key.computable:
        return [f"{key.label} is a partial or expression unique index containing the tenant column: the merge cannot "
                "compute its collisions. Resolve them by hand or drop the index first"]
    if not pairs:
        return []
    if key.rule == "fail":
        return [f"{len(pairs)} rows would collide on {key.label} (rule fail): {describe(key, pairs)}. Declare a rule "
                f"in on_collision ({key.name!r} or {key.column.table.qualified!r}: one of {', '.join(RULES[:3])})"]
    if key.rule == "keep_higher_role" and not has_role(cur, key.column):
        return [f"rule keep_higher_role for {key.label}: {key.column.table} has no {ROLE_COLUMN!r} column"]
    return []


def dependents_of_losers(cur, session, keys: list[UniqueKey], pairs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Blockers: rows a collision rule would delete that other rows still reference (a delete would cascade or fail)."""
    out = []
    for k in keys:
        loser_keys = [key for _, key in losers(k, pairs.get(k.name, []))]
        if not loser_keys:
            continue
        for ref in catalog.referencing_columns(session, k.column.table):
            cur.execute(sql.SQL("select count(*) as n from {d} where {c} = any({keys})").format(
                d=ref["dependent"].ident, c=sql.Identifier(ref["dep_columns"][0]),
                keys=typed_keys(k.column.table, k.column.key[0], sql.Placeholder())), (loser_keys,))
            n = int(cur.fetchone()["n"])
            if n:
                out.append(f"{n} rows of {ref['dependent']} reference rows of {k.column.table} that rule {k.rule} "
                           f"would delete ({k.name}); deleting them would {ref['on_delete_sql']}. Resolve by hand")
    return out


def drop_losers(cur, keys: list[UniqueKey], pairs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Delete each collision's loser; returns them in full: ``{table, side, key, row}``."""
    out, done = [], set()
    for k in keys:
        for side, key in losers(k, pairs.get(k.name, [])):
            if (k.column.table.oid, key) in done:
                continue
            done.add((k.column.table.oid, key))
            cur.execute(sql.SQL("delete from {t} x where x.{pk} = any({keys}) returning to_jsonb(x) as row").format(
                t=k.column.table.ident, pk=sql.Identifier(k.column.key[0]),
                keys=typed_keys(k.column.table, k.column.key[0], sql.Placeholder())), ([key],))
            out += [{"table": k.column.table.qualified, "side": side, "key": key, "rule": k.rule, "index": k.name,
                     "row": r["row"]} for r in cur.fetchall()]
    return out
