"""Helpers the seed tests share."""

from __future__ import annotations


def scalar(conn, query, params=None):
    """The first column of the first row of *query*."""
    return conn.execute(query, params).fetchone()[0]


def zero_scan_indexes(conn) -> set[str]:
    """Valid indexes, backing no key, that no scan has used."""
    return {
        r[0]
        for r in conn.execute(
            """
            select s.indexrelname from pg_stat_user_indexes s
            join pg_index i on i.indexrelid = s.indexrelid
            where s.idx_scan = 0 and i.indisvalid
              and not exists (select 1 from pg_constraint c
                              where c.conindid = s.indexrelid and c.contype in ('p', 'u', 'x'))
            """
        )
    }
