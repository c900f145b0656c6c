"""The incident playbooks' runtime faults: visible where promised while held, fully gone after."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from pgrunbooks.seed import hold, incidents
from pgrunbooks.seed.faults.catalogue import LEAKY_POLICY, LOCKOUT_POLICY
from pgrunbooks.seed.faults.runtime_catalogue import RUNTIME_FAULT_LIST


@pytest.fixture(scope="module")
def incident_db(pg, clean_template):
    """One private clone for this module: the faults add statements, slots and policies for a while."""
    name = pg.create_database(f"i_{uuid.uuid4().hex[:10]}", template=clean_template)
    yield name
    pg.drop_database(name)


@pytest.fixture
def admin(pg, incident_db):
    return pg.admin_conninfo(incident_db)


@pytest.fixture
def mon(pg, incident_db):
    with pg.connect(incident_db) as conn:
        yield conn


def _alive(mon, pids) -> int:
    return mon.execute("select count(*) from pg_stat_activity where pid = any(%s)", (list(pids),)).fetchone()[0]


def _wait_gone(mon, pids, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(mon, pids):
        assert time.monotonic() < deadline, f"sessions {pids} still there"
        time.sleep(0.05)


def _nothing_left(mon) -> None:
    """No session but ours (closed sessions take a moment to leave), no slot, the clean policies."""
    deadline = time.monotonic() + 5
    while mon.execute("select count(*) from pg_stat_activity where backend_type = 'client backend'"
                      " and datname = current_database() and pid <> pg_backend_pid()").fetchone()[0]:
        assert time.monotonic() < deadline, "sessions left behind"
        time.sleep(0.05)
    assert mon.execute("select count(*) from pg_replication_slots").fetchone()[0] == 0
    assert not mon.execute("select exists (select 1 from pg_policies where policyname = %s)",
                           (LEAKY_POLICY,)).fetchone()[0]
    qual = mon.execute("select qual from pg_policies where policyname = %s", (LOCKOUT_POLICY,)).fetchone()[0]
    assert "org_users" in qual


def test_catalogue_lists_every_incident():
    assert [f.name for f in RUNTIME_FAULT_LIST] == list(incidents.INCIDENTS)
    assert {f.playbook for f in RUNTIME_FAULT_LIST} == {
        "high_load", "disk_space", "connections_exhausted", "tenant_data_exposure"}
    assert all(f.scope == "runtime" for f in RUNTIME_FAULT_LIST)


def _statement_totals(mon, queryid):
    """Calls and total time of *queryid* in this database only: other clones of the template
    ran the same statement (same query id, other dbid) and their frozen counters must not be read."""
    return mon.execute(
        "select sum(calls)::bigint, sum(total_exec_time) from extensions.pg_stat_statements"
        " where queryid = %s and dbid = (select oid from pg_catalog.pg_database where datname = current_database())",
        (queryid,)).fetchone()


def test_regressed_statement(admin, mon):
    with incidents.regressed_statement(admin, clients=2) as p:
        assert p.kind == "regressed_statement" and len(p.pids) == 2 and p.queryid is not None
        calls0, total0 = _statement_totals(mon, p.queryid)
        assert calls0 >= incidents.FAST_CALLS and p.baseline_mean_ms > 0
        # A slow run lands in pg_stat_statements when it ends: wait for the next ones (bounded).
        deadline = time.monotonic() + 15
        while True:
            calls1, total1 = _statement_totals(mon, p.queryid)
            if calls1 > calls0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert calls1 > calls0, "no slow run of the regressed statement ended within 15 s"
        # The runs in the window are many times slower than the fast history.
        assert (total1 - total0) / (calls1 - calls0) > 5 * p.baseline_mean_ms
        states = mon.execute("select state, wait_event_type from pg_stat_activity where pid = any(%s)",
                             (list(p.pids),)).fetchall()
        assert len(states) == 2
    _wait_gone(mon, p.pids)
    _nothing_left(mon)


def test_lock_queue(admin, mon):
    with incidents.lock_queue(admin, waiters=3) as p:
        rows = {r[0]: r[1:] for r in mon.execute(
            "select pid, state, wait_event_type, pg_blocking_pids(pid) from pg_stat_activity where pid = any(%s)",
            (list(p.pids),))}
        assert rows[p.root_pid][0] == "idle in transaction"
        assert rows[p.ddl_pid][1] == "Lock" and rows[p.ddl_pid][2] == [p.root_pid]
        for pid in p.waiter_pids:
            assert rows[pid][1] == "Lock" and p.ddl_pid in rows[pid][2]
        assert "alter table" in p.query
    _wait_gone(mon, p.pids)
    _nothing_left(mon)


def test_lock_queue_fix_terminates_the_root(admin, mon):
    with incidents.lock_queue(admin, waiters=2) as p:
        assert hold.present(admin, p)
        assert hold.fix(admin, p) == "terminated 1 session(s)"
        deadline = time.monotonic() + 10
        while hold.present(admin, p):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    _nothing_left(mon)


def test_temp_spills(admin, mon):
    before = mon.execute("select temp_files from pg_stat_database where datname = current_database()").fetchone()[0]
    with incidents.temp_spills(admin, clients=2) as p:
        assert len(p.pids) == 2
        written = mon.execute("select sum(temp_blks_written) from extensions.pg_stat_statements"
                              " where query like 'select c.org_id, count(distinct%%'").fetchone()[0]
        assert written and written > 0
        after = mon.execute("select temp_files from pg_stat_database where datname = current_database()").fetchone()[0]
        assert after > before
    _wait_gone(mon, p.pids)
    _nothing_left(mon)


def test_connection_flood(admin, mon):
    with incidents.connection_flood(admin, leave=3) as p:
        deadline = time.monotonic() + 3
        while True:  # the flood's own monitor session is still leaving for a moment
            usable, used = mon.execute(
                "select current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
                " - coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0),"
                " (select count(*) from pg_stat_activity where backend_type = 'client backend')").fetchone()
            if usable - used == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert usable - used == 3
        assert mon.execute("select count(*) from pg_stat_activity where application_name = %s and state = 'idle'"
                           " and usename = 'postgres'", (p.application_name,)).fetchone()[0] == len(p.pids)
    _wait_gone(mon, p.pids)
    _nothing_left(mon)


def test_idle_in_transaction_holders(admin, mon):
    with incidents.idle_in_transaction_holders(admin, count=3, age=0.2) as p:
        rows = mon.execute("select state, now() - xact_start > interval '0.2 s' from pg_stat_activity"
                           " where pid = any(%s)", (list(p.pids),)).fetchall()
        assert rows == [("idle in transaction", True)] * 3
        assert mon.execute("select count(distinct pid) from pg_locks where pid = any(%s)"
                           " and locktype = 'transactionid'", (list(p.pids),)).fetchone()[0] == 3
        assert hold.present(admin, p)
    _wait_gone(mon, p.pids)
    _nothing_left(mon)


def test_wal_retaining_slot(admin, mon):
    with incidents.wal_retaining_slot(admin, megabytes=32) as p:
        active, retained = mon.execute(
            "select active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) from pg_replication_slots"
            " where slot_name = %s", (p.slot,)).fetchone()
        assert not active and retained >= 32 * 1024 * 1024 and p.retained_bytes >= 32 * 1024 * 1024
    _nothing_left(mon)


def test_wal_retaining_slot_dropped_by_the_fix(admin, mon):
    with incidents.wal_retaining_slot(admin, megabytes=1) as p:
        assert hold.present(admin, p)
        hold.fix(admin, p)
        assert not hold.present(admin, p)
    _nothing_left(mon)


def _visible_orgs(mon, table: str) -> int:
    """Organizations whose rows of *table* the first member of the first organization sees."""
    with mon.transaction(force_rollback=True):
        user = mon.execute("select user_id from public.org_users order by org_id, user_id limit 1").fetchone()[0]
        mon.execute("set local role authenticated")
        mon.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{user}", "role": "authenticated"}}',))
        return mon.execute(psycopg.sql.SQL("select count(distinct org_id) from {}").format(
            psycopg.sql.Identifier("public", table))).fetchone()[0]


def test_leaking_policy(admin, mon):
    baseline = _visible_orgs(mon, "billing_records")
    with incidents.leaking_policy(admin) as p:
        assert p.policy == LEAKY_POLICY
        assert _visible_orgs(mon, "billing_records") > baseline
        assert hold.present(admin, p)
    assert _visible_orgs(mon, "billing_records") == baseline
    _nothing_left(mon)


def test_lockout_policy_and_its_fix(admin, mon):
    assert _visible_orgs(mon, "invoices") >= 1
    with incidents.lockout_policy(admin) as p:
        assert _visible_orgs(mon, "invoices") == 0
        hold.fix(admin, p)
        assert not hold.present(admin, p) and _visible_orgs(mon, "invoices") >= 1
    with incidents.lockout_policy(admin):
        assert _visible_orgs(mon, "invoices") == 0
    assert _visible_orgs(mon, "invoices") >= 1
    _nothing_left(mon)


def test_game_day_notebook_declares_every_fault_and_refuses_others(project):
    """The drill's `fault` parameter: every runtime fault allowed, anything else a usage error (exit 3)
    before anything connects (the engine validates the declared choices)."""
    import json

    from pgrunbooks.engine.params import ParameterError, notebook_parameters, validate

    path = project / "notebooks" / "04_incident_game_day.ipynb"
    declared = json.loads(path.read_text())["metadata"]["pgrunbooks"]["parameters"]
    assert declared["fault"]["choices"] == [f.name for f in RUNTIME_FAULT_LIST]
    spec = notebook_parameters(path)
    validate({"fault": "wal_retaining_slot"}, spec, runbook="onboarding/game_day", constraints=declared)
    with pytest.raises(ParameterError) as err:
        validate({"fault": "no_such_fault"}, spec, runbook="onboarding/game_day", constraints=declared)
    assert err.value.exit_code == 3
