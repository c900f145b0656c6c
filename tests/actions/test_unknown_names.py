"""Names that match nothing are errors (exit 3, before any change), not "Nothing to do" (PostgreSQL 18 and 15)."""

from __future__ import annotations

import pytest

from clihelpers import action_cli
from pgrunbooks.actions import plan_archive, plan_reindex, plan_terminate, plan_vacuum_analyze
from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError


@pytest.fixture
def session(pg, clean_db):
    with connect(pg.conninfo(clean_db), runbook="unknown_names") as s:
        yield s


@pytest.mark.parametrize("plan_fn", [plan_vacuum_analyze, plan_reindex], ids=["vacuum_analyze", "reindex"])
def test_a_schema_that_does_not_exist_is_a_usage_error_naming_it(session, plan_fn):
    with pytest.raises(UsageError, match="no such schema: nosuch") as err:
        plan_fn(session, schemas=["public", "nosuch"])
    assert err.value.exit_code == 3 and "public," not in err.value.message.split("(")[0]


@pytest.mark.parametrize(
    "kwargs, missing",
    [
        ({"users": ["nosuch_role"]}, "no such role: nosuch_role"),
        ({"states": ["idle"], "databases": ["nosuch_db"]}, "no such database: nosuch_db"),
        ({"pids": [99999999999999]}, "pids out of range"),
    ],
)
def test_terminate_filters_naming_nothing_are_usage_errors(session, kwargs, missing):
    with pytest.raises(UsageError, match=missing):
        plan_terminate(session, **kwargs)


@pytest.mark.parametrize("bad", [{"source": "public.nosuch", "archive": "public.call_archives", "older_than": "1 year"},
                                 {"source": "public.calls", "archive": "public.nosuch", "older_than": "1 year"}])
def test_archive_tables_that_do_not_exist_are_usage_errors(session, bad):
    with pytest.raises(UsageError, match="nosuch"):
        plan_archive(session, pairs=[bad])


def test_cli_vacuum_with_an_unknown_schema_exits_3_naming_it_and_changes_nothing(pg, clean_clone, tmp_path):
    """What the user typed: `pgrunbooks run weekly/vacuum_analyze -p "schemas=['nosuch']"` (it said "Nothing to do")."""
    with pg.connect(clean_clone) as conn:
        before = conn.execute("select sum(vacuum_count + analyze_count) from pg_stat_user_tables").fetchone()[0]
    log = tmp_path / "audit.jsonl"
    proc = action_cli(pg, ["run", "weekly/vacuum_analyze", "--target", f"local:{clean_clone}", "-p", "schemas=['nosuch']"],
                      tmp_path, log)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no such schema: nosuch" in proc.stdout + proc.stderr
    assert "Nothing to do" not in proc.stdout + proc.stderr
    with pg.connect(clean_clone) as conn:
        assert conn.execute("select sum(vacuum_count + analyze_count) from pg_stat_user_tables").fetchone()[0] == before
