"""A source table and its archive table, resolved from the catalog: what one archive pair moves.

A pair given by a user (``{"source", "archive", "older_than" | "cutoff", "column"}``) is
data: both names are resolved to catalog rows, the cutoff is computed by the server from a
bound interval or timestamp, and the columns, primary key and referencing foreign keys are
read from the catalog. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from pgrunbooks.actions import catalog
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.errors import UsageError
from pgrunbooks.names import quote_ident

DEFAULT_PAIRS: tuple[dict[str, str], ...] = (
    {"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year"},
    {"source": "public.sms_messages", "archive": "public.sms_archives", "older_than": "6 months"},
)
ARCHIVED_AT = "archived_at"
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")
PAIR_KEYS = {"source", "archive", "older_than", "cutoff", "column"}


@dataclass
class Pair:
    source: Relation
    archive: Relation
    column: str
    cutoff: dt.datetime
    older_than: str | None
    key: str
    key_type: str
    columns: list[str]
    identity_always: bool
    fks: list[dict[str, Any]]  # referencing foreign keys and inferred references (``inferred``: no constraint)
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


def normalise_pairs(pairs: Any) -> list[dict[str, Any]]:
    """``pairs`` as a list of dicts with known keys (tuples ``(source, archive, older_than)`` accepted)."""
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
        unknown = set(item) - PAIR_KEYS
        if unknown:
            raise UsageError(f"unknown key(s) {sorted(unknown)} in table pair {item!r}")
        if item.get("older_than") is None and item.get("cutoff") is None:
            raise UsageError(f"table pair {item['source']} needs older_than (an interval) or cutoff (a timestamp)")
        out.append(dict(item))
    return out


def cutoff_of(session, item: dict[str, Any]) -> dt.datetime:
    """The pair's cutoff, computed by the server (``cutoff`` as given, or now minus ``older_than``); in the past."""
    try:
        if item.get("cutoff") is not None:
            value = item["cutoff"]
            cutoff = session.scalar("select %s::timestamptz", (value if isinstance(value, dt.datetime) else str(value),))
        else:
            cutoff = session.scalar("select statement_timestamp() - %s::interval", (str(item["older_than"]),))
    except psycopg.errors.DataError:  # SQLSTATE class 22: not an interval / not a timestamp
        raise UsageError(
            f"cannot read the cutoff of {item['source']}: older_than={item.get('older_than')!r} cutoff={item.get('cutoff')!r}",
            hint="older_than is a PostgreSQL interval ('1 year', '6 months', '90 days'); cutoff a timestamp",
        ) from None
    if cutoff >= session.scalar("select statement_timestamp()"):
        raise UsageError(f"the cutoff {cutoff.isoformat()} for {item['source']} is not in the past")
    return cutoff


def column_problems(scols: list[dict], acols: list[dict], source: Relation, archive: Relation) -> list[str]:
    """Why rows of ``source`` cannot be copied into ``archive`` as they are (blockers); empty when they can."""
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
        missing = [f"{quote_ident(n)} {t}" for n, t in sig_s if (n, t) not in sig_a]
        extra = [f"{quote_ident(n)} {t}" for n, t in sig_a if (n, t) not in sig_s]
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
    generated = [quote_ident(c["name"]) for c in rest if c.get("generated")]
    if generated:
        problems.append(f"{archive} has generated columns ({', '.join(generated)}): rows cannot be copied into them")
    return problems


def resolve_pair(session, item: dict[str, Any], *, order: str, earlier: list[dict[str, Any]], seen: set[int]) -> tuple[Pair, list[str]]:
    """The :class:`Pair` for one user-given pair, and the blockers its columns raise.

    ``seen`` holds the sources of earlier pairs (a table appears once); ``earlier`` their
    cutoffs (rows they archive first no longer count as dependents).
    """
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
        raise UsageError(f"{source}.{quote_ident(column)} is {col['type']}, not a date or timestamp")
    cutoff = cutoff_of(session, item)
    pk = catalog.primary_key(session, source)
    if len(pk) != 1:
        raise UsageError(
            f"{source} needs a single-column primary key to be archived in key batches "
            f"({'it has none' if not pk else 'it has ' + str(len(pk)) + ' columns'})"
        )
    pair = Pair(
        source=source,
        archive=archive,
        column=column,
        cutoff=cutoff,
        older_than=item.get("older_than"),
        key=pk[0]["name"],
        key_type=pk[0]["type"],
        columns=[c["name"] for c in scols],
        identity_always=any(c.get("identity") == "a" for c in acols if c["name"] != ARCHIVED_AT),
        # Declared foreign keys, then the columns that reference the source without one
        # (recordings.call_id once its FK is gone): deleting their rows would orphan them.
        fks=catalog.referencing_columns(session, source),
        earlier=list(earlier),
        source_identity_always=any(c.get("identity") == "a" for c in scols),
        order=("physical" if source.kind == "r" else "key") if order == "auto" else order,
    )
    if pair.order == "physical" and source.kind != "r":
        raise UsageError(f"{source} is partitioned: use order='key' (ctid is not unique across partitions)")
    pair.rows_per_page = float(
        session.scalar(
            "select case when c.relpages > 0 and c.reltuples > 0 then c.reltuples / c.relpages else 50 end"
            " from pg_catalog.pg_class c where c.oid = %s",
            (source.oid,),
        )
    )
    return pair, column_problems(scols, acols, source, archive)
