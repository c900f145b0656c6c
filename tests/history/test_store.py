"""The history store's schema: versioned, idempotent migrations; nothing granted to the API roles."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg
import psycopg.conninfo

from pgrunbooks.history import store


def test_migrations_are_numbered_in_order_without_gaps():
    versions = [m.version for m in store.migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_migration_is_versioned_and_idempotent(unmigrated_history):
    conn = store.connect(unmigrated_history, migrate_schema=False)
    try:
        first = store.migrate(conn)
        again = store.migrate(conn)
        recorded = [(r["version"], r["name"]) for r in store.schema_versions(conn)]
    finally:
        conn.close()
    assert first == [m.version for m in store.migrations()]
    assert again == []
    assert recorded == [(m.version, m.name) for m in store.migrations()]


def test_a_new_migration_file_is_applied_once(unmigrated_history, monkeypatch):
    shipped = store.migrations()
    conn = store.connect(unmigrated_history)
    try:
        probe = store.Migration(len(shipped) + 1, "probe", "create table pgrunbooks.probe (id int);")
        monkeypatch.setattr(store, "migrations", lambda: [*shipped, probe])
        assert store.migrate(conn) == [probe.version]
        assert store.migrate(conn) == []
        assert conn.execute("select to_regclass('pgrunbooks.probe') is not null").fetchone() == (True,)
        # and the API roles get nothing on the new table either
        assert conn.execute("select has_table_privilege('anon', 'pgrunbooks.probe', 'select')").fetchone() == (False,)
    finally:
        conn.close()


def test_the_api_roles_cannot_reach_the_history(history_db, pg):
    with store.connect(history_db) as conn:
        for role in ("anon", "authenticated"):
            usage, = conn.execute("select has_schema_privilege(%s, 'pgrunbooks', 'usage')", (role,)).fetchone()
            assert usage is False
            readable = conn.execute(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'pgrunbooks' and c.relkind = 'r'"
                "   and (has_table_privilege(%s, c.oid, 'select') or has_table_privilege(%s, c.oid, 'insert'))",
                (role, role)).fetchall()
            assert readable == []
        acl, = conn.execute("select coalesce(nspacl::text[], '{}') from pg_namespace where nspname = 'pgrunbooks'").fetchone()
        grantees = {item.split("=")[0] for item in acl}
        assert grantees <= {"postgres"}  # no anon, authenticated, nor public ("" before "=")


def test_the_run_and_drill_tables_exist(history_conn):
    columns = dict(history_conn.execute(
        "select table_name, string_agg(column_name, ',' order by ordinal_position) from information_schema.columns"
        " where table_schema = 'pgrunbooks' and table_name in ('runs', 'run_findings', 'drills') group by 1").fetchall())
    assert columns["runs"] == "id,suite,target,started_at,run_dir"
    assert columns["run_findings"] == "run_id,key,check_id,severity,object,title"
    assert columns["drills"].startswith("id,kind,started_at,target,verdict,rto_seconds,rpo_seconds,detail")


def test_record_drill_stores_a_drill(history_db):
    started = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    drill_id = store.record_drill(history_db, kind="restore", started_at=started, target="local", verdict="pass",
                                  rto_seconds=42.5, rpo_seconds=None, detail={"tables": 12})
    with psycopg.connect(history_db) as conn:
        row = conn.execute("select kind, started_at, target, verdict, rto_seconds, detail from pgrunbooks.drills"
                           " where id = %s", (drill_id,)).fetchone()
    assert row == ("restore", started, "local", "pass", 42.5, {"tables": 12})


def test_default_privileges_for_the_api_roles_do_not_leak_into_the_history(unmigrated_history, pg):
    """A database whose default privileges grant postgres' new tables to anon (as some Supabase
    projects are configured) still gets a history the API roles cannot read."""
    dbname = psycopg.conninfo.conninfo_to_dict(unmigrated_history)["dbname"]
    with pg.connect(dbname) as admin:
        admin.execute("alter default privileges for role postgres grant select on tables to anon, authenticated")
        try:
            store.connect(unmigrated_history).close()
            leaked = admin.execute(
                "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'pgrunbooks' and c.relkind = 'r' and has_table_privilege('anon', c.oid, 'select')"
            ).fetchone()[0]
        finally:
            admin.execute("alter default privileges for role postgres revoke select on tables from anon, authenticated")
    assert leaked == 0


def test_history_in_the_target_needs_the_target():
    import pytest

    from pgrunbooks.errors import UsageError
    from pgrunbooks.targets import Target

    with pytest.raises(UsageError):
        store.resolve_history("target")
    audited = Target("service:prod", "service", "service=prod")
    assert store.resolve_history("target", target=audited) is audited
    assert store.target_key("  local ") == "local"


def test_a_history_the_role_cannot_write_is_a_privilege_error(pg, clean_db):
    """history='target' on a database where the role may not create a schema: a clear error, no traceback."""
    import pytest

    from pgrunbooks.errors import PrivilegeError

    with pytest.raises(PrivilegeError) as raised:
        store.connect(pg.conninfo(clean_db, "authenticator"))
    assert "pgrunbooks schema" in str(raised.value) and "local:pgrunbooks_history" in str(raised.value)
