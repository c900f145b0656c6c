"""EXPLAIN of a cause's statement: never of a write, ANALYZE only of a read when asked, a generic plan for
``$1`` on PostgreSQL 16+ and a reason on 15 (PostgreSQL 18 and 15)."""

from __future__ import annotations

import pytest

from pgrunbooks.db import connect
from pgrunbooks.evidence.explain import explain_statement, is_read

PARAMETERISED = "select c.id from public.calls c where c.org_id = $1 order by c.created_at desc limit $2"


@pytest.mark.parametrize("query, read", [
    ("select 1", True), ("  (select 1)", True), ("with x as (select 1) select * from x", True), ("values (1)", True),
    ("with d as (delete from public.calls returning *) select count(*) from d", False),
    ("delete from public.calls", False), ("update public.calls set status = $1", False), ("", False),
])
def test_only_reads_count_as_reads(query, read):
    assert is_read(query) is read


@pytest.fixture
def session(pg, clean_db):
    with connect(pg.conninfo(clean_db), runbook="incidents/high_load", read_only=False) as s:
        yield s


def test_a_parameterised_read_gets_a_generic_plan_on_16_and_a_reason_on_15(session):
    out = explain_statement(session, 1, PARAMETERISED, analyze=True)
    if session.server_version >= 160000:
        assert out.how == "explain (generic_plan)" and "public.calls" not in out.reason and "calls" in out.plan
        assert "actual time" not in out.plan, "nothing to execute it with: never ANALYZE"
    else:
        assert out.how == "skipped" and "16+" in out.reason and not out.plan


def test_a_write_is_never_explained_and_analyze_runs_only_for_a_read(session):
    assert explain_statement(session, 2, "delete from public.calls", analyze=True).how == "skipped"
    plain = explain_statement(session, 3, "select count(*) from public.calls")
    assert plain.how == "explain" and "actual time" not in plain.plan
    analyzed = explain_statement(session, 3, "select count(*) from public.calls", analyze=True)
    assert analyzed.how == "explain (analyze, buffers)" and "actual time" in analyzed.plan
    assert session.conn.read_only is False, "the session's mode is restored"
