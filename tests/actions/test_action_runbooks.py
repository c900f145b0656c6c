"""The four action runbooks end to end: the real CLI, papermill and kernels, the real test servers.

The library itself (plans, apply, errors, crash safety) is tested in test_archive.py,
test_vacuum.py, test_reindex.py and test_terminate.py; here the notebooks are: default
parameters are a dry run that changes nothing and reports its plan, the right confirm
applies and audits, a wrong one fails the run visibly and changes nothing.

Kernel starts cost ~2 s each, so: the four dry runs go through one suite (parallel
kernels) on every server version; the applying runs are version-independent engine
paths and run on the first server only (the library tests cover both versions).
"""

from __future__ import annotations

import uuid

import pytest

from pgrunbooks import audit
from pgrunbooks.actions.checksum import database_checksum
from pgrunbooks.seed import FAULTS, settle
from pgrunbooks.seed.runtime import long_running_query
from clihelpers import action_cli as cli, printed_apply_command, runbook_report as report

ACTION_RUNBOOKS = {
    "weekly/vacuum_analyze": "vacuum_analyze",
    "monthly/archive_old_data": "archive",
    "monthly/reindex": "reindex",
    "incidents/terminate_sessions": "terminate_sessions",
}
DEAD_TUPLES_TABLE = "public.db_metrics"


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def database_state(pg, db: str) -> dict:
    """What any action could change: every row, every relation's storage, index validity, dead tuples."""
    with pg.connect(db) as conn:
        return {
            "rows": database_checksum(conn, ("public", "auth")),
            "relations": conn.execute(
                "select c.oid::regclass::text, c.relfilenode from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'public' order by 1"
            ).fetchall(),
            "indexes": conn.execute(
                "select c.relname, i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid"
                " join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' order by 1"
            ).fetchall(),
            "dead_tuples": conn.execute(
                "select n_dead_tup, vacuum_count from pg_stat_user_tables where relid = %s::regclass", (DEAD_TUPLES_TABLE,)
            ).fetchone(),
        }


@pytest.fixture(scope="module")
def action_db(pg, faults_template):
    """A private copy of the planted-faults database for this module's dry and refused runs."""
    name = f"ar_{uuid.uuid4().hex[:10]}"
    pg.create_database(name, template=faults_template)
    with pg.connect(name) as conn:
        settle(conn, [n for n, f in FAULTS.items() if f.scope == "database"])
    yield name
    pg.drop_database(name)


# --------------------------------------------------------------------------------------
# dry runs: the four runbooks with default parameters (every server version)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dry_suite(pg, action_db, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dry")
    suite = tmp / "actions.yaml"
    suite.write_text(
        "description: the action runbooks, default parameters (dry runs)\n"
        f"params:\n  target: local:{action_db}\n"
        "runbooks:\n" + "".join(f"  - {name}\n" for name in ACTION_RUNBOOKS)
    )
    out = tmp / "reports"
    out.mkdir()
    log = tmp / "audit.jsonl"
    before = database_state(pg, action_db)
    proc = cli(pg, ["suite", str(suite), "--jobs", "4", "--fail-on", "error"], out, log)
    return {"proc": proc, "out": out, "log": log, "before": before, "after": database_state(pg, action_db)}


def test_dry_runs_succeed_and_change_nothing(dry_suite):
    proc = dry_suite["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr  # no runbook failed, nothing at or above error
    assert dry_suite["after"] == dry_suite["before"]
    assert not dry_suite["log"].exists(), "a dry run writes no audit record"


@pytest.mark.parametrize("runbook", list(ACTION_RUNBOOKS))
def test_dry_run_reports_its_plan_from_a_read_only_session(dry_suite, action_db, runbook):
    doc = report(dry_suite["out"], runbook)
    findings = doc["findings"]
    assert findings["status"] == "ok", findings["error"]
    plan = [f for f in findings["findings"] if f["check_id"] == f"action.{ACTION_RUNBOOKS[runbook]}.plan"]
    assert len(plan) == 1, findings["findings"]
    assert plan[0]["severity"] == "info" and plan[0]["object"] == action_db
    assert "confirm" in plan[0]["remediation"]
    assert "· read-only" in doc["outputs"], "a dry run connects read-only"
    assert "Dry run: nothing was changed." in doc["html"]


def test_dry_runs_plan_the_planted_faults(dry_suite):
    vacuum = report(dry_suite["out"], "weekly/vacuum_analyze")["findings"]["findings"][0]
    assert vacuum["value"] >= 1 and "VACUUM (ANALYZE)" in vacuum["detail"]
    assert "public.db_metrics" in report(dry_suite["out"], "weekly/vacuum_analyze")["html"]
    archive = report(dry_suite["out"], "monthly/archive_old_data")
    assert archive["findings"]["findings"][0]["value"] > 0, "old calls and SMS to move"
    # Every planted fault: recordings (no FK) and call_event_log reference old calls, so the plan is
    # blocked and prints no apply command (the pinned as_of of one: test_apply_command.py)
    assert "apply would refuse: resolve the blockers" in archive["outputs"]
    assert "pgrunbooks run monthly/archive_old_data -p" not in archive["outputs"]
    reindex = report(dry_suite["out"], "monthly/reindex")
    assert "recordings_url_key" in reindex["html"] and "duplicate" in reindex["html"]
    # what the rebuild cannot fix is a warning finding, so a scheduled dry run surfaces it
    warnings = [f for f in reindex["findings"]["findings"] if f["check_id"] == "action.reindex.warning"]
    assert any("recordings_url_key" in f["detail"] for f in warnings), reindex["findings"]["findings"]


# --------------------------------------------------------------------------------------
# applying (first server only)
# --------------------------------------------------------------------------------------
def test_vacuum_analyze_applied_with_the_right_confirm(first_pg, faults_clone, tmp_path):
    pg = first_pg
    log = tmp_path / "audit.jsonl"
    with pg.connect(faults_clone) as conn:
        dead_before = conn.execute(
            "select n_dead_tup from pg_stat_user_tables where relid = %s::regclass", (DEAD_TUPLES_TABLE,)
        ).fetchone()[0]
    assert dead_before > 1000, "the planted dead tuples"
    dry = tmp_path / "dry"
    dry.mkdir()
    proc = cli(pg, ["run", "weekly/vacuum_analyze", "--target", f"local:{faults_clone}"], dry, log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    command = printed_apply_command(report(dry, "weekly/vacuum_analyze")["outputs"])
    assert "dry_run=false" in command and f"confirm={faults_clone}" in command
    out = tmp_path / "apply"
    out.mkdir()
    proc = cli(pg, [*command[1:], "-p", "operator=alice", "--fail-on", "warning"], out, log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with pg.connect(faults_clone) as conn:
        dead_after, last_vacuum = conn.execute(
            "select n_dead_tup, last_vacuum from pg_stat_user_tables where relid = %s::regclass", (DEAD_TUPLES_TABLE,)
        ).fetchone()
    assert dead_after < dead_before / 10 and last_vacuum is not None
    doc = report(out, "weekly/vacuum_analyze")
    (result,) = [f for f in doc["findings"]["findings"] if f["check_id"] == "action.vacuum_analyze.result"]
    assert result["severity"] == "ok" and result["title"].startswith("applied")
    assert "· read-write" in doc["outputs"] and "dead tuples reduced" in doc["html"]
    assert "<b>PASS</b>" in doc["html"] and "✅" not in doc["html"], "verification marks readable without emoji"
    records = audit.read(log)
    assert [r["outcome"] for r in records] == ["started", "applied"]
    applied = records[-1]
    assert applied["runbook"] == "weekly/vacuum_analyze" and applied["operator"] == "alice"
    assert applied["target"] == f"local:{faults_clone}" and applied["confirm_given"] == faults_clone
    assert applied["id"] == result["object"], "the result finding names its audit record"
    assert any(o["table"] == DEAD_TUPLES_TABLE for o in applied["result"]["objects"])


def test_wrong_confirm_fails_the_run_visibly_and_changes_nothing(first_pg, action_db, tmp_path):
    pg = first_pg
    log = tmp_path / "audit.jsonl"
    before = database_state(pg, action_db)
    proc = cli(
        pg,
        ["run", "monthly/archive_old_data", "--target", f"local:{action_db}", "-p", "dry_run=false", "-p", "confirm=12345"],
        tmp_path, log,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr  # a wrong input: ConfirmationError.exit_code
    message = "ConfirmationError: refusing to apply archive: confirm=12345 does not match the plan"
    assert message in proc.stdout
    doc = report(tmp_path, "monthly/archive_old_data")
    assert doc["findings"]["status"] == "failed" and doc["findings"]["error"]["ename"] == "ConfirmationError"
    assert "the number of rows to move" in doc["findings"]["error"]["evalue"]
    assert message in doc["html"] and "RUNBOOK FAILED" in doc["html"]
    assert database_state(pg, action_db) == before
    assert [r["outcome"] for r in audit.read(log)] == ["refused"]


def test_terminate_dry_run_lists_each_target_with_its_query(first_pg, action_db, tmp_path):
    pg = first_pg
    with long_running_query(pg.conninfo(action_db), application_name="victorysync/report") as pid:
        proc = cli(
            pg,
            ["run", "incidents/terminate_sessions", "--target", f"local:{action_db}", "-p", "states=[active]",
             "-p", "idle_in_transaction=false", "-p", "min_duration=0", "-p", "applications=[victorysync/report]"],
            tmp_path, tmp_path / "audit.jsonl",
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with pg.connect(action_db) as conn:
            state = conn.execute("select state, query from pg_stat_activity where pid = %s", (pid,)).fetchone()
        assert state[0] == "active" and "pg_sleep" in state[1], "the dry run signalled nothing"
    doc = report(tmp_path, "incidents/terminate_sessions")
    (plan,) = doc["findings"]["findings"]
    assert plan["value"] == 1
    # show_targets: one block per session, its full query in a code block (highlighted in the HTML)
    assert f"**pid {pid} · user postgres · application victorysync/report" in doc["outputs"]
    assert "```sql\nselect pg_sleep($1)\n```" in doc["outputs"], "each target with its query text"
    assert f"pid {pid} · user postgres" in doc["html"] and 'class="n">pg_sleep</span>' in doc["html"]
    note = doc["outputs"].replace("'", "")
    assert f"-p confirm=[{pid}]" in note and f"-p pids=[{pid}]" in note, "how to apply exactly these targets"


def test_terminate_applied_with_one_pid_as_confirm(first_pg, action_db, tmp_path):
    pg = first_pg
    log = tmp_path / "audit.jsonl"
    with long_running_query(pg.conninfo(action_db), application_name="victorysync/report") as pid:
        filters = ["run", "incidents/terminate_sessions", "--target", f"local:{action_db}", "-p", "states=[active]",
                   "-p", "idle_in_transaction=false", "-p", "min_duration=0", "-p", "applications=[victorysync/report]",
                   "-p", "mode=terminate", "-p", f"pids=[{pid}]"]
        dry = tmp_path / "dry"
        dry.mkdir()
        proc = cli(pg, filters, dry, log)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (fingerprint,) = [w for w in printed_apply_command(report(dry, "incidents/terminate_sessions")["outputs"])
                          if w.startswith("plan_fingerprint=")]
        # the same filters, one pid (an int) as confirm, and the reviewed plan's fingerprint
        out = tmp_path / "apply"
        out.mkdir()
        proc = cli(pg, [*filters, "-p", "dry_run=false", "-p", f"confirm={pid}", "-p", fingerprint], out, log)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with pg.connect(action_db) as conn:
            assert conn.execute("select count(*) from pg_stat_activity where pid = %s", (pid,)).fetchone()[0] == 0
    doc = report(out, "incidents/terminate_sessions")
    (result,) = doc["findings"]["findings"]
    assert result["check_id"] == "action.terminate_sessions.result" and result["severity"] == "ok"
    applied = audit.read(log)[-1]
    assert applied["outcome"] == "applied" and applied["confirm_given"] == [pid]
    assert applied["result"]["objects"][0]["outcome"] == "terminated"
