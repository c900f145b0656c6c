"""The checks registry against real PostgreSQL (18 and 15): every check finds its planted fault on the
faults database and nothing on the clean one.

The registry runs once per database and server (module-scoped fixtures); the tests then assert one
check each. Checks with no planted fault are proven on ``busy`` — a private clone of the faults
database where the fixture plays a workload (slow statements, sequential scans, deletes, an updated
table, a growth snapshot, multixacts, a checkpoint) — or with a tripwire threshold.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import pytest

from pgrunbooks import checks
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity
from pgrunbooks.seed import DATABASE_FAULTS, FAULTS, settle
from pgrunbooks.seed import faults as seed_faults
from pgrunbooks.seed.faults import catalogue
from pgrunbooks.seed import runtime

FLAGGED = {Severity.WARNING, Severity.CRITICAL}
ALL_IDS = list(checks.REGISTRY)

#: check id -> objects it must flag on the faults database (from docs/faults.md)
PLANTED = {
    "orphaned_rows": [f"{t}.{c}" for t, c, _ in seed_faults.ORPHAN_REFERENCES],
    "missing_foreign_keys": [f"{t}.{c}" for t, c, _ in seed_faults.ORPHAN_REFERENCES],
    "rls_disabled": ["public.webhook_events"],
    "rls_no_policy": ["public.call_notes"],
    "policy_always_true": [f"public.billing_records.{seed_faults.LEAKY_POLICY}"],
    "tenant_isolation": ["public.billing_records", "public.webhook_events", "public.phone_numbers",
                         "public.invoices:own_rows", "public.recordings:own_rows"],
    "function_search_path": ["public.org_display_name(uuid)"],
    "definer_api_execute": ["public.org_billing_history(uuid)", seed_faults.DEFINER_FUNCTION],
    "multiple_permissive_policies": ["public.billing_records:authenticated:select"],
    "policy_initplan": [f"public.sms_messages.{seed_faults.UID_POLICY}"],
    "unused_indexes": [f"public.{seed_faults.UNUSED_INDEX}"],
    "duplicate_indexes": [f"public.{seed_faults.DUPLICATE_INDEX}"],
    "fk_without_index": ["public.invoices.invoices_billing_record_id_fkey"],
    "invalid_indexes": [f"public.{seed_faults.INVALID_INDEX}"],
    "dead_tuples": [seed_faults.DEAD_TUPLES_TABLE],
    "never_analyzed": [seed_faults.NEVER_ANALYZED_TABLE],
    "sequence_exhaustion": [seed_faults.SEQUENCE],
    "security_definer_search_path": [seed_faults.DEFINER_FUNCTION],
    "anon_grants": ["public.phone_numbers"],
    "tables_without_primary_key": [catalogue.NO_PK_TABLE],
    "auth_users_exposed": [catalogue.AUTH_USERS_VIEW],
    "policy_user_metadata": [f"public.invoices.{catalogue.METADATA_POLICY}"],
    "security_definer_views": [catalogue.DEFINER_VIEW, catalogue.AUTH_USERS_VIEW],
    "policies_without_rls": [catalogue.POLICY_WITHOUT_RLS_TABLE],
    "extensions_in_public": [f"extension:{catalogue.PUBLIC_EXTENSION}"],
    "materialized_views_exposed": [catalogue.EXPOSED_MATVIEW],
    "foreign_tables_exposed": [catalogue.EXPOSED_FOREIGN_TABLE],
    # not in a fault's `finds`, but planted all the same:
    "vacuum_age": [seed_faults.DEAD_TUPLES_TABLE, seed_faults.NEVER_ANALYZED_TABLE],
}

#: check id -> (thresholds for the busy database, objects it must flag there; None = any object)
BUSY = {
    "slow_statements": ({"warning": 20.0, "min_calls": 3}, None),
    "stale_statistics": ({"min_changes": 100}, ["public.archives"]),
    "seq_scan_heavy_tables": ({}, ["public.calls"]),
    "table_bloat": ({"min_bytes": 0}, ["public.sms_messages"]),
    "index_bloat": ({"min_bytes": 0}, ["public.sms_messages_pkey"]),
    "database_growth": ({"min_age_hours": 0.5}, None),
    "multixact_wraparound": ({"warning": 1e-10}, None),
    # measurements without a natural fault at this scale: a tripwire threshold proves the path
    "database_size": ({"warning": 1}, None),
    "schema_sizes": ({"warning": 1}, ["public"]),
    "table_sizes": ({"warning": 1}, ["public.calls"]),
    "xid_wraparound": ({"warning": 1e-9}, None),
    "cache_hit_ratio": ({"warning": 1.01, "min_blocks": 0}, None),
    "statements_reset_age": ({"warning": 0.0}, None),
}

#: checks whose positive is not a warning but an info finding (or a runtime fault, tested below)
INFO_POSITIVES = {
    "top_statements": {"min_total_ms": 0.0},
    "checkpoints": {"info": 0.0, "min_checkpoints": 0},
}
RUNTIME = {"connections", "long_running_queries", "idle_in_transaction", "blocking_locks", "privileged_roles",
           "replication_slots",  # replication_slots: tests/checks/test_replication_slots.py
           "backup_freshness"}  # backup_freshness: tests/checks/test_backup_freshness.py (an archiving server)
#: checks skipped on the shared test servers by design (their positive and negative are tested elsewhere)
SKIPPED_ON_TEST_SERVERS = {"backup_freshness": "archive_mode is off on the test servers"}


def _run(conninfo: str, **kwargs) -> checks.Results:
    with connect(conninfo, runbook="test/checks") as session:
        return checks.run_results(session, **kwargs)


def _by_check(results: checks.Results) -> dict[str, list]:
    return {r.check.id: r.findings for r in results}


def _clone(pg, template: str, name: str) -> str:
    pg.drop_database(name)
    pg.create_database(name, template=template)
    with pg.connect(name) as conn:
        settle(conn, list(DATABASE_FAULTS))
    return name


@pytest.fixture(scope="module")
def faults_findings(pg, faults_db):
    return _by_check(_run(pg.conninfo(faults_db)))


@pytest.fixture(scope="module")
def clean_findings(pg, clean_db):
    # Statement statistics are cluster-wide and this server has run the rest of the suite
    # (hundreds of databases' worth of statements, so evictions): start them afresh, as a
    # clean production server would be after its weekly reset.
    with pg.connect(clean_db) as conn:
        conn.execute("select extensions.pg_stat_statements_reset()")
    return _by_check(_run(pg.conninfo(clean_db)))


def _workload(pg, db: str) -> None:
    """What the busy database goes through before the registry runs on it."""
    with pg.connect(db, user="postgres") as conn:
        for _ in range(4):
            conn.execute("select pg_sleep(0.05)")  # a slow statement (50 ms mean)
        for _ in range(120):  # a report that scans calls in full, again and again
            conn.execute("select count(*) from public.calls where duration > 3000").fetchall()
        # 60 % of the archives rewritten since the last analyze (autovacuum kept away): stale statistics
        conn.execute("alter table public.archives set (autovacuum_enabled = false)")
        conn.execute("update public.archives set payload = payload where id::text < 'a'")
        # 70 % of the messages deleted, vacuumed: the space stays (bloat)
        conn.execute("delete from public.sms_messages where created_at < now() - interval '60 days'")
        conn.execute("vacuum (analyze) public.sms_messages")
        # a snapshot of a much smaller database, an hour ago
        conn.execute(
            "insert into public.db_metrics (id, metric_name, metric_value, recorded_at)"
            " values (0, 'db_size_mb', 1, now() - interval '1 hour')"
        )
    with pg.connect(db) as conn:
        conn.execute("checkpoint")
        conn.execute("create extension if not exists pgstattuple")
    # two sessions sharing a row lock: a multixact
    with pg.connect(db, autocommit=False) as a, pg.connect(db, autocommit=False) as b:
        a.execute("select 1 from public.organizations order by id limit 1 for share")
        b.execute("select 1 from public.organizations order by id limit 1 for share")
        a.rollback()
        b.rollback()
    with pg.connect(db) as conn:
        conn.execute("select pg_stat_force_next_flush()")
    time.sleep(0.6)  # statistics are flushed when the backends go idle


@pytest.fixture(scope="module")
def busy_db(pg, faults_template):
    name = _clone(pg, faults_template, f"busy_{uuid.uuid4().hex[:8]}")
    _workload(pg, name)
    yield name
    pg.drop_database(name)


@pytest.fixture(scope="module")
def busy_findings(pg, busy_db):
    overrides = {cid: t for cid, (t, _) in BUSY.items() if t}
    overrides.update(INFO_POSITIVES)
    return _by_check(_run(pg.conninfo(busy_db), ids=list(BUSY) + list(INFO_POSITIVES), thresholds=overrides))


def _flagged_objects(findings) -> set[str]:
    return {f.object for f in findings if f.severity in FLAGGED}


# ------------------------------------------------------------------------------------------- catalogue
def test_every_check_a_fault_names_is_registered_and_covered():
    named = {cid for fault in FAULTS.values() for cid in fault.finds}
    named |= {cid for finds in runtime.RUNTIME_FINDS.values() for cid in finds}
    assert named <= set(checks.REGISTRY)
    covered = set(PLANTED) | set(BUSY) | set(INFO_POSITIVES) | RUNTIME
    assert covered == set(checks.REGISTRY), "every check needs a true positive"


def test_version_variants_are_chosen_by_server_version():
    assert "s.last_idx_scan" in checks.load_sql("unused_indexes", 160000)
    assert "s.last_idx_scan" not in checks.load_sql("unused_indexes", 150004)
    assert "pg_stat_checkpointer" in checks.load_sql("checkpoints", 170002)
    assert "pg_stat_bgwriter" in checks.load_sql("checkpoints", 160000)


# ------------------------------------------------------------------------------------ true positives
@pytest.mark.parametrize("check_id", sorted(PLANTED))
def test_check_flags_its_planted_fault(faults_findings, check_id):
    flagged = _flagged_objects(faults_findings[check_id])
    missing = set(PLANTED[check_id]) - flagged
    assert not missing, f"{check_id} missed {missing}; flagged {flagged}"


@pytest.mark.parametrize("check_id", sorted(BUSY))
def test_check_flags_the_busy_database(busy_findings, check_id):
    flagged = _flagged_objects(busy_findings[check_id])
    expected = BUSY[check_id][1]
    assert flagged, f"{check_id} flagged nothing: {busy_findings[check_id]}"
    if expected:
        assert set(expected) <= flagged, f"{check_id}: {flagged}"


@pytest.mark.parametrize("check_id", sorted(INFO_POSITIVES))
def test_informational_check_reports_what_it_measured(busy_findings, check_id):
    assert any(f.severity is Severity.INFO for f in busy_findings[check_id]), busy_findings[check_id]


def test_slow_statement_finding_names_the_query(busy_findings):
    assert any("pg_sleep" in f.detail for f in busy_findings["slow_statements"])


def test_bloat_is_measured_with_pgstattuple_when_installed(busy_findings):
    for check_id in ("table_bloat", "index_bloat"):
        methods = {f.data.get("method") for f in busy_findings[check_id] if f.severity in FLAGGED}
        assert methods and all(m and m.startswith("pgstat") for m in methods), (check_id, methods)


def test_orphan_counts_match_what_was_planted(faults_findings):
    counts = {f.object.split(".")[1]: f.value for f in faults_findings["orphaned_rows"] if f.severity in FLAGGED}
    assert counts == seed_faults.ORPHAN_COUNTS


def test_tenant_leak_names_the_policy(faults_findings):
    leak = next(f for f in faults_findings["tenant_isolation"] if f.object == "public.billing_records")
    assert leak.severity is Severity.CRITICAL
    assert seed_faults.LEAKY_POLICY in leak.title and seed_faults.LEAKY_POLICY in leak.remediation


# ------------------------------------------------------------------------------------ true negatives
@pytest.mark.parametrize("check_id", ALL_IDS)
def test_clean_database_gives_nothing_to_flag(clean_findings, check_id):
    findings = clean_findings[check_id]
    assert findings, "a check that ran reports at least one (ok) finding"
    broken = {Severity.ERROR} | (set() if check_id in SKIPPED_ON_TEST_SERVERS else {Severity.SKIPPED})
    bad = [f for f in findings if f.severity in FLAGGED | broken]
    assert not bad, bad


def test_no_check_errors_on_the_faults_database(faults_findings):
    errors = [f for findings in faults_findings.values() for f in findings if f.severity is Severity.ERROR]
    assert not errors, errors


# ------------------------------------------------------------------------------------ runtime faults
def test_runtime_faults_are_detected_and_our_session_is_not(pg, busy_db):
    ci = pg.conninfo(busy_db)
    quick = {"long_running_queries": {"warning": 0.5}, "idle_in_transaction": {"warning": 0.5},
             "blocking_locks": {"warning": 0.5}, "connections": {"warning": 0.2}}
    with contextlib.ExitStack() as stack:
        long_pid = stack.enter_context(runtime.long_running_query(ci))
        idle_pid = stack.enter_context(runtime.idle_in_transaction(ci))
        chain = stack.enter_context(runtime.blocking_chain(ci, depth=3, table="public.invoices"))
        pool = stack.enter_context(runtime.idle_connections(ci, 25))
        time.sleep(0.7)
        with connect(ci, runbook="test/activity") as session:
            own = session.backend_pid
            found = _by_check(checks.run_results(session, categories=["activity"], thresholds=quick))
    objects = {cid: {f.object for f in fs if f.severity in FLAGGED} for cid, fs in found.items()}
    assert f"pid:{long_pid}" in objects["long_running_queries"]
    assert f"pid:{idle_pid}" in objects["idle_in_transaction"]
    assert f"pid:{chain[0]}" in objects["blocking_locks"]
    tree = next(f for f in found["blocking_locks"] if f.object == f"pid:{chain[0]}")
    assert set(tree.data["blocked"]) == set(chain[1:])
    assert all(str(pid) in tree.detail for pid in chain)
    blocker = next(f for f in found["idle_in_transaction"] if f.object == f"pid:{chain[0]}")
    assert blocker.severity is Severity.CRITICAL  # it blocks others
    assert any(f.severity in FLAGGED and f.data["by_state"]["idle"] >= len(pool) for f in found["connections"])
    everything = {o for objs in objects.values() for o in objs}
    assert f"pid:{own}" not in everything


def test_extra_superuser_is_flagged_then_gone(pg, clean_db):
    fault = FAULTS["extra_superuser"]
    with pg.connect(clean_db) as admin:
        fault.apply(admin)
        try:
            found = _run(pg.conninfo(clean_db), ids=["privileged_roles"]).findings
        finally:
            fault.revert(admin)
    assert {f.object for f in found if f.severity is Severity.CRITICAL} == {f"role:{seed_faults.EXTRA_SUPERUSER}"}
    after = _run(pg.conninfo(clean_db), ids=["privileged_roles"]).findings
    assert [f.severity for f in after] == [Severity.OK]


# ------------------------------------------------------------------------------------ least privilege
LEAST_ROLE = "pgrb_test_monitor"
#: checks that cannot fully run as pg_monitor + SELECT on the app tables, and say so
EXPECTED_SKIPS = {
    "backup_freshness",  # archive_mode is off on the test servers (and pg_stat_archiver needs pg_monitor)
    "slow_statements", "top_statements", "statements_reset_age",  # no USAGE on schema extensions
    "database_growth",  # RLS hides db_metrics' rows
    "sequence_exhaustion",  # no SELECT on sequences
    "table_bloat", "index_bloat",  # pg_stats hidden by RLS
    "orphaned_rows",  # RLS would fake orphans
    "tenant_isolation",  # cannot SET ROLE authenticated
}


@pytest.fixture(scope="module")
def least_privilege_findings(pg, faults_db):
    with pg.connect(faults_db) as admin:
        if admin.execute("select 1 from pg_roles where rolname = %s", (LEAST_ROLE,)).fetchone():
            admin.execute(f"drop owned by {LEAST_ROLE}")  # left over by an interrupted run
            admin.execute(f"drop role {LEAST_ROLE}")
        admin.execute(f"create role {LEAST_ROLE} login")
        admin.execute(f"grant pg_monitor to {LEAST_ROLE}")
        admin.execute(f"grant usage on schema public to {LEAST_ROLE}")
        admin.execute(f"grant select on all tables in schema public to {LEAST_ROLE}")
        try:
            yield _by_check(_run(pg.conninfo(faults_db, user=LEAST_ROLE)))
        finally:
            admin.execute(f"drop owned by {LEAST_ROLE}")
            admin.execute(f"drop role {LEAST_ROLE}")


def test_least_privilege_role_gets_no_error(least_privilege_findings):
    errors = [f for fs in least_privilege_findings.values() for f in fs if f.severity is Severity.ERROR]
    assert not errors, errors


def test_least_privilege_role_is_told_what_to_grant(least_privilege_findings):
    skipped = {cid for cid, fs in least_privilege_findings.items() if any(f.severity is Severity.SKIPPED for f in fs)}
    assert skipped == EXPECTED_SKIPS
    for cid in skipped:
        for f in least_privilege_findings[cid]:
            if f.severity is Severity.SKIPPED:
                assert f.detail and f.remediation, f
    assert "grant usage on schema extensions" in least_privilege_findings["slow_statements"][0].remediation


def test_least_privilege_role_still_finds_the_catalog_faults(least_privilege_findings):
    for check_id in ("rls_disabled", "policy_always_true", "duplicate_indexes", "dead_tuples", "missing_foreign_keys"):
        assert set(PLANTED[check_id]) <= _flagged_objects(least_privilege_findings[check_id]), check_id


# ------------------------------------------------------------------------------------ the API
def test_threshold_override_changes_severity(pg, faults_db):
    table = seed_faults.DEAD_TUPLES_TABLE
    with connect(pg.conninfo(faults_db), runbook="test/checks") as s:
        default = checks.run_checks(s, ids=["dead_tuples"])
        stricter = checks.run_checks(s, ids=["dead_tuples"], thresholds={"dead_tuples": {"critical": 0.3}})
        laxer = checks.run_checks(s, ids=["dead_tuples"], thresholds={"dead_tuples": {"warning": 0.9, "critical": None}})
    severity = lambda fs: {f.object: f.severity for f in fs}.get(table)  # noqa: E731
    assert severity(default) is Severity.WARNING
    assert severity(stricter) is Severity.CRITICAL
    assert severity(laxer) is None and [f.severity for f in laxer] == [Severity.OK]


def test_suppressed_key_removes_the_finding(pg, faults_db):
    key = f"unused_indexes:public.{seed_faults.UNUSED_INDEX}"
    with connect(pg.conninfo(faults_db), runbook="test/checks") as s:
        found = checks.run_checks(s, ids=["unused_indexes"], suppress=[key])
    assert key not in {f.key for f in found}
    assert [f.severity for f in found] == [Severity.OK] and "suppressed" in found[0].detail


def test_bad_names_are_usage_errors_before_any_query(pg, faults_db):
    from pgrunbooks.errors import UsageError

    with connect(pg.conninfo(faults_db), runbook="test/checks") as s:
        for kwargs in ({"ids": ["no_such_check"]}, {"categories": ["nope"]},
                       {"thresholds": {"dead_tuples": {"warnin": 1}}}, {"thresholds": {"dead_tuples": {"warning": "x"}}}):
            with pytest.raises(UsageError):
                checks.run_checks(s, **kwargs)


def test_measurement_rows_come_back_as_dataframes(pg, faults_db):
    with connect(pg.conninfo(faults_db), runbook="test/checks") as s:
        results = checks.run_results(s, ids=["table_sizes", "connections"])
    frame = results.frame("table_sizes")
    assert {"name", "heap_bytes", "toast_bytes", "index_bytes", "total_bytes"} <= set(frame.columns)
    assert "public.calls" in set(frame["name"])
    assert results["connections"].frame()["connections"].sum() >= 1


def test_a_failing_check_is_an_error_finding_and_the_run_goes_on(pg, faults_db):
    import dataclasses

    from pgrunbooks.checks import runner

    def broken_sql(check, ctx, t):
        return runner.fetch(ctx, check, "select * from no_such_table", t)

    def broken_code(check, rows, t, ctx):
        raise ZeroDivisionError("bug")

    bad_sql = dataclasses.replace(checks.REGISTRY["table_sizes"], collect=broken_sql)
    bad_code = dataclasses.replace(checks.REGISTRY["database_size"], evaluate=broken_code)
    with connect(pg.conninfo(faults_db), runbook="test/checks") as s:
        ctx = runner.Context.load(s)
        first = runner.run_one(bad_sql, ctx)
        second = runner.run_one(bad_code, ctx)
        after = runner.run_one(checks.REGISTRY["dead_tuples"], ctx)
    assert [f.severity for f in first.findings] == [Severity.ERROR] and "42P01" in first.findings[0].detail
    assert [f.severity for f in second.findings] == [Severity.ERROR] and "bug" in second.findings[0].detail
    assert any(f.severity in FLAGGED for f in after.findings)


def test_check_transactions_are_read_only_even_on_a_read_write_session(pg, faults_db):
    import dataclasses

    from pgrunbooks.checks import runner

    def writes(check, ctx, t):
        return runner.fetch(ctx, check, "insert into public.db_metrics (metric_name) values ('x') returning id", t)

    sneaky = dataclasses.replace(checks.REGISTRY["table_sizes"], collect=writes)
    with connect(pg.conninfo(faults_db), runbook="test/checks", read_only=False) as s:
        result = runner.run_one(sneaky, runner.Context.load(s))
        count = s.scalar("select count(*) from public.db_metrics where metric_name = 'x'")
    assert result.findings[0].severity is Severity.ERROR and "25006" in result.findings[0].detail
    assert count == 0


# ------------------------------------------------------------------------------------ the CLI
def test_cli_exit_codes_and_json(pg, faults_db, clean_db, capsys):
    import json

    from pgrunbooks.cli import main

    assert main(["check", "--target", pg.conninfo(faults_db), "--category", "security"]) == 1
    capsys.readouterr()
    assert main(["check", "--target", pg.conninfo(clean_db), "--category", "indexes,maintenance",
                 "--fail-on", "warning"]) == 0
    capsys.readouterr()
    code = main(["check", "--target", pg.conninfo(faults_db), "--check", "dead_tuples", "--format", "json",
                 "--threshold", "dead_tuples.critical=0.3", "--fail-on", "none"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert payload["worst"] == "critical" and payload["checks"][0]["id"] == "dead_tuples"
    assert {f["key"] for f in payload["findings"]} == {f"dead_tuples:{seed_faults.DEAD_TUPLES_TABLE}"}
    assert main(["check", "--target", pg.conninfo(faults_db), "--check", "no_such_check"]) == 3
    assert main(["check", "--target", pg.conninfo(faults_db), "--threshold", "dead_tuples=1"]) == 3


def test_cli_runs_as_a_command(pg, faults_db):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "pgrunbooks", "check", "--target", pg.conninfo(faults_db), "--category", "indexes",
         "--fail-on", "warning"],
        capture_output=True, text=True, env=pg.env(), timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert seed_faults.UNUSED_INDEX in out.stdout and "checks on" in out.stdout


def test_runbook_reports_the_same_findings_as_the_check_command(pg, faults_db, tmp_path, capsys):
    """The weekly data-consistency runbook (papermill, one kernel) and `pgrunbooks check` agree."""
    import json
    import subprocess
    import sys

    if pg.major != 18:
        pytest.skip("one kernel start is enough: the checks themselves run on every version above")
    from pgrunbooks.cli import main
    from pgrunbooks.engine.catalog import find_runbook
    from pgrunbooks.engine.params import notebook_parameters

    ids = notebook_parameters(find_runbook("weekly/data_consistency").path)["checks"].default  # what it declares
    assert main(["check", "--target", pg.conninfo(faults_db), "--check", ",".join(ids), "--format", "json"]) == 0
    direct = {(f["key"], f["severity"]) for f in json.loads(capsys.readouterr().out)["findings"]}
    out = subprocess.run(
        [sys.executable, "-m", "pgrunbooks", "run", "weekly/data_consistency", "--target", pg.conninfo(faults_db),
         "--out", str(tmp_path), "--fail-on", "warning"],
        capture_output=True, text=True, env=pg.env(), timeout=300,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(next(tmp_path.rglob("*.findings.json")).read_text())
    items = report["findings"] if isinstance(report, dict) else report
    assert {(f["key"], f["severity"]) for f in items} == direct
