"""The exposure checks (splinter 0002, 0004, 0007, 0010, 0014, 0015, 0016, 0017) and the exposed
schemas they read, on real PostgreSQL (18 and 15).

Their planted faults, clean-seed negatives and remediations are proven with the rest of the registry
(test_checks.py, test_remediation.py); here: where the exposed schemas come from (PostgREST's
``pgrst.db_schemas`` on the authenticator role or the database, a caller's override, the CLI option),
and the cases the lints get wrong if written carelessly (a security_invoker view, an extension in
``extensions``, a materialized view nobody may read).
"""

from __future__ import annotations

import json

import pytest
from clihelpers import cli_env, run_cli, run_dir_of, sql_statements
from psycopg import sql

from pgrunbooks import checks
from pgrunbooks.checks.runner import Context, parse_schemas
from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError
from pgrunbooks.findings import Severity

FLAGGED = {Severity.WARNING, Severity.CRITICAL}


def _flagged(conninfo: str, check_id: str, **kwargs) -> dict:
    with connect(conninfo, runbook="test/exposure") as session:
        found = checks.run_checks(session, ids=[check_id], **kwargs)
    assert not [f for f in found if f.severity in (Severity.ERROR, Severity.SKIPPED)], found
    return {f.object: f for f in found if f.severity in FLAGGED}


def _set_db_schemas(pg, db: str, value: str, *, role: str | None = None) -> None:
    """``alter database … set pgrst.db_schemas`` (or ``alter role … in database …``), as the admin."""
    with pg.connect(db) as admin:
        if role is None:
            admin.execute(sql.SQL("alter database {} set pgrst.db_schemas = {}").format(
                sql.Identifier(db), sql.Literal(value)))
        else:
            admin.execute(sql.SQL("alter role {} in database {} set pgrst.db_schemas = {}").format(
                sql.Identifier(role), sql.Identifier(db), sql.Literal(value)))


def _exposed(conninfo: str) -> list[str]:
    with connect(conninfo, runbook="test/exposure") as session:
        return Context.load(session).exposed_schemas


@pytest.fixture
def api_schema_db(pg, clean_clone):
    """A clone of the clean database with a schema ``api`` holding a table without a primary key
    that authenticated can read: exposed only if ``api`` is one of the exposed schemas."""
    with pg.connect(clean_clone) as admin:
        admin.execute("create schema api authorization postgres")
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute("grant usage on schema api to authenticated")
        conn.execute("create table api.feed (item text not null, at timestamptz not null default now())")
        conn.execute("alter table api.feed enable row level security")
        conn.execute("grant select on api.feed to authenticated")
        conn.execute("create policy feed_read on api.feed for select to authenticated using (at <= now())")
    return clean_clone


def test_parse_schemas_reads_pgrst_lists():
    assert parse_schemas(" public, api ,,public") == ["public", "api"]
    assert parse_schemas(["api", " public "]) == ["api", "public"]
    with pytest.raises(UsageError):
        parse_schemas(["public", 3])


def test_exposed_schemas_default_to_public(pg, api_schema_db):
    ci = pg.conninfo(api_schema_db)
    assert _exposed(ci) == ["public"]
    assert "api.feed" not in _flagged(ci, "tables_without_primary_key")


def test_exposed_schemas_come_from_the_database_setting(pg, api_schema_db):
    _set_db_schemas(pg, api_schema_db, "public, api")
    ci = pg.conninfo(api_schema_db)
    assert _exposed(ci) == ["public", "api"]
    assert set(_flagged(ci, "tables_without_primary_key")) == {"api.feed"}


def test_authenticator_role_setting_wins_as_postgrest_reads_it(pg, api_schema_db):
    """Supabase sets pgrst.db_schemas on the authenticator role, which our session (postgres)
    does not see through current_setting; a setting for this database wins over one for all."""
    _set_db_schemas(pg, api_schema_db, "public")
    _set_db_schemas(pg, api_schema_db, "api", role="authenticator")
    ci = pg.conninfo(api_schema_db)
    assert _exposed(ci) == ["api"]
    assert set(_flagged(ci, "tables_without_primary_key")) == {"api.feed"}


def test_caller_override_replaces_the_setting(pg, api_schema_db):
    _set_db_schemas(pg, api_schema_db, "api")
    ci = pg.conninfo(api_schema_db)
    assert not _flagged(ci, "tables_without_primary_key", exposed_schemas=["public"])
    assert set(_flagged(ci, "tables_without_primary_key", exposed_schemas="public,api")) == {"api.feed"}
    with connect(ci, runbook="test/exposure") as session, pytest.raises(UsageError):
        checks.run_checks(session, ids=["tables_without_primary_key"], exposed_schemas=[" ", ""])


def test_cli_exposed_schemas_option(pg, api_schema_db):
    """What a DBA types: ``pgrunbooks check --exposed-schemas public,api``."""
    base = ["check", "--target", pg.conninfo(api_schema_db), "--check", "tables_without_primary_key",
            "--format", "json", "--fail-on", "warning"]
    default = run_cli(base, cli_env(pg), cwd=pg.home)
    assert default.returncode == 0, default.stderr
    widened = run_cli(base + ["--exposed-schemas", "public,api"], cli_env(pg), cwd=pg.home)
    assert widened.returncode == 1, widened.stderr
    found = [f for f in json.loads(widened.stdout)["findings"] if f["severity"] == "warning"]
    assert [f["object"] for f in found] == ["api.feed"]
    assert "generated always as identity primary key" in found[0]["remediation"]
    empty = run_cli(base + ["--exposed-schemas", ","], cli_env(pg), cwd=pg.home)
    assert empty.returncode == 3 and "exposed schemas" in empty.stderr


def test_security_audit_runbook_takes_exposed_schemas(pg, api_schema_db, tmp_path):
    """What a scheduler runs: the real security_audit runbook with ``-p exposed_schemas=[...]``."""
    out = tmp_path / "reports"
    args = ["run", "weekly/security_audit", "--target", f"local:{api_schema_db}", "--out", str(out),
            "-p", 'checks=["tables_without_primary_key"]', "-p", 'exposed_schemas=["public", "api"]',
            "--fail-on", "none"]
    proc = run_cli(args, pg.env(PLOOMBER_STATS_ENABLED="false"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (report,) = run_dir_of(out).glob("*.findings.json")
    flagged = [f["object"] for f in json.loads(report.read_text())["findings"] if f["severity"] == "warning"]
    assert flagged == ["api.feed"]


def test_unique_not_null_index_becomes_the_key(pg, clean_clone):
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute("create table public.rates (code text not null, rate numeric)")
        conn.execute("create unique index rates_code_key on public.rates (code)")
        conn.execute("create table public.rates_partial (code text not null)")
        conn.execute("create unique index rates_partial_key on public.rates_partial (code) where code <> ''")
    found = _flagged(pg.conninfo(clean_clone), "tables_without_primary_key")
    assert set(found) == {"public.rates", "public.rates_partial"}
    assert "primary key using index rates_code_key" in found["public.rates"].remediation
    assert "using index" not in found["public.rates_partial"].remediation  # a partial index cannot


def test_invoker_views_do_not_bypass_rls(pg, clean_clone):
    """A security_invoker view runs as the caller: not a definer view, and over auth.users (which
    authenticated cannot read) it leaks nothing, so it is informational only."""
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute("create view public.my_calls with (security_invoker = on) as select id, org_id from public.calls")
        conn.execute("create view public.my_user with (security_invoker = on) as select id, email from auth.users")
        conn.execute("grant select on public.my_calls, public.my_user to authenticated")
    ci = pg.conninfo(clean_clone)
    assert not _flagged(ci, "security_definer_views")
    assert not _flagged(ci, "auth_users_exposed")
    with connect(ci, runbook="test/exposure") as session:
        info = [f for f in checks.run_checks(session, ids=["auth_users_exposed"]) if f.object == "public.my_user"]
    assert [f.severity for f in info] == [Severity.INFO]


def test_definer_view_without_rls_tables_is_a_warning(pg, clean_clone):
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute("create view public.server_time as select now() as now")
        conn.execute("grant select on public.server_time to anon")
    found = _flagged(pg.conninfo(clean_clone), "security_definer_views")
    assert found["public.server_time"].severity is Severity.WARNING


def test_unreadable_materialized_view_and_extensions_schema_are_not_flagged(pg, clean_clone):
    with pg.connect(clean_clone) as admin:
        admin.execute("create extension pg_trgm with schema extensions")
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute("create materialized view public.call_totals as select org_id, count(*) from public.calls group by 1")
    ci = pg.conninfo(clean_clone)
    assert not _flagged(ci, "materialized_views_exposed")
    assert not _flagged(ci, "extensions_in_public")
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute("grant select on public.call_totals to anon")
    found = _flagged(ci, "materialized_views_exposed")
    assert found["public.call_totals"].severity is Severity.CRITICAL  # computed from calls, which has RLS
    assert "public.calls" in found["public.call_totals"].detail


def test_user_metadata_policy_rewrite_keeps_the_rule(pg, faults_clone):
    """The printed ``alter policy`` is the same expression over app_metadata, nothing else."""
    query = "select pg_get_expr(polqual, polrelid) from pg_policy where polname = 'invoices_delete_admins_only'"
    with pg.connect(faults_clone) as conn:
        conn.execute("set search_path = pg_catalog")
        old = conn.execute(query).fetchone()[0]
        (found,) = _flagged(pg.conninfo(faults_clone), "policy_user_metadata").values()
        with pg.connect(faults_clone, user="postgres") as dba:
            for statement in sql_statements(found.remediation):
                dba.execute(statement)
        new = conn.execute(query).fetchone()[0]
    assert "'user_metadata'" in old and new == old.replace("'user_metadata'", "'app_metadata'")


def test_older_security_checks_look_in_the_exposed_schemas_too(pg, api_schema_db):
    """rls_disabled follows pgrst.db_schemas like the new lints; an explicit `schemas` threshold still wins."""
    with pg.connect(api_schema_db, user="postgres") as conn:
        conn.execute("alter table api.feed disable row level security")
    ci = pg.conninfo(api_schema_db)
    assert "api.feed" not in _flagged(ci, "rls_disabled")  # api is not exposed yet
    _set_db_schemas(pg, api_schema_db, "public, api")
    assert "api.feed" in _flagged(ci, "rls_disabled")
    assert "api.feed" not in _flagged(ci, "rls_disabled", thresholds={"rls_disabled": {"schemas": ["public"]}})
