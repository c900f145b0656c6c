"""EXPLAIN the statement a cause names, safely: :func:`explain_statement`.

The text comes from pg_stat_statements (normalised: constants are ``$1``, ``$2``…). Only a
read (``select``, ``with … select``, ``values``, ``table``) is explained; a write never is.
With placeholders, PostgreSQL 16+ plans it generically (``explain (generic_plan)``); on 15 it
is skipped with the reason (no values to plan with). ``analyze=True`` runs ``EXPLAIN
(ANALYZE)`` — it *executes* the statement — only for a read without placeholders, in a
read-only transaction bounded by ``statement_timeout``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgrunbooks import pgss
from pgrunbooks.evidence.capture import read_only

_READ = re.compile(r"^\s*(\(\s*)*(select|with|values|table)\b", re.IGNORECASE)
_WRITE_IN_CTE = re.compile(r"\b(insert|update|delete|merge)\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\$\d+")


@dataclass(frozen=True)
class Explained:
    """The plan of one statement, or why there is none (``plan`` empty, ``reason`` set)."""

    queryid: Any
    query: str
    how: str  # explain | explain (generic_plan) | explain (analyze, buffers) | skipped
    plan: str = ""
    reason: str = ""

    def __str__(self) -> str:
        head = f"{self.how} of statement {self.queryid}"
        return f"{head}\n{self.plan}" if self.plan else f"{head}: {self.reason}"


def is_read(query: str) -> bool:
    """A statement that only reads (a ``with`` holding a data-modifying CTE is not)."""
    if not _READ.match(query or ""):
        return False
    return not (query.lstrip().lower().startswith("with") and _WRITE_IN_CTE.search(query))


def explain_statement(session, queryid: Any, query: str, *, analyze: bool = False,
                      statement_timeout: str = "10s") -> Explained:
    """EXPLAIN (never of a write; ANALYZE only of a read when asked) the statement ``queryid``."""
    if not is_read(query):
        return Explained(queryid, query, "skipped", reason="not a read: a write is never explained here "
                         "(EXPLAIN of a write is harmless, but its text may not plan without its values; read it above)")
    placeholders = bool(_PLACEHOLDER.search(query))
    if placeholders and session.server_version < 160000:
        return Explained(queryid, query, "skipped", reason="the statement has parameters ($1…) and PostgreSQL 15 "
                         "cannot plan it without values (explain (generic_plan) needs 16+): run EXPLAIN with real values")
    if analyze and placeholders:
        analyze = False  # nothing to execute it with: a generic plan instead
    options = "explain (analyze, buffers) " if analyze else "explain (generic_plan) " if placeholders else "explain "
    # The text is the server's own normalised statement (pg_stat_statements), checked to be a read
    # above; it is executed as EXPLAIN in a read-only, time-bounded transaction.
    statement = sql.SQL(options) + sql.SQL(query)  # noqa: S608 - not built from user input
    with read_only(session):
        try:
            rows = session.fetch(statement, statement_timeout=statement_timeout)
        except psycopg.errors.QueryCanceled:
            return Explained(queryid, query, "skipped", reason=f"cancelled by statement_timeout ({statement_timeout})")
        except psycopg.errors.SyntaxErrorOrAccessRuleViolation as exc:  # SQLSTATE class 42
            return Explained(queryid, query, "skipped", reason=f"cannot be planned here ({exc.sqlstate}): "
                             f"{exc.diag.message_primary}")
    return Explained(queryid, query, options.strip(), plan="\n".join(r["QUERY PLAN"] for r in rows))


def full_text(session, queryid: Any) -> str | None:
    """The whole normalised text of ``queryid`` from pg_stat_statements (the evidence keeps 1000 characters)."""
    found = pgss.locate(session)
    if found is None or not found.usable:
        return None
    # This database's entry: clones of one template share query ids (they hash relation oids).
    q = sql.SQL("select s.query from {} s where s.queryid = %s and s.dbid = (select d.oid from pg_catalog.pg_database d"
                " where d.datname = pg_catalog.current_database()) limit 1").format(found.relation())
    try:
        return session.scalar(q, (queryid,))
    except psycopg.errors.InsufficientPrivilege:
        return None
