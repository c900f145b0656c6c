"""The manifest of a backup: per table its row count and ordered content hash, the sha256 of every file.

Content hash (the restore side computes exactly the same thing, from the method the manifest records):

* ``exact`` (tables up to ``exact_rows`` rows, and every table without a single-column primary key):
  ``md5(string_agg(md5(t::text), '' order by <primary key>))`` over the whole table — the row
  texts in key order, so any changed, missing or extra row changes it. Per-row md5 keeps the
  aggregated string at 32 bytes a row (a million rows: 32 MB, far below the 1 GB limit).
* ``sampled`` (larger tables with a single-column key): ``samples`` key ranges of ``sample_rows``
  rows each, starting at keys drawn with ``tablesample system`` (repeatable seed) and sorted; each
  range's hash is the same expression over ``where key >= start order by key limit sample_rows``.
  The count stays exact (``count(*)``). The starts are kept in the manifest, so the restored copy
  hashes the same ranges through its primary-key index instead of reading the whole table.

Row texts are read with ``row_security = off``: a role that RLS would filter gets an error, not a
silently short count.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from psycopg import sql

MANIFEST = "manifest.json"
DATA_DIR = "data"
ROLES_FILE = "roles.sql"
FORMAT_VERSION = 1

EXACT_ROWS = 250_000
SAMPLES = 32
SAMPLE_ROWS = 1_000

TABLES = """
select n.nspname::text as schema, c.relname::text as table,
       pg_catalog.format('%I.%I', n.nspname, c.relname) as name,
       pg_catalog.pg_total_relation_size(c.oid) as bytes,
       array(select a.attname::text from pg_catalog.pg_index i
             cross join lateral pg_catalog.unnest(i.indkey) with ordinality k(att, pos)
             join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = k.att
             where i.indrelid = c.oid and i.indisprimary order by k.pos) as key,
       exists (select from pg_catalog.pg_attribute a
               where a.attrelid = c.oid and a.attname = 'created_at' and not a.attisdropped
                 and a.atttypid in ('pg_catalog.timestamptz'::regtype, 'pg_catalog.timestamp'::regtype))
         as has_created_at
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and c.relpersistence = 'p'
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'
  and not exists (select from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_class'::regclass
                  and d.objid = c.oid and d.deptype = 'e')
order by 3
"""


def list_tables(cur) -> list[dict[str, Any]]:
    """User tables (no extension members, no unlogged or temporary tables) with their key columns."""
    cur.execute(TABLES)
    return [dict(row) for row in cur.fetchall()]


def _order(key: list[str]) -> sql.Composable:
    if key:
        return sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(k)) for k in key)
    return sql.SQL("t::text")  # no primary key: the row text itself is the order


def _hash_query(table: dict, *, start: bool = False, limit: bool = False) -> sql.Composable:
    ident = sql.Identifier(table["schema"], table["table"])
    order = _order(table["key"])
    if not (start or limit):
        return sql.SQL(
            "select pg_catalog.count(*) as rows, "
            "pg_catalog.md5(coalesce(pg_catalog.string_agg(pg_catalog.md5(t::text), '' order by {order}), '')) as hash"
            " from {table} t"
        ).format(order=order, table=ident)
    key = sql.Identifier(table["key"][0])
    return sql.SQL(
        "select pg_catalog.count(*) as rows, "
        "pg_catalog.md5(coalesce(pg_catalog.string_agg(pg_catalog.md5(r::text), '' order by r.{key}), '')) as hash"
        " from (select t.* from {table} t where t.{key} >= %(start)s order by t.{key} limit %(limit)s) r"
    ).format(key=key, table=ident)


def table_content(cur, table: dict, *, exact_rows: int = EXACT_ROWS, samples: int = SAMPLES,
                  sample_rows: int = SAMPLE_ROWS) -> dict[str, Any]:
    """Count, hash (method chosen by size) and newest ``created_at`` of one table, in ``cur``'s snapshot."""
    ident = sql.Identifier(table["schema"], table["table"])
    cur.execute(sql.SQL("select pg_catalog.count(*) as rows from {} t").format(ident))
    rows = cur.fetchone()["rows"]
    entry = {k: table[k] for k in ("name", "schema", "table", "key", "bytes")} | {"rows": rows}
    if rows <= exact_rows or len(table["key"]) != 1:
        cur.execute(_hash_query(table))
        entry |= {"method": "exact", "hash": cur.fetchone()["hash"]}
    else:
        entry |= {"method": "sampled", "sample_rows": sample_rows,
                  "samples": _samples(cur, table, rows, samples, sample_rows)}
    entry["newest"] = newest_row(cur, table) if table.get("has_created_at") else None
    return entry


def _samples(cur, table: dict, rows: int, samples: int, sample_rows: int) -> list[dict[str, Any]]:
    key = sql.Identifier(table["key"][0])
    ident = sql.Identifier(table["schema"], table["table"])
    # enough pages for ~4 candidates a sample; repeatable: the same backup draws the same starts
    percent = min(100.0, 100.0 * 4 * samples / max(rows, 1))
    cur.execute(
        sql.SQL("select distinct t.{key}::text as start from {table} t tablesample system (%(percent)s) "
                "repeatable (14) order by 1 limit %(n)s").format(key=key, table=ident),
        {"percent": percent, "n": samples},
    )
    starts = [r["start"] for r in cur.fetchall()]
    out = []
    for start in starts:
        cur.execute(_hash_query(table, start=True, limit=True), {"start": start, "limit": sample_rows})
        row = cur.fetchone()
        out.append({"start": start, "rows": row["rows"], "hash": row["hash"]})
    return out


def recompute(cur, entry: dict) -> dict[str, Any]:
    """The same measurements as ``entry`` (a manifest table) on another copy: rows, hash or samples."""
    table = {"schema": entry["schema"], "table": entry["table"], "key": entry["key"]}
    ident = sql.Identifier(entry["schema"], entry["table"])
    if entry["method"] == "exact":
        cur.execute(_hash_query(table))
        row = cur.fetchone()
        return {"rows": row["rows"], "hash": row["hash"]}
    cur.execute(sql.SQL("select pg_catalog.count(*) as rows from {} t").format(ident))
    rows = cur.fetchone()["rows"]
    samples = []
    for sample in entry["samples"]:
        cur.execute(_hash_query(table, start=True, limit=True), {"start": sample["start"], "limit": entry["sample_rows"]})
        row = cur.fetchone()
        samples.append({"start": sample["start"], "rows": row["rows"], "hash": row["hash"]})
    return {"rows": rows, "samples": samples}


def newest_row(cur, table: dict) -> str | None:
    """The newest ``created_at`` of a table, ISO 8601 (for the RPO)."""
    cur.execute(sql.SQL("select pg_catalog.max(t.created_at) as newest from {} t").format(
        sql.Identifier(table["schema"], table["table"])))
    value = cur.fetchone()["newest"]
    return value.isoformat() if isinstance(value, datetime) else None


# ------------------------------------------------------------------------------------------- files
_TOC_DATA = re.compile(r"^(\d+); \d+ \d+ TABLE DATA (\S+) (.+?) \S+$")


def table_of_file(pg_restore: str, data_dir: Path) -> dict[str, str]:
    """Data file name (``2792.dat.gz``) -> table it holds, from the archive's table of contents."""
    out = subprocess.run([pg_restore, "-l", str(data_dir)], capture_output=True, text=True)
    mapping: dict[str, str] = {}
    ids = {}
    for line in out.stdout.splitlines():
        match = _TOC_DATA.match(line)
        if match:
            ids[match.group(1)] = f"{match.group(2)}.{match.group(3)}"
    for path in data_dir.iterdir():
        dump_id = path.name.split(".", 1)[0]
        if dump_id in ids:
            mapping[path.name] = ids[dump_id]
    return mapping


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(backup: Path, tables_by_file: dict[str, str]) -> list[dict[str, Any]]:
    """Every file of the backup (but the manifest) with its size and sha256, and the table it holds."""
    out = []
    for path in sorted(p for p in backup.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(backup).as_posix()
        out.append({"path": rel, "bytes": path.stat().st_size, "sha256": sha256(path),
                    "table": tables_by_file.get(path.name) if rel.startswith(DATA_DIR + "/") else None})
    return out


def write(backup: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` last and atomically: a backup folder without one is incomplete."""
    target = backup / MANIFEST
    tmp = backup / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, target)
    return target


def read(backup: Path | str) -> dict[str, Any]:
    """The manifest of a backup folder (raises :class:`~pgrunbooks.errors.PreconditionError` without one)."""
    from pgrunbooks.errors import PreconditionError

    path = Path(backup) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PreconditionError(f"{backup} has no readable {MANIFEST}: the backup is incomplete or not a backup",
                                hint="choose another backup folder, or run backup/backup_database") from exc


def backups(backup_dir: Path | str) -> list[Path]:
    """Complete backups (folders with a manifest) under ``backup_dir``, oldest first."""
    root = Path(backup_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda p: (read(p).get("snapshot_time", ""), p.name))


def summary_rows(manifest: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """One row per table for display: name, rows, size, method."""
    for t in manifest["tables"]:
        yield {"table": t["name"], "rows": t["rows"], "bytes": t["bytes"], "hash": t["method"]}
