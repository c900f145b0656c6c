"""SQL names for people: the one place that quotes an identifier for display or printed SQL.

Queries never need this: they compose names with ``psycopg.sql.Identifier`` (or
``format('%I.%I', ...)`` / ``oid::regclass::text`` inside SQL). This is for text a human
reads or pastes: ``Finding.object``, suppression keys, remediation and undo statements,
plans. It follows PostgreSQL's own ``quote_ident()``: a name is left bare only when it is a
lower-case ASCII identifier that is not a keyword the grammar reserves in any position, so
what we print is exactly what ``select quote_ident(name)`` prints and pastes back verbatim.
"""

from __future__ import annotations

import re

# ``select word from pg_get_keywords() where catcode <> 'U'`` on PostgreSQL 15, plus the
# keywords PostgreSQL 16-18 added (SQL/JSON, MERGE, SYSTEM_USER). Quoting a word that a
# later release stops reserving is harmless; leaving a reserved one bare breaks the SQL.
_KEYWORDS = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization between bigint binary bit
    boolean both case cast char character check coalesce collate collation column concurrently
    constraint create cross current_catalog current_date current_role current_schema current_time
    current_timestamp current_user dec decimal default deferrable desc distinct do else end except
    exists extract false fetch float for foreign freeze from full grant greatest group grouping
    having ilike in initially inner inout int integer intersect interval into is isnull join
    lateral leading least left like limit localtime localtimestamp national natural nchar none
    normalize not notnull null nullif numeric offset on only or order out outer overlaps overlay
    placing position precision primary real references returning right row select session_user
    setof similar smallint some substring symmetric table tablesample then time timestamp to
    trailing treat trim true union unique user using values varchar variadic verbose when where
    window with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse
    xmlpi xmlroot xmlserialize xmltable
    json json_array json_arrayagg json_exists json_object json_objectagg json_query json_scalar
    json_serialize json_table json_value merge_action system_user
    """.split()
)

_BARE = re.compile(r"[a-z_][a-z0-9_]*")


def quote_ident(name: str) -> str:
    """``name`` as PostgreSQL's ``quote_ident()`` prints it: bare when it can be, else in
    double quotes with embedded double quotes doubled."""
    if _BARE.fullmatch(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    """``schema.name`` (or any dotted path), each part quoted by :func:`quote_ident`."""
    return ".".join(quote_ident(p) for p in parts)
