"""Helpers the incident tests share (imported as ``from incident_helpers import …``)."""

from __future__ import annotations

from pgrunbooks.db import connect


def member_of_two(pg, db: str) -> str:
    """A user who belongs to two or more organizations (the one with the smallest id)."""
    with pg.connect(db) as conn:
        return conn.execute("select user_id::text from public.org_users group by user_id"
                            " having count(distinct org_id) >= 2 order by user_id limit 1").fetchone()[0]


def session(pg, db: str, *, read_only: bool = True, runbook: str = "incidents/test"):
    return connect(pg.conninfo(db), runbook=runbook, read_only=read_only)
