"""The SQL an archive run executes, built from catalog names only (``psycopg.sql``); values always bound.

:func:`move_statement` is one batch: lock (or not) the slice's candidates, delete them,
insert them into the archive, return counts and content hashes of both sides. The count
queries share one dependents guard (:func:`remaining_dependents_guard`); the batch has its
own (:func:`dependent_guard`), so a test can take it away and watch the cascade tripwire
(:data:`CASCADE_CHECK`) roll the batch back.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from pgrunbooks.actions.archive.pair import ARCHIVED_AT, Pair

def content_hash(alias: str, cols: list[str], fn: str) -> sql.Composable:
    """Order-independent content hash of a set of rows: the sum of a 64-bit hash per row.

    ``fn="record"`` hashes the row's values with their types' own hash functions
    (``hash_record_extended``, no text conversion); ``fn="md5"`` hashes the row's text
    (any column type). Sums combine across batches, so a whole run has one figure.
    ``sum(int8)`` is exact (its result is numeric) and accumulates in 128-bit integers:
    several times cheaper than summing ``::numeric`` casts, per row moved.
    """
    row = sql.SQL("row({})").format(sql.SQL(", ").join(sql.Identifier(alias, c) for c in cols))
    if fn == "record":
        return sql.SQL("coalesce(sum(pg_catalog.hash_record_extended({}, 0)), 0)").format(row)
    return sql.SQL("coalesce(sum(('x' || substr(md5({}::text), 1, 16))::bit(64)::int8), 0)").format(row)


def column_list(cols: list[str], alias: str | None = None) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in cols)


def _not_exists_dependent(fk: dict[str, Any], alias: str, extra: sql.Composable = sql.SQL("")) -> sql.Composable:
    """``and not exists (select from dep d where d.fk = <alias>.key <extra>)`` for one referencing foreign key."""
    cond = sql.SQL(" and ").join(
        sql.SQL("d.{} = {}.{}").format(sql.Identifier(dc), sql.Identifier(alias), sql.Identifier(rc))
        for dc, rc in zip(fk["dep_columns"], fk["ref_columns"])
    )
    return sql.SQL(" and not exists (select from {} d where {}{})").format(
        sql.Identifier(fk["dep_schema"], fk["dep_name"]), cond, extra
    )


def dependent_guard(fks: list[dict[str, Any]], alias: str = "s") -> sql.Composable:
    """The batch's guard: no row of any table referencing the source points at the row."""
    return sql.Composed([_not_exists_dependent(fk, alias) for fk in fks])


def candidates(p: Pair, order: str, *, first: bool, skip_locked: bool = True) -> sql.Composable:
    """The batch: the next slice's rows older than the cutoff with no dependent.

    ``skip_locked`` locks them first, passing over rows another transaction holds;
    without it the DELETE takes the row locks itself (see :data:`OPTIMISTIC_LOCK_TIMEOUT`).
    """
    if order == "physical":
        where = sql.SQL("s.ctid >= %(lo)s::tid and s.ctid < %(hi)s::tid and ")
    elif first:
        where = sql.SQL("")
    else:
        where = sql.SQL("s.{} > %(after)s and ").format(sql.Identifier(p.key))
    q = sql.SQL("select s.ctid, s.{key} as key from {src} s where {where}s.{col} < %(cutoff)s{guard}").format(
        key=sql.Identifier(p.key), src=p.source.ident, where=where, col=sql.Identifier(p.column), guard=dependent_guard(p.fks)
    )
    if order == "key":
        q += sql.SQL(" order by s.{key} limit %(limit)s").format(key=sql.Identifier(p.key))
    return q + sql.SQL(" for update of s skip locked") if skip_locked else q


# Year-old rows are almost never locked by the application, so a batch first deletes without
# locking its candidates beforehand (locking every row, then deleting it, writes each tuple
# twice: ~6 % of a batch). If a row is held after all, the DELETE gives up within this bound,
# the batch rolls back, and the slice (and the rest of the pair) runs with FOR UPDATE SKIP
# LOCKED: held rows are skipped, never waited on beyond this.
OPTIMISTIC_LOCK_TIMEOUT = "50ms"


# Every batch commits durably even where the server (or the sandbox: fsync off) runs with
# synchronous_commit off: the figures the audit records as committed must survive a crash.
DURABLE_COMMIT = "select pg_catalog.set_config('synchronous_commit', 'on', true)"


# This backend's not-yet-reported row counts of the dependent tables (since PostgreSQL 15
# they may include earlier transactions of the session: compare before and after).
_CASCADE_COUNTERS = sql.SQL(
    "select coalesce(sum(n_tup_del + n_tup_upd), 0)::int8 as touched"
    " from pg_catalog.pg_stat_xact_all_tables where relid = any({oids})"
)
#: The counters of the dependent tables, their oids bound as the one parameter (run after a batch).
CASCADE_CHECK = _CASCADE_COUNTERS.format(oids=sql.SQL("%s::oid[]"))


def dependent_oids(p: Pair) -> list[int]:
    """The tables a batch's delete could cascade into (declared foreign keys; an inferred reference cannot cascade)."""
    return sorted({int(fk["dep_oid"]) for fk in p.fks if not fk.get("inferred")})


def cascade_counters(p: Pair) -> sql.Composed:
    """:data:`CASCADE_CHECK` with the pair's dependent tables written in (inside a batch, and in the plan)."""
    return _CASCADE_COUNTERS.format(oids=sql.Literal(dependent_oids(p)))


def move_statement(
    p: Pair, order: str, *, first: bool = False, hash_fn: str = "record", skip_locked: bool = True
) -> sql.Composable:
    """One batch, one statement: lock the slice's candidates, delete them, insert them, compare.

    With referencing foreign keys it also reads this backend's counters of the dependent
    tables (``dependents_before``): the select list runs before the statement's cascades
    (foreign-key actions fire at its end), so :data:`CASCADE_CHECK` afterwards must read
    the same figure, or something cascaded.
    """
    before = sql.SQL(", ({}) as dependents_before").format(cascade_counters(p)) if dependent_oids(p) else sql.SQL("")
    # The last key is only needed to continue a key-ordered walk; the inserted rows are
    # hashed in the batch only when a trigger on the archive could have changed them.
    last_key = (
        sql.SQL("(select b.key from batch b order by b.key desc limit 1)") if order == "key" else sql.SQL("null")
    )
    archive_hash = sql.SQL("(select {} from ins i)").format(content_hash("i", p.columns, hash_fn)) if p.archive_triggers else sql.SQL("null")
    return sql.SQL(
        "with batch as materialized ({cand}),\n"
        "moved as (delete from {src} s where s.ctid = any(array(select b.ctid from batch b)) and s.{col} < %(cutoff)s"
        " returning {scols}),\n"
        "ins as (insert into {arc} {override}({cols}, {archived_at}) select {cols}, %(archived_at)s from moved returning {returned})\n"
        "select (select count(*) from batch) as selected,"
        " {last_key} as last_key,"
        " (select count(*) from moved) as deleted, (select count(*) from ins) as inserted,"
        " (select {mh} from moved m) as source_hash, {archive_hash} as archive_hash{before}"
    ).format(
        last_key=last_key,
        archive_hash=archive_hash,
        returned=column_list(p.columns) if p.archive_triggers else sql.Identifier(p.key),
        before=before,
        cand=candidates(p, order, first=first, skip_locked=skip_locked),
        src=p.source.ident,
        col=sql.Identifier(p.column),
        scols=column_list(p.columns, "s"),
        arc=p.archive.ident,
        override=sql.SQL("overriding system value ") if p.identity_always else sql.SQL(""),
        cols=column_list(p.columns),
        archived_at=sql.Identifier(ARCHIVED_AT),
        mh=content_hash("m", p.columns, hash_fn),
    )


def hash_function(session, p: Pair) -> str:
    """``record`` when every column type has an extended hash function, else ``md5`` (row text)."""
    probe = sql.SQL("select pg_catalog.hash_record_extended(row({}), 0) from (select 1) d left join {} s on false").format(
        column_list(p.columns, "s"), p.source.ident
    )
    try:
        session.fetch(probe)
        return "record"
    except psycopg.errors.UndefinedFunction:  # "could not identify an extended hash function for type …"
        return "md5"


def count_sql(p: Pair, *, guarded: bool) -> sql.Composable:
    """Rows older than the cutoff (``guarded``: and not referenced by a dependent row)."""
    q = sql.SQL("select count(*) from {src} s where s.{col} < %(cutoff)s").format(
        src=p.source.ident, col=sql.Identifier(p.column)
    )
    if guarded:
        q += remaining_dependents_guard(p)
    return q


def _earlier_filter(p: Pair, fk: dict[str, Any]) -> tuple[sql.Composable, dict[str, Any]]:
    """Dependents an earlier pair of this plan archives first don't count as blocking."""
    for i, e in enumerate(p.earlier):
        if e["oid"] == fk["dep_oid"]:
            key = f"earlier_cutoff_{i}"  # the name of a bound parameter (a dict key), never SQL text
            return sql.SQL(" and not (d.{} < {})").format(sql.Identifier(e["column"]), sql.Placeholder(key)), {key: e["cutoff"]}
    return sql.SQL(""), {}


def remaining_dependents_guard(p: Pair) -> sql.Composable:
    """The counts' guard: no dependent row, apart from those an earlier pair of the plan archives first."""
    return sql.Composed([_not_exists_dependent(fk, "s", _earlier_filter(p, fk)[0]) for fk in p.fks])


def count_params(p: Pair) -> dict[str, Any]:
    """The bound values of a guarded :func:`count_sql`."""
    params: dict[str, Any] = {"cutoff": p.cutoff}
    for fk in p.fks:
        params.update(_earlier_filter(p, fk)[1])
    return params


def dependents_count(session, p: Pair, fk: dict[str, Any]) -> int:
    """Rows of ``fk``'s table that reference rows to archive (apart from those an earlier pair archives)."""
    cond = sql.SQL(" and ").join(
        sql.SQL("s.{} = d.{}").format(sql.Identifier(rc), sql.Identifier(dc))
        for dc, rc in zip(fk["dep_columns"], fk["ref_columns"])
    )
    extra, params = _earlier_filter(p, fk)
    q = sql.SQL("select count(*) from {dep} d where exists (select from {src} s where {cond} and s.{col} < %(cutoff)s){extra}").format(
        dep=sql.Identifier(fk["dep_schema"], fk["dep_name"]),
        src=p.source.ident,
        cond=cond,
        col=sql.Identifier(p.column),
        extra=extra,
    )
    return int(session.scalar(q, {"cutoff": p.cutoff, **params}))


def undo_sql(p: Pair, archived_at: Any = None) -> sql.Composable:
    """Move one run's rows back: the archive's rows stamped with that run's ``archived_at``."""
    ts = sql.Literal(archived_at) if archived_at is not None else sql.SQL("'<archived_at of the run>'")
    return sql.SQL(
        "with back as (delete from {arc} a where a.{aa} = {ts} returning {acols})\n"
        "insert into {src} {override}({cols}) select {cols} from back;"
    ).format(
        arc=p.archive.ident,
        aa=sql.Identifier(ARCHIVED_AT),
        ts=ts,
        acols=column_list(p.columns, "a"),
        src=p.source.ident,
        override=sql.SQL("overriding system value ") if p.source_identity_always else sql.SQL(""),
        cols=column_list(p.columns),
    )
