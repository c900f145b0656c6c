"""Content checksums: prove that a dry run changed nothing, or that rows survived a move.

``database_checksum`` hashes every ordinary table of the given schemas (row text in a
deterministic order); ``rows_checksum`` hashes a set of rows of one or more tables that
share columns (e.g. ``calls`` ∪ ``call_archives`` without ``archived_at``), so a test or
an operator can compare "before" and "after" of an archive run.
"""

from __future__ import annotations

from typing import Iterable

from psycopg import sql

from pgrunbooks.names import qualified


def _fetch(conn, query, params=None):
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def database_checksum(conn, schemas: Iterable[str] = ("public",)) -> dict[str, str]:
    """``{schema.table: md5 of its rows}`` for every ordinary table in ``schemas`` (names quoted as by ``quote_ident``).

    ``conn`` is a psycopg connection (or a pgrunbooks Session's ``.conn``). Meant for test
    and sandbox sizes: it reads every row.
    """
    tables = _fetch(
        conn,
        "select n.nspname, c.relname from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and n.nspname = any(%s) order by 1, 2",
        (list(schemas),),
    )
    out = {}
    for schema, name in tables:
        q = sql.SQL("select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {} t").format(
            sql.Identifier(schema, name)
        )
        count, digest = _fetch(conn, q)[0]
        out[qualified(schema, name)] = f"{count}:{digest}"
    return out


def rows_checksum(conn, tables: Iterable[str], columns: Iterable[str], key: str = "id") -> tuple[int, int, str]:
    """(rows, distinct keys, md5 of the rows ordered by key) over the union of ``tables``.

    ``tables`` are ``schema.name`` strings from trusted code (tests, notebooks), quoted as
    identifiers; ``columns`` the shared columns to compare (leave out ``archived_at``).
    """
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    parts = [
        sql.SQL("select {} from {}").format(cols, sql.Identifier(*t.split(".", 1))) for t in tables
    ]
    q = sql.SQL(
        "select count(*), count(distinct {key}), md5(coalesce(string_agg(u::text, E'\\n' order by u.{key}, u::text), ''))"
        " from ({union}) u"
    ).format(key=sql.Identifier(key), union=sql.SQL(" union all ").join(parts))
    n, distinct, digest = _fetch(conn, q)[0]
    return int(n), int(distinct), digest
