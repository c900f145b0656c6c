"""Archive old rows: move them from a live table to its archive table, atomically, in batches.

The guide's ``INSERT INTO call_archives SELECT … ; DELETE FROM calls WHERE …`` can lose
rows (written between the two statements with an old timestamp: deleted, never
archived), duplicate them (re-run after a failure between the two), and holds locks on
every moved row until one big commit. Here each batch moves rows in **one statement**::

    with batch as materialized (
      select s.ctid from calls s
      where <next slice> and s.created_at < $cutoff [and not exists (dependent rows)]
      for update of s skip locked),
    moved as (delete from calls s where s.ctid = any(array(select ctid from batch))
              and s.created_at < $cutoff returning cols…),
    ins as (insert into call_archives (cols…, archived_at) select cols…, $run from moved returning cols…)
    select counts and content hashes of moved and ins

one transaction and one commit per batch, with ``SET LOCAL`` statement and lock timeouts.

*Slices.* ``order="physical"`` (the default for ordinary tables) walks the heap in
page ranges (``ctid >= '(p,0)' and ctid < '(q,0)'``, a TID range scan), sized adaptively
to about ``batch_size`` rows: with random uuid keys, primary-key order touches a
different heap page for nearly every row, and the whole move runs at half the speed of
the guide's single statement (see ``bench/archive.py``). ``order="key"`` walks the
primary key (``key > $last order by key limit $n``), the classic keyset batch, and is
used for partitioned tables. Either way a killed run leaves only whole batches behind
and a re-run simply continues.

*Concurrency.* The cutoff is a fixed timestamp taken at plan time, so rows written
during the run with a current timestamp can never qualify; rows written with an old
timestamp are moved or left for the next run, never lost. ``skip locked`` leaves rows
another transaction holds for the next run instead of waiting on them; locked rows are
deleted by their ``ctid``, which cannot change while we hold the lock, and the cutoff
is re-checked on the row version being deleted.

*Dependents.* Foreign keys that reference the source (``recordings.call_id → calls ON
DELETE CASCADE``) would silently delete, block or null dependent rows. The plan counts
them and blocks (``on_dependents="stop"``) unless the dependents are archived first by
an earlier pair or ``on_dependents="skip"`` leaves referenced rows in place. Each batch
only takes rows with no dependent row (``not exists``); a dependent committed between
the batch's snapshot and its locks would still be reached by the cascade, so after the
move the batch reads its own transaction's counters (``pg_stat_xact_all_tables``) for
the dependent tables: any cascaded delete or update rolls the batch back and retries it.

*Verification.* Every batch compares, inside its transaction, the row count and a
content hash of the rows deleted with those inserted, and rolls back on a mismatch.
After the run the archive's rows of this run (``archived_at`` = the run's timestamp) are
re-read: count, content hash equal to the deleted rows', disjoint from the source, all
older than the cutoff. Then ``VACUUM (ANALYZE)`` the source outside any transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Iterable

import psycopg
from psycopg import sql

from pgrunbooks.actions import catalog
from pgrunbooks.actions.base import ActionResult, Context, Plan, VerificationError, register
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.errors import PreconditionError, UsageError

DEFAULT_PAIRS: tuple[dict[str, str], ...] = (
    {"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year"},
    {"source": "public.sms_messages", "archive": "public.sms_archives", "older_than": "6 months"},
)
# 10,000 rows: ~0.08 s per batch on a million-row calls table (bench/archive.py), row locks
# held well under 0.5 s, and throughput within 0.7x of one big INSERT … SELECT + DELETE.
DEFAULT_BATCH_SIZE = 10_000
ARCHIVED_AT = "archived_at"
# Deliberately low throughput for the plan's duration estimate: the sandbox (fsync off, idle)
# moves ~100,000 rows/s end to end (bench/archive.py); a busy production disk does less.
ESTIMATED_ROWS_PER_S = 40_000
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")
ON_DEPENDENTS = ("stop", "skip")
ORDERS = ("auto", "physical", "key")
MAX_RETRIES = 3


@dataclass
class _Pair:
    source: Relation
    archive: Relation
    column: str
    cutoff: dt.datetime
    older_than: str | None
    key: str
    key_type: str
    columns: list[str]
    identity_always: bool
    fks: list[dict[str, Any]]
    earlier: list[dict[str, Any]]  # earlier pairs in this plan: {"oid", "column", "cutoff"}
    source_identity_always: bool = False
    order: str = "physical"  # physical | key
    hash_fn: str = "record"  # record | md5
    rows_per_page: float = 50.0  # all rows, from pg_class (sizes physical slices)
    # Only a trigger on the archive can make an INSERT … SELECT of identical columns store
    # something else (rules are refused in data-modifying WITH). Without one, hashing the
    # inserted rows inside each batch re-hashes the same values; the run's verification
    # still re-reads the archive and compares its hash with the deleted rows'.
    archive_triggers: bool = True


# ---------------------------------------------------------------------------------------------
# SQL builders (identifiers from the catalog only; values bound)


def _hash(alias: str, cols: list[str], fn: str) -> sql.Composable:
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


def _cols(cols: list[str], alias: str | None = None) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in cols)


def _dependent_guard(fks: list[dict[str, Any]], alias: str = "s") -> sql.Composable:
    """``and not exists (select from dep d where d.fk = s.key)`` for each referencing foreign key."""
    parts = []
    for fk in fks:
        dep = sql.Identifier(fk["dep_schema"], fk["dep_name"])
        cond = sql.SQL(" and ").join(
            sql.SQL("d.{} = {}.{}").format(sql.Identifier(dc), sql.Identifier(alias), sql.Identifier(rc))
            for dc, rc in zip(fk["dep_columns"], fk["ref_columns"])
        )
        parts.append(sql.SQL(" and not exists (select from {} d where {})").format(dep, cond))
    return sql.Composed(parts)


def _candidates(p: _Pair, order: str, *, first: bool, skip_locked: bool = True) -> sql.Composable:
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
        key=sql.Identifier(p.key), src=p.source.ident, where=where, col=sql.Identifier(p.column), guard=_dependent_guard(p.fks)
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


# This backend's not-yet-reported row counts of the dependent tables (since PostgreSQL 15
# they may include earlier transactions of the session: compare before and after).
CASCADE_CHECK = (
    "select coalesce(sum(n_tup_del + n_tup_upd), 0)::int8 as touched"
    " from pg_catalog.pg_stat_xact_all_tables where relid = any(%s::oid[])"
)


def move_statement(
    p: _Pair, order: str, *, first: bool = False, hash_fn: str = "record", skip_locked: bool = True
) -> sql.Composable:
    """One batch, one statement: lock the slice's candidates, delete them, insert them, compare.

    With referencing foreign keys it also reads this backend's counters of the dependent
    tables (``dependents_before``): the select list runs before the statement's cascades
    (foreign-key actions fire at its end), so :data:`CASCADE_CHECK` afterwards must read
    the same figure, or something cascaded.
    """
    before = (
        sql.SQL(", ({}) as dependents_before").format(
            sql.SQL(CASCADE_CHECK.replace("%s::oid[]", "{}")).format(sql.Literal(sorted({int(fk["dep_oid"]) for fk in p.fks})))
        )
        if p.fks
        else sql.SQL("")
    )
    # The last key is only needed to continue a key-ordered walk; the inserted rows are
    # hashed in the batch only when a trigger on the archive could have changed them.
    last_key = (
        sql.SQL("(select b.key from batch b order by b.key desc limit 1)") if order == "key" else sql.SQL("null")
    )
    archive_hash = sql.SQL("(select {} from ins i)").format(_hash("i", p.columns, hash_fn)) if p.archive_triggers else sql.SQL("null")
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
        returned=_cols(p.columns) if p.archive_triggers else sql.Identifier(p.key),
        before=before,
        cand=_candidates(p, order, first=first, skip_locked=skip_locked),
        src=p.source.ident,
        col=sql.Identifier(p.column),
        scols=_cols(p.columns, "s"),
        arc=p.archive.ident,
        override=sql.SQL("overriding system value ") if p.identity_always else sql.SQL(""),
        cols=_cols(p.columns),
        archived_at=sql.Identifier(ARCHIVED_AT),
        mh=_hash("m", p.columns, hash_fn),
    )




def _hash_function(session, p: _Pair) -> str:
    """``record`` when every column type has an extended hash function, else ``md5`` (row text)."""
    probe = sql.SQL("select pg_catalog.hash_record_extended(row({}), 0) from (select 1) d left join {} s on false").format(
        _cols(p.columns, "s"), p.source.ident
    )
    try:
        session.fetch(probe)
        return "record"
    except psycopg.Error:
        return "md5"


def _count_sql(p: _Pair, *, guarded: bool) -> sql.Composable:
    q = sql.SQL("select count(*) from {src} s where s.{col} < %(cutoff)s").format(
        src=p.source.ident, col=sql.Identifier(p.column)
    )
    if guarded:
        q += _remaining_dependents_guard(p)
    return q


def _earlier_filter(p: _Pair, fk: dict[str, Any]) -> tuple[sql.Composable, dict[str, Any]]:
    """Dependents an earlier pair of this plan archives first don't count as blocking."""
    for i, e in enumerate(p.earlier):
        if e["oid"] == fk["dep_oid"]:
            name = f"earlier_cutoff_{i}"
            return sql.SQL(" and not (d.{} < %({})s)").format(sql.Identifier(e["column"]), sql.SQL(name)), {
                name: e["cutoff"]
            }
    return sql.SQL(""), {}


def _remaining_dependents_guard(p: _Pair) -> sql.Composable:
    parts = []
    for fk in p.fks:
        cond = sql.SQL(" and ").join(
            sql.SQL("d.{} = s.{}").format(sql.Identifier(dc), sql.Identifier(rc))
            for dc, rc in zip(fk["dep_columns"], fk["ref_columns"])
        )
        extra, _ = _earlier_filter(p, fk)
        parts.append(
            sql.SQL(" and not exists (select from {} d where {}{})").format(
                sql.Identifier(fk["dep_schema"], fk["dep_name"]), cond, extra
            )
        )
    return sql.Composed(parts)


def _count_params(p: _Pair) -> dict[str, Any]:
    params: dict[str, Any] = {"cutoff": p.cutoff}
    for fk in p.fks:
        params.update(_earlier_filter(p, fk)[1])
    return params


def _dependents_count(session, p: _Pair, fk: dict[str, Any]) -> int:
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


def undo_sql(p: _Pair, archived_at: Any = None) -> sql.Composable:
    """Move one run's rows back: the archive's rows stamped with that run's ``archived_at``."""
    ts = sql.Literal(archived_at) if archived_at is not None else sql.SQL("'<archived_at of the run>'")
    return sql.SQL(
        "with back as (delete from {arc} a where a.{aa} = {ts} returning {acols})\n"
        "insert into {src} {override}({cols}) select {cols} from back;"
    ).format(
        arc=p.archive.ident,
        aa=sql.Identifier(ARCHIVED_AT),
        ts=ts,
        acols=_cols(p.columns, "a"),
        src=p.source.ident,
        override=sql.SQL("overriding system value ") if p.source_identity_always else sql.SQL(""),
        cols=_cols(p.columns),
    )


# ---------------------------------------------------------------------------------------------
# plan


def _normalise_pairs(pairs: Any) -> list[dict[str, Any]]:
    if isinstance(pairs, dict):
        pairs = [pairs]
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise UsageError("pairs must be a non-empty list of {source, archive, older_than | cutoff}")
    out = []
    for item in pairs:
        if isinstance(item, (list, tuple)) and len(item) in (2, 3):
            item = dict(zip(("source", "archive", "older_than"), item))
        if not isinstance(item, dict) or "source" not in item or "archive" not in item:
            raise UsageError(f"bad table pair {item!r}", hint="use {'source': 'public.calls', 'archive': 'public.call_archives', 'older_than': '1 year'}")
        unknown = set(item) - {"source", "archive", "older_than", "cutoff", "column"}
        if unknown:
            raise UsageError(f"unknown key(s) {sorted(unknown)} in table pair {item!r}")
        if item.get("older_than") is None and item.get("cutoff") is None:
            raise UsageError(f"table pair {item['source']} needs older_than (an interval) or cutoff (a timestamp)")
        out.append(dict(item))
    return out


def _cutoff(session, item: dict[str, Any]) -> dt.datetime:
    try:
        if item.get("cutoff") is not None:
            value = item["cutoff"]
            cutoff = session.scalar("select %s::timestamptz", (value if isinstance(value, dt.datetime) else str(value),))
        else:
            cutoff = session.scalar("select statement_timestamp() - %s::interval", (str(item["older_than"]),))
    except psycopg.Error:
        raise UsageError(
            f"cannot read the cutoff of {item['source']}: older_than={item.get('older_than')!r} cutoff={item.get('cutoff')!r}",
            hint="older_than is a PostgreSQL interval ('1 year', '6 months', '90 days'); cutoff a timestamp",
        ) from None
    if cutoff >= session.scalar("select statement_timestamp()"):
        raise UsageError(f"the cutoff {cutoff.isoformat()} for {item['source']} is not in the past")
    return cutoff


def _column_problems(scols: list[dict], acols: list[dict], source: Relation, archive: Relation) -> list[str]:
    problems = []
    archived = [c for c in acols if c["name"] == ARCHIVED_AT]
    if not archived:
        problems.append(f"{archive} has no {ARCHIVED_AT} column")
    elif archived[0]["type"] not in TIME_TYPES[:2]:
        problems.append(f"{archive}.{ARCHIVED_AT} is {archived[0]['type']}, not a timestamp")
    rest = [c for c in acols if c["name"] != ARCHIVED_AT]
    sig_s = [(c["name"], c["type"]) for c in scols]
    sig_a = [(c["name"], c["type"]) for c in rest]
    if sig_s != sig_a:
        missing = [f"{n} {t}" for n, t in sig_s if (n, t) not in sig_a]
        extra = [f"{n} {t}" for n, t in sig_a if (n, t) not in sig_s]
        detail = []
        if missing:
            detail.append("missing in archive: " + ", ".join(missing))
        if extra:
            detail.append("only in archive: " + ", ".join(extra))
        if not missing and not extra:
            detail.append("same columns in a different order")
        problems.append(
            f"columns of {source} and {archive} differ ({'; '.join(detail)}); they must match in name, type and "
            f"order, apart from {ARCHIVED_AT}"
        )
    generated = [c["name"] for c in rest if c.get("generated")]
    if generated:
        problems.append(f"{archive} has generated columns ({', '.join(generated)}): rows cannot be copied into them")
    return problems


def plan_archive(
    session,
    pairs: Iterable[dict[str, Any]] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float = 0.0,
    max_runtime: float | None = None,
    on_dependents: str = "stop",
    vacuum: bool = True,
    statement_timeout: str = "30s",
    lock_timeout: str = "5s",
    vacuum_timeout: str = "30min",
    verify_timeout: str = "10min",
    max_drift: int | None = None,
    order: str = "auto",
) -> Plan:
    """Dry run of moving old rows to their archive tables. Changes nothing.

    ``pairs``: list of ``{"source", "archive", "older_than" | "cutoff", "column"}``
    (default: calls older than 1 year → call_archives, SMS older than 6 months →
    sms_archives; ``column`` defaults to ``created_at``). Pairs run in order, so archive
    dependents (recordings) before what they reference (calls). ``on_dependents``:
    ``"stop"`` blocks when rows to move are referenced by foreign keys; ``"skip"`` leaves
    those rows in place. ``pause`` seconds between batches; ``max_runtime`` seconds
    before stopping cleanly after the current batch (re-run to continue). ``apply``
    refuses when the number of rows to move drifted by more than ``max_drift`` rows
    since the plan (default: 1 % of the plan, at least 100). ``order``: ``"physical"``
    (heap page ranges, fast whatever the key), ``"key"`` (primary-key keyset) or
    ``"auto"`` (physical for ordinary tables, key for partitioned ones).

    The plan's ``confirm`` is the number of rows to move.
    """
    pairs_in = _normalise_pairs(pairs if pairs is not None else DEFAULT_PAIRS)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= 1_000_000:
        raise UsageError(f"batch_size must be an integer between 1 and 1000000, not {batch_size!r}")
    if order not in ORDERS:
        raise UsageError(f"order must be one of {ORDERS}, not {order!r}")
    if on_dependents not in ON_DEPENDENTS:
        raise UsageError(f"on_dependents must be one of {ON_DEPENDENTS}, not {on_dependents!r}")
    if pause is None or float(pause) < 0:
        raise UsageError("pause must be >= 0 seconds")
    if max_runtime is not None and float(max_runtime) <= 0:
        raise UsageError("max_runtime must be a positive number of seconds (or None)")

    blockers: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    objects: list[dict[str, Any]] = []
    statements: list[str] = []
    undo: list[str] = []
    resolved: list[_Pair] = []
    earlier: list[dict[str, Any]] = []
    seen: set[int] = set()

    for item in pairs_in:
        source = catalog.resolve(session, item["source"], what="table")
        archive = catalog.resolve(session, item["archive"], what="table")
        if source.oid == archive.oid:
            raise UsageError(f"source and archive are the same table ({source})")
        if source.oid in seen:
            raise UsageError(f"{source} appears twice in pairs")
        seen.add(source.oid)
        column = item.get("column") or "created_at"
        scols = catalog.columns(session, source)
        acols = catalog.columns(session, archive)
        col = next((c for c in scols if c["name"] == column), None)
        if col is None:
            raise UsageError(f"{source} has no column {column!r}", hint="name the timestamp column with column=…")
        if col["type"] not in TIME_TYPES:
            raise UsageError(f"{source}.{column} is {col['type']}, not a date or timestamp")
        cutoff = _cutoff(session, item)
        pk = catalog.primary_key(session, source)
        if len(pk) != 1:
            raise UsageError(
                f"{source} needs a single-column primary key to be archived in key batches "
                f"({'it has none' if not pk else 'it has ' + str(len(pk)) + ' columns'})"
            )
        problems = _column_problems(scols, acols, source, archive)
        blockers += problems
        fks = catalog.referencing_foreign_keys(session, source)
        pair = _Pair(
            source=source,
            archive=archive,
            column=column,
            cutoff=cutoff,
            older_than=item.get("older_than"),
            key=pk[0]["name"],
            key_type=pk[0]["type"],
            columns=[c["name"] for c in scols],
            identity_always=any(c.get("identity") == "a" for c in acols if c["name"] != ARCHIVED_AT),
            fks=fks,
            earlier=list(earlier),
            source_identity_always=any(c.get("identity") == "a" for c in scols),
            order=("physical" if source.kind == "r" else "key") if order == "auto" else order,
        )
        if pair.order == "physical" and source.kind != "r":
            raise UsageError(f"{source} is partitioned: use order='key' (ctid is not unique across partitions)")
        pair.hash_fn = _hash_function(session, pair)
        pair.rows_per_page = float(
            session.scalar(
                "select case when c.relpages > 0 and c.reltuples > 0 then c.reltuples / c.relpages else 50 end"
                " from pg_catalog.pg_class c where c.oid = %s",
                (source.oid,),
            )
        )
        resolved.append(pair)
        earlier.append({"oid": source.oid, "column": column, "cutoff": cutoff})

        if not catalog.privileges(session, source, "SELECT,DELETE"):
            blockers.append(f"the current role may not SELECT and DELETE on {source}")
        if not catalog.privileges(session, archive, "SELECT,INSERT"):
            blockers.append(f"the current role may not SELECT and INSERT on {archive}")
        for rel in (source, archive):
            triggers = catalog.user_triggers(session, rel)
            if rel is archive:
                pair.archive_triggers = bool(triggers)
            if triggers:
                warnings.append(f"{rel} has user triggers that will fire on every batch: {', '.join(triggers)}")
        if not session.scalar(
            "select exists (select from pg_catalog.pg_index i join pg_catalog.pg_attribute a"
            " on a.attrelid = i.indrelid and a.attnum = i.indkey[0]"
            " where i.indrelid = %s and a.attname = %s and i.indisunique and i.indnkeyatts = 1)",
            (archive.oid, pair.key),
        ):
            warnings.append(f"{archive} has no unique index on {pair.key}: nothing stops a row being archived twice by another tool")

        dependents_total = 0
        for fk in fks:
            n = _dependents_count(session, pair, fk)
            dependents_total += n
            effect = {
                "CASCADE": f"DELETE those {n:,} rows of {fk['dependent']}",
                "SET NULL": f"set {', '.join(fk['dep_columns'])} to NULL in those {n:,} rows",
                "SET DEFAULT": f"reset {', '.join(fk['dep_columns'])} to its default in those {n:,} rows",
            }.get(fk["on_delete_sql"], f"fail on the first batch (the key {fk['name']} blocks the delete)")
            line = (
                f"{fk['dependent']} has {n:,} rows referencing the {source} rows to archive "
                f"(foreign key {fk['name']} ON DELETE {fk['on_delete_sql']}): deleting them would {effect}"
            )
            if n and on_dependents == "stop":
                blockers.append(
                    line + f". Archive {fk['dependent']} first (put its pair before {source}), "
                    f"or pass on_dependents='skip' to leave referenced rows in {source}"
                )
            elif n:
                notes.append(line + f"; on_dependents='skip' leaves those {source} rows in place")
            else:
                notes.append(
                    f"{fk['dependent']} references {source} (foreign key {fk['name']} ON DELETE "
                    f"{fk['on_delete_sql']}); no dependent rows now, and every batch re-checks so nothing cascades"
                )
        guarded = bool(fks)
        total_rows = int(session.scalar(_count_sql(pair, guarded=False), {"cutoff": cutoff}))
        rows = int(session.scalar(_count_sql(pair, guarded=True), _count_params(pair))) if guarded else total_rows
        if on_dependents == "stop" and dependents_total:
            rows = total_rows  # blocked anyway; show what was asked for
        size = session.fetch_one(
            "select pg_catalog.pg_total_relation_size(%s::oid) as bytes,"
            " coalesce(nullif(c.reltuples, -1), 0)::int8 as est_rows from pg_catalog.pg_class c where c.oid = %s",
            (source.oid, source.oid),
        ) or {}
        objects.append(
            {
                "source": source.qualified,
                "archive": archive.qualified,
                "criterion": f"{column} < {cutoff.isoformat(sep=' ', timespec='seconds')}",
                "rows_to_move": rows,
                "rows_older_than_cutoff": total_rows,
                "dependent_rows": dependents_total if fks else None,
                "source_size_mb": round((size.get("bytes") or 0) / 1048576, 1),
            }
        )
        shown = move_statement(pair, pair.order, hash_fn=pair.hash_fn).as_string(session.conn)
        slice_note = (
            "heap page ranges of about batch_size rows (lo/hi are page bounds)"
            if pair.order == "physical"
            else "primary-key keyset, batch_size rows"
        )
        statements.append(f"-- {source} → {archive}, per batch ({slice_note}), one transaction each:\n{shown};")
        if fks:
            statements.append(
                "-- then, in the same transaction, these counters must not have moved since dependents_before "
                "(else something cascaded: the batch rolls back and is retried)\n"
                + sql.SQL(CASCADE_CHECK.replace("%s::oid[]", "{}")).format(
                    sql.Literal([int(fk["dep_oid"]) for fk in fks])
                ).as_string(session.conn)
                + ";"
            )
        if vacuum:
            statements.append(
                sql.SQL("-- afterwards, outside any transaction:\nvacuum (analyze) {};").format(source.ident).as_string(session.conn)
            )
        undo.append(f"-- {source}: move the run's rows back (archived_at is shown in the result)\n" + undo_sql(pair).as_string(session.conn))

    total = sum(o["rows_to_move"] for o in objects)
    est = total / ESTIMATED_ROWS_PER_S + (len(resolved) * 2 if vacuum else 0)
    notes.append(
        f"batches of about {batch_size:,} rows ({', '.join(sorted({p.order for p in resolved}))} order), one commit each, "
        f"statement_timeout={statement_timeout}, "
        f"lock_timeout={lock_timeout}"
        + (f", {pause}s pause between batches" if pause else "")
        + (f", stops cleanly after {max_runtime}s (re-run to continue)" if max_runtime else "")
    )
    notes.append(
        "rows locked by other transactions are skipped (left for the next run), never waited on for more than "
        f"{OPTIMISTIC_LOCK_TIMEOUT}"
    )
    summary = (
        f"Move {total:,} rows from {len(resolved)} table(s) to their archive tables in batches of {batch_size:,}; "
        "each batch is one atomic statement (delete … returning → insert), its counts compared before commit, "
        "the content hash of the moved rows checked against the archive afterwards. Interrupted at any point, "
        "committed batches are complete and a re-run continues."
    )
    parameters = {
        "pairs": [
            {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in item.items()} for item in pairs_in
        ],
        "batch_size": batch_size,
        "pause": pause,
        "max_runtime": max_runtime,
        "on_dependents": on_dependents,
        "vacuum": vacuum,
        "statement_timeout": statement_timeout,
        "lock_timeout": lock_timeout,
        "vacuum_timeout": vacuum_timeout,
        "verify_timeout": verify_timeout,
        "max_drift": max_drift,
        "order": order,
    }
    plan = Plan(
        action="archive",
        title="Archive old rows",
        summary=summary,
        target=str(session.target),
        database=session.scalar("select current_database()"),
        runbook=session.runbook,
        confirm=total,
        confirm_hint="the number of rows to move",
        statements=statements,
        objects=objects,
        rows=total,
        estimated_seconds=round(est, 1),
        undo="\n\n".join(undo),
        warnings=warnings,
        blockers=blockers,
        parameters=parameters,
        notes=notes,
        state={"pairs": resolved},
        session=session,
    )
    return plan


# ---------------------------------------------------------------------------------------------
# apply


def _recheck(session, plan: Plan) -> None:
    """The world must still be the one the plan described."""
    for p, obj in zip(plan.state["pairs"], plan.objects):
        for rel in (p.source, p.archive):
            row = session.fetch_one(
                "select n.nspname as schema, c.relname as name from pg_catalog.pg_class c"
                " join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = %s",
                (rel.oid,),
            )
            if row is None or (row["schema"], row["name"]) != (rel.schema, rel.name):
                raise PreconditionError(f"{rel} was dropped or renamed since the plan", hint="make a new plan")
        if [c["name"] for c in catalog.columns(session, p.source)] != p.columns:
            raise PreconditionError(f"the columns of {p.source} changed since the plan", hint="make a new plan")
        if len(catalog.referencing_foreign_keys(session, p.source)) != len(p.fks):
            raise PreconditionError(f"foreign keys referencing {p.source} changed since the plan", hint="make a new plan")
        rows = int(session.scalar(_count_sql(p, guarded=bool(p.fks)), _count_params(p)))
        planned = obj["rows_to_move"]
        # Live tables drift a little (a late webhook writes an old timestamp); more than that
        # means the plan no longer describes the data.
        allowed = plan.parameters.get("max_drift")
        allowed = max(100, planned // 100) if allowed is None else int(allowed)
        if abs(rows - planned) > allowed:
            raise PreconditionError(
                f"{p.source} now has {rows:,} rows to archive, the plan counted {planned:,} "
                f"(more than max_drift={allowed:,} apart)",
                hint="someone changed the data since the plan: make a new plan and review it",
            )


def _progress_bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, smoothing=0.1, mininterval=0.5)


class _Cascaded(Exception):
    """A batch reached a dependent row committed after its snapshot: roll back, retry."""


def _move_pair(session, plan: Plan, ctx: Context, p: _Pair, planned: int, deadline: float | None) -> dict[str, Any]:
    params = plan.parameters
    batch_size = params["batch_size"]
    archived_at = session.scalar("select statement_timestamp()")
    dep_oids = sorted({int(fk["dep_oid"]) for fk in p.fks})
    statements = {
        (first, skip): move_statement(p, p.order, first=first, hash_fn=p.hash_fn, skip_locked=skip)
        for first in (True, False)
        for skip in (True, False)
    }
    optimistic = True  # until a held row is met: then skip locked for the rest of the pair
    # Never wait longer optimistically than the operator allows at all.
    shorter = session.scalar(
        "select %(t)s::interval > interval '0' and %(t)s::interval < %(o)s::interval",
        {"t": str(params["lock_timeout"]), "o": OPTIMISTIC_LOCK_TIMEOUT},
    )
    optimistic_lock_timeout = params["lock_timeout"] if shorter else OPTIMISTIC_LOCK_TIMEOUT
    stats = {
        "source": p.source.qualified,
        "archive": p.archive.qualified,
        "archived_at": archived_at,
        "order": p.order,
        "planned": planned,
        "moved": 0,
        "batches": 0,
        "retries": 0,
        "max_batch_s": 0.0,
        "source_hash": 0,
        "archive_hash": 0,
        "stopped": None,
        "batch_s": [],
    }
    # Physical slices: from page 0 to the last page holding a row older than the cutoff,
    # sized from the observed density of candidates so a batch stays near batch_size rows
    # (and never spans more pages than twice batch_size rows of the table would fill).
    last_page = -1
    if p.order == "physical":
        row = session.fetch(
            sql.SQL("select max(s.ctid)::text as last from {} s where s.{} < %s").format(p.source.ident, sql.Identifier(p.column)),
            (p.cutoff,),
            statement_timeout=params["verify_timeout"],
        )[0]
        last_page = int(row["last"].strip("()").split(",")[0]) if row["last"] is not None else -1
    max_pages = max(1, int(2 * batch_size / max(p.rows_per_page, 1.0)))
    density = max(planned / max(1, last_page + 1), 0.01) if last_page >= 0 else p.rows_per_page
    pages = max(1, min(max_pages, int(batch_size / density)))
    page = 0
    after = None
    bar = _progress_bar(ctx.progress_bar, planned, f"{p.source.name} → {p.archive.name}")
    started = time.monotonic()
    try:
        while True:
            if p.order == "physical" and page > last_page:
                break
            if deadline is not None and time.monotonic() >= deadline:
                stats["stopped"] = "max_runtime"
                break
            args: dict[str, Any] = {"cutoff": p.cutoff, "archived_at": archived_at}
            if p.order == "physical":
                args.update(lo=f"({page},0)", hi=f"({page + pages},0)")
            else:
                args.update(after=after, limit=batch_size)
            cascades = 0
            while True:  # the slice until it commits: after a switch to skip locked, after a cascade
                t0 = time.monotonic()
                try:
                    lock_timeout = optimistic_lock_timeout if optimistic else params["lock_timeout"]
                    with session.transaction(statement_timeout=params["statement_timeout"], lock_timeout=lock_timeout) as cur:
                        cur.execute(statements[(after is None, not optimistic)], args, prepare=False)
                        res = cur.fetchone()
                        hash_differs = res["archive_hash"] is not None and res["source_hash"] != res["archive_hash"]
                        if res["deleted"] != res["inserted"] or hash_differs:
                            raise VerificationError(
                                f"a batch of {p.source}: deleted {res['deleted']} rows, inserted {res['inserted']}, "
                                f"content hashes {res['source_hash']} vs {res['archive_hash']}; the batch was rolled back",
                                hint="a trigger or rule on the archive table changes rows: check it before re-running",
                            )
                        if dep_oids:
                            cur.execute(CASCADE_CHECK, (dep_oids,), prepare=False)
                            if cur.fetchone()["touched"] != res["dependents_before"]:
                                raise _Cascaded()
                    break
                except psycopg.errors.LockNotAvailable:
                    if not optimistic:
                        raise
                    # A row (or the table) is held: this slice again, skipping held rows and
                    # waiting for the table no longer than lock_timeout.
                    optimistic = False
                    stats["skip_locked_from_batch"] = stats["batches"] + 1
                    continue
                except (_Cascaded, psycopg.errors.ForeignKeyViolation):
                    # A dependent row appeared between the batch's snapshot and its locks: the
                    # whole batch was rolled back; the retry's snapshot sees it and skips its parent.
                    stats["retries"] += 1
                    cascades += 1
                    if cascades > MAX_RETRIES:
                        raise VerificationError(
                            f"{p.source}: a batch kept reaching dependent rows written concurrently; rolled back",
                            hint="re-run when the application is quieter",
                        ) from None
            elapsed = time.monotonic() - t0
            selected = int(res["selected"])
            if selected:
                stats["batches"] += 1
                stats["moved"] += int(res["deleted"])
                stats["source_hash"] += int(res["source_hash"])
                if res["archive_hash"] is not None:
                    stats["archive_hash"] += int(res["archive_hash"])
                stats["max_batch_s"] = max(stats["max_batch_s"], round(elapsed, 4))
                stats["batch_s"].append(elapsed)
                ctx.progress.setdefault("pairs", {})[p.source.qualified] = {
                    k: stats[k] for k in ("moved", "batches", "archived_at")
                }
                ctx.progress["committed"] = "; ".join(
                    f"{v['moved']:,} rows of {k} archived with archived_at = {v['archived_at']}"
                    for k, v in ctx.progress["pairs"].items()
                )
                if bar is not None:
                    bar.update(int(res["deleted"]))
            if p.order == "physical":
                page += pages
                density = 0.7 * density + 0.3 * (selected / pages)
                pages = max(1, min(max_pages, 2 * pages, int(batch_size / max(density, 0.01))))
            else:
                if selected < batch_size:
                    break
                after = res["last_key"]
            if params["pause"] and selected:
                time.sleep(float(params["pause"]))
    finally:
        if bar is not None:
            bar.close()
    stats["seconds"] = round(time.monotonic() - started, 3)
    stats["rows_per_s"] = round(stats["moved"] / stats["seconds"]) if stats["seconds"] > 0 else None
    times = sorted(stats.pop("batch_s"))
    stats["p95_batch_s"] = round(times[min(len(times) - 1, int(len(times) * 0.95))], 4) if times else 0.0
    return stats


def _verify_pair(session, plan: Plan, p: _Pair, stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Re-read what this run committed: count, content hash, disjointness, cutoff."""
    q = sql.SQL(
        "select count(*) as n, {h} as h, count(*) filter (where a.{col} >= %(cutoff)s) as too_new,"
        " count(*) filter (where exists (select from {src} s where s.{key} = a.{key})) as in_both"
        " from {arc} a where a.{aa} = %(archived_at)s"
    ).format(
        h=_hash("a", p.columns, p.hash_fn),
        col=sql.Identifier(p.column),
        src=p.source.ident,
        key=sql.Identifier(p.key),
        arc=p.archive.ident,
        aa=sql.Identifier(ARCHIVED_AT),
    )
    row = session.fetch(q, {"cutoff": p.cutoff, "archived_at": stats["archived_at"]}, statement_timeout=plan.parameters["verify_timeout"])[0]
    remaining = int(session.scalar(_count_sql(p, guarded=False), {"cutoff": p.cutoff}))
    name = p.source.qualified
    moved = stats["moved"]
    checks = {
        f"{name}: counts conserved": {
            "ok": int(row["n"]) == moved,
            "detail": f"{moved:,} rows deleted from {name}, {moved:,} inserted, {int(row['n']):,} found in {p.archive.qualified} for this run",
        },
        f"{name}: content hash": {
            "ok": int(row["h"]) == stats["source_hash"] and (not p.archive_triggers or stats["archive_hash"] == stats["source_hash"]),
            "detail": f"hash of deleted rows {stats['source_hash']} = hash of archived rows re-read {int(row['h'])}",
        },
        f"{name}: id sets disjoint": {
            "ok": int(row["in_both"]) == 0,
            "detail": f"{int(row['in_both'])} archived {p.key}s still present in {name}",
        },
        f"{name}: cutoff respected": {
            "ok": int(row["too_new"]) == 0,
            "detail": f"{int(row['too_new'])} archived rows with {p.column} at or after the cutoff",
        },
    }
    stats["remaining_older_than_cutoff"] = remaining
    return checks


def _vacuum(plan: Plan, rel: Relation) -> dict[str, Any]:
    """``VACUUM (ANALYZE)`` on a dedicated autocommit connection with session-level timeouts."""
    from pgrunbooks.actions.maintenance import autocommit_session, bounded

    params = plan.parameters
    started = time.monotonic()
    with autocommit_session(plan.session) as s:
        with bounded(s, statement_timeout=params["vacuum_timeout"], lock_timeout=params["lock_timeout"]):
            s.conn.execute(sql.SQL("vacuum (analyze) {}").format(rel.ident))
    return {"seconds": round(time.monotonic() - started, 3)}


@register("archive")
def _apply(plan: Plan, ctx: Context) -> ActionResult:
    session = plan.session
    with ctx.step("re-check preconditions"):
        _recheck(session, plan)
    params = plan.parameters
    deadline = time.monotonic() + float(params["max_runtime"]) if params.get("max_runtime") else None
    results = []
    verified: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    undo: list[str] = []
    for p, obj in zip(plan.state["pairs"], plan.objects):
        with ctx.step(f"move {p.source.qualified}"):
            stats = _move_pair(session, plan, ctx, p, obj["rows_to_move"], deadline)
        with ctx.step(f"verify {p.source.qualified}"):
            verified.update(_verify_pair(session, plan, p, stats))
        results.append((p, stats))
        if stats["moved"]:
            undo.append(undo_sql(p, stats["archived_at"]).as_string(session.conn))
        if stats["stopped"]:
            break
    failed = [k for k, v in verified.items() if not v["ok"]]
    if failed:
        raise VerificationError(
            "post-conditions failed after the move: " + "; ".join(f"{k} ({verified[k]['detail']})" for k in failed),
            hint="the committed batches are in the archive; investigate before re-running (undo SQL is in the audit record)",
        )
    if params.get("vacuum"):
        for p, stats in results:
            if not stats["moved"]:
                continue
            try:
                with ctx.step(f"vacuum (analyze) {p.source.qualified}"):
                    stats["vacuum_s"] = _vacuum(plan, p.source)["seconds"]
            except Exception as exc:  # the move is complete and verified; vacuum can be re-run alone
                warnings.append(
                    f"VACUUM (ANALYZE) {p.source} did not complete ({exc}); the archive is complete — run "
                    "runbooks/weekly/vacuum_analyze for it later"
                )
    objects = []
    for p, s in results:
        objects.append(
            {
                "source": s["source"],
                "archive": s["archive"],
                "moved": s["moved"],
                "planned": s["planned"],
                "batches": s["batches"],
                "rows_per_s": s["rows_per_s"],
                "p95_batch_s": s["p95_batch_s"],
                "longest_batch_s": s["max_batch_s"],
                "remaining_older_than_cutoff": s.get("remaining_older_than_cutoff"),
                "archived_at": s["archived_at"].isoformat() if s["archived_at"] else None,
                "stopped": s["stopped"],
                # the batch from which rows held by others were skipped (None: none was met)
                "skip_locked_from_batch": s.get("skip_locked_from_batch"),
            }
        )
    moved = sum(s["moved"] for _, s in results)
    stopped = any(s["stopped"] for _, s in results) or len(results) < len(plan.state["pairs"])
    if stopped:
        warnings.append("stopped at max_runtime: committed batches are complete and verified; re-run to continue")
    for _, s in results:
        if s.get("remaining_older_than_cutoff"):
            warnings.append(
                f"{s['remaining_older_than_cutoff']:,} rows of {s['source']} older than the cutoff remain "
                "(locked by others, referenced by dependents, written during the run, or not reached): re-run to continue"
            )
    outcome = "partial" if stopped else ("applied" if moved else "nothing_to_do")
    summary = f"Moved {moved:,} rows (planned {plan.rows:,}) in " + ", ".join(
        f"{s['source']}: {s['moved']:,} rows / {s['batches']} batches, longest batch {s['max_batch_s']:.3f}s" for _, s in results
    ) + "."
    return ActionResult(
        action="archive",
        outcome=outcome,
        summary=summary,
        verified=verified,
        objects=objects,
        timings=dict(ctx.timings),
        undo="\n\n".join(undo) or None,
        warnings=warnings,
    )
