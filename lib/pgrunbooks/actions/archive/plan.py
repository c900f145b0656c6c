"""The archive's dry run: resolve each pair, count what it would move, say what could go wrong.

:func:`build_plan` is :meth:`Archive.plan <pgrunbooks.actions.archive.Archive>`: it validates
the parameters, resolves each pair (:mod:`~pgrunbooks.actions.archive.pair`), then per pair
collects warnings and blockers, counts dependents and rows, and writes out the statements
and the undo. It changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from psycopg import sql

from pgrunbooks.actions import catalog
from pgrunbooks.actions.archive.pair import DEFAULT_PAIRS, Pair, normalise_pairs, resolve_pair
from pgrunbooks.actions.archive.statements import (
    OPTIMISTIC_LOCK_TIMEOUT,
    cascade_counters,
    count_params,
    count_sql,
    dependent_oids,
    dependents_count,
    hash_function,
    move_statement,
    undo_sql,
)
from pgrunbooks.actions.base import Plan
from pgrunbooks.errors import UsageError
from pgrunbooks.names import quote_ident

# 10,000 rows: ~0.08 s per batch on a million-row calls table (bench/archive.py), row locks
# held well under 0.5 s, and throughput within 0.7x of one big INSERT … SELECT + DELETE.
DEFAULT_BATCH_SIZE = 10_000
# Deliberately low throughput for the plan's duration estimate: the sandbox (fsync off, idle)
# moves ~100,000 rows/s end to end (bench/archive.py); a busy production disk does less.
ESTIMATED_ROWS_PER_S = 40_000
ON_DEPENDENTS = ("stop", "skip")
ORDERS = ("auto", "physical", "key")
FK_EFFECTS = {
    "CASCADE": "DELETE those {n:,} rows of {dep}",
    "SET NULL": "set {cols} to NULL in those {n:,} rows",
    "SET DEFAULT": "reset {cols} to its default in those {n:,} rows",
}


def build_plan(
    action,
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
    pairs_in = normalise_pairs(pairs if pairs is not None else DEFAULT_PAIRS)
    check_parameters(batch_size=batch_size, order=order, on_dependents=on_dependents, pause=pause, max_runtime=max_runtime)
    blockers: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    objects: list[dict[str, Any]] = []
    statements: list[str] = []
    undo: list[str] = []
    resolved: list[Pair] = []
    earlier: list[dict[str, Any]] = []
    seen: set[int] = set()
    for item in pairs_in:
        pair, problems = resolve_pair(session, item, order=order, earlier=earlier, seen=seen)
        pair.hash_fn = hash_function(session, pair)
        resolved.append(pair)
        earlier.append({"oid": pair.source.oid, "column": pair.column, "cutoff": pair.cutoff})
        blockers += problems
        pair_warnings, pair_blockers = access_and_triggers(session, pair)
        warnings += pair_warnings
        blockers += pair_blockers
        dependents_total, dep_blockers, dep_notes = dependents(session, pair, on_dependents)
        blockers += dep_blockers
        notes += dep_notes
        objects.append(pair_object(session, pair, on_dependents, dependents_total))
        statements += pair_statements(session, pair, vacuum=vacuum)
        undo.append(f"-- {pair.source}: move the run's rows back (archived_at is shown in the result)\n" + undo_sql(pair).as_string(session.conn))

    total = sum(o["rows_to_move"] for o in objects)
    notes += batch_notes(resolved, batch_size=batch_size, statement_timeout=statement_timeout, lock_timeout=lock_timeout,
                         pause=pause, max_runtime=max_runtime)
    return action.new_plan(
        session,
        summary=(
            f"Move {total:,} rows from {len(resolved)} table(s) to their archive tables in batches of {batch_size:,}; "
            "each batch is one atomic statement (delete … returning → insert), its counts compared before commit, "
            "the content hash of the moved rows checked against the archive afterwards. Interrupted at any point, "
            "committed batches are complete and a re-run continues."
        ),
        confirm=total,
        statements=statements,
        objects=objects,
        rows=total,
        estimated_seconds=round(total / ESTIMATED_ROWS_PER_S + (len(resolved) * 2 if vacuum else 0), 1),
        undo="\n\n".join(undo),
        warnings=warnings,
        blockers=blockers,
        notes=notes,
        parameters={
            "pairs": [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in item.items()} for item in pairs_in],
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
        },
        state={"pairs": resolved},
    )


def check_parameters(*, batch_size: Any, order: Any, on_dependents: Any, pause: Any, max_runtime: Any) -> None:
    """Raise :class:`UsageError` for a parameter out of range, before anything is read."""
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


def access_and_triggers(session, pair: Pair) -> tuple[list[str], list[str]]:
    """(warnings, blockers) about privileges, user triggers and the archive's unique key; notes the archive's triggers."""
    warnings, blockers = [], []
    if not catalog.privileges(session, pair.source, "SELECT,DELETE"):
        blockers.append(f"the current role may not SELECT and DELETE on {pair.source}")
    if not catalog.privileges(session, pair.archive, "SELECT,INSERT"):
        blockers.append(f"the current role may not SELECT and INSERT on {pair.archive}")
    for rel in (pair.source, pair.archive):
        # Policies would filter every count and every batch: "0 rows to move" would mean "0 rows visible".
        if session.scalar("select pg_catalog.row_security_active(%s::oid)", (rel.oid,)):
            role = session.scalar("select current_user")
            blockers.append(
                f"row-level security on {rel} applies to role {quote_ident(role)}: its policies hide rows from this "
                "role, so the counts and the batches would see only some of them. Connect as a role with BYPASSRLS "
                "(postgres on Supabase) or as the table's owner (without FORCE ROW LEVEL SECURITY)"
            )
    for rel in (pair.source, pair.archive):
        triggers = catalog.user_triggers(session, rel)
        if rel is pair.archive:
            pair.archive_triggers = bool(triggers)
        if triggers:
            warnings.append(f"{rel} has user triggers that will fire on every batch: {', '.join(map(quote_ident, triggers))}")
    if not session.scalar(
        "select exists (select from pg_catalog.pg_index i join pg_catalog.pg_attribute a"
        " on a.attrelid = i.indrelid and a.attnum = i.indkey[0]"
        " where i.indrelid = %s and a.attname = %s and i.indisunique and i.indnkeyatts = 1)",
        (pair.archive.oid, pair.key),
    ):
        warnings.append(
            f"{pair.archive} has no unique index on {quote_ident(pair.key)}: nothing stops a row being archived twice by another tool"
        )
    return warnings, blockers


def dependents(session, pair: Pair, on_dependents: str) -> tuple[int, list[str], list[str]]:
    """Per foreign key referencing the source: its dependent rows, a blocker (``stop``) or a note. Returns (total, blockers, notes)."""
    total, blockers, notes = 0, [], []
    source = pair.source
    for fk in pair.fks:
        n = dependents_count(session, pair, fk)
        total += n
        if fk.get("inferred"):
            blocking = bool(n) and on_dependents == "stop"
            (blockers if blocking else notes).append(_inferred_dependent(fk, n, source, blocking=blocking))
            continue
        fk_name = quote_ident(fk["name"])
        effect = FK_EFFECTS.get(fk["on_delete_sql"], "fail on the first batch (the key {fk} blocks the delete)").format(
            n=n, dep=fk["dependent"], cols=", ".join(map(quote_ident, fk["dep_columns"])), fk=fk_name
        )
        line = (
            f"{fk['dependent']} has {n:,} rows referencing the {source} rows to archive "
            f"(foreign key {fk_name} ON DELETE {fk['on_delete_sql']}): deleting them would {effect}"
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
                f"{fk['dependent']} references {source} (foreign key {fk_name} ON DELETE "
                f"{fk['on_delete_sql']}); no dependent rows now, and every batch re-checks so nothing cascades"
            )
    return total, blockers, notes


def _inferred_dependent(fk: dict[str, Any], n: int, source, *, blocking: bool) -> str:
    """The blocker (``blocking``) or note for a column that references ``source`` without a foreign key."""
    col = ", ".join(f"{fk['dependent']}.{quote_ident(c)}" for c in fk["dep_columns"])
    if not n:
        return (
            f"{col} references {source} without a foreign key ({fk['evidence']}); no such rows now, "
            "and every batch leaves rows it points at in place"
        )
    line = (
        f"{fk['dependent']} has {n:,} rows whose {col} points at the {source} rows to archive, "
        f"with no foreign key ({fk['evidence']}): deleting them would orphan those {n:,} rows"
    )
    if blocking:
        return line + (
            f". Archive {fk['dependent']} first (put its pair before {source}), or pass on_dependents='skip' "
            f"to leave referenced rows in {source}"
        )
    return line + f"; on_dependents='skip' leaves those {source} rows in place"


def pair_object(session, pair: Pair, on_dependents: str, dependents_total: int) -> dict[str, Any]:
    """The plan's row for one pair: the criterion, rows to move (and older than the cutoff), dependents, size."""
    total_rows = int(session.scalar(count_sql(pair, guarded=False), {"cutoff": pair.cutoff}))
    rows = int(session.scalar(count_sql(pair, guarded=True), count_params(pair))) if pair.fks else total_rows
    if on_dependents == "stop" and dependents_total:
        rows = total_rows  # blocked anyway; show what was asked for
    size = session.fetch_one(
        "select pg_catalog.pg_total_relation_size(%s::oid) as bytes,"
        " coalesce(nullif(c.reltuples, -1), 0)::int8 as est_rows from pg_catalog.pg_class c where c.oid = %s",
        (pair.source.oid, pair.source.oid),
    ) or {}
    return {
        "source": pair.source.qualified,
        "archive": pair.archive.qualified,
        "criterion": f"{quote_ident(pair.column)} < {pair.cutoff.isoformat(sep=' ', timespec='seconds')}",
        "rows_to_move": rows,
        "rows_older_than_cutoff": total_rows,
        "dependent_rows": dependents_total if pair.fks else None,
        "source_size_mb": round((size.get("bytes") or 0) / 1048576, 1),
    }


def pair_statements(session, pair: Pair, *, vacuum: bool) -> list[str]:
    """The SQL a reviewer reads for one pair: the batch statement, the cascade check, the vacuum."""
    shown = move_statement(pair, pair.order, hash_fn=pair.hash_fn).as_string(session.conn)
    slice_note = (
        "heap page ranges of about batch_size rows (lo/hi are page bounds)"
        if pair.order == "physical"
        else "primary-key keyset, batch_size rows"
    )
    out = [
        f"-- {pair.source} → {pair.archive}, per batch ({slice_note}), one transaction each, committed durably:\n"
        f"set local synchronous_commit = on;\n{shown};"
    ]
    if dependent_oids(pair):
        out.append(
            "-- then, in the same transaction, these counters must not have moved since dependents_before "
            "(else something cascaded: the batch rolls back and is retried)\n"
            + cascade_counters(pair).as_string(session.conn)
            + ";"
        )
    if vacuum:
        out.append(sql.SQL("-- afterwards, outside any transaction:\nvacuum (analyze) {};").format(pair.source.ident).as_string(session.conn))
    return out


def batch_notes(resolved: list[Pair], *, batch_size: int, statement_timeout: str, lock_timeout: str,
                pause: float, max_runtime: float | None) -> list[str]:
    return [
        f"batches of about {batch_size:,} rows ({', '.join(sorted({p.order for p in resolved}))} order), one commit each, "
        f"statement_timeout={statement_timeout}, "
        f"lock_timeout={lock_timeout}"
        + (f", {pause}s pause between batches" if pause else "")
        + (f", stops cleanly after {max_runtime}s (re-run to continue)" if max_runtime else ""),
        "rows locked by other transactions are skipped (left for the next run), never waited on for more than "
        f"{OPTIMISTIC_LOCK_TIMEOUT}",
    ]
