"""The audit trail: one JSON line per outcome, fsync'd, no secrets; optional table in the target."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from pgrunbooks import audit
from pgrunbooks.actions import ConfirmationError, apply, plan_terminate
from pgrunbooks.db import connect

SECRET = "Sup3r-Secret-pw-7781"


def _writer(path: str, n: int, tag: int) -> None:
    for i in range(n):
        audit.append(audit.new_record(action="test", outcome="applied", tag=tag, i=i, filler="x" * 5000), path)


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "audit.jsonl"
    procs = [multiprocessing.Process(target=_writer, args=(str(path), 50, t)) for t in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    lines = path.read_text().splitlines()
    assert len(lines) == 200
    records = [json.loads(line) for line in lines]  # every line is whole JSON
    assert {(r["tag"], r["i"]) for r in records} == {(t, i) for t in range(4) for i in range(50)}


def test_scrub_drops_secret_keys_and_redacts_values():
    record = audit.new_record(
        action="x",
        parameters={"password": SECRET, "api_key": "k", "dsn": "host=h", "note": f"postgresql://u:{SECRET}@h/db",
                    "conninfo_like": f"host=h password={SECRET}", "nested": [{"token": "t"}], "ok": 3},
    )
    text = json.dumps(record)
    assert SECRET not in text and '"k"' not in text
    assert record["parameters"]["ok"] == 3 and record["parameters"]["password"] == "********"
    assert record["time"].endswith("+00:00"), "UTC"


def test_default_path_and_operator(tmp_path, monkeypatch):
    monkeypatch.delenv(audit.ENV_LOG, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "pgrunbooks"\n')
    (tmp_path / "runbooks").mkdir()
    monkeypatch.chdir(tmp_path / "runbooks")
    assert audit.default_path() == tmp_path / "audit" / "audit.jsonl"
    monkeypatch.setenv(audit.ENV_LOG, str(tmp_path / "elsewhere.jsonl"))
    assert audit.default_path() == tmp_path / "elsewhere.jsonl"
    monkeypatch.setenv(audit.ENV_OPERATOR, "oncall-bob")
    assert audit.operator_name() == "oncall-bob"
    assert audit.operator_name("alice") == "alice"


def test_success_and_failure_records_carry_no_secret(pg, clean_db, tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv(audit.ENV_LOG, str(log))
    # The DSN (with a password) reaches the runbook only through the environment.
    dsn = pg.conninfo(clean_db) + f" password={SECRET}"
    monkeypatch.setenv("PGRB_AUDIT_TEST_DSN", dsn)
    with connect("env:PGRB_AUDIT_TEST_DSN", runbook="terminate_sessions", read_only=False) as s:
        plan = plan_terminate(s, applications=["nothing-runs-under-this-name"], min_duration="0")
        with pytest.raises(ConfirmationError):
            apply(plan, confirm=[1])
        result = apply(plan, confirm=[], operator="carol")
    assert result.outcome == "nothing_to_do" and result.audit_path == str(log)
    text = log.read_text()
    assert SECRET not in text
    records = audit.read(log)
    assert [r["outcome"] for r in records] == ["refused", "started", "nothing_to_do"]
    last = records[-1]
    assert last["target"] == "env:PGRB_AUDIT_TEST_DSN" and last["operator"] == "carol"
    assert last["runbook"] == "terminate_sessions" and last["database"] == clean_db
    assert last["timings"]["total_s"] >= 0 and last["parameters"]["applications"] == ["nothing-runs-under-this-name"]
    assert records[0]["error"]["type"] == "ConfirmationError" and records[0]["confirm_given"] == [1]


def test_audit_table_in_the_target(pg, clean_clone, tmp_path, monkeypatch):
    monkeypatch.setenv(audit.ENV_LOG, str(tmp_path / "audit.jsonl"))
    with connect(pg.conninfo(clean_clone), runbook="terminate_sessions", read_only=False) as s:
        plan = plan_terminate(s, applications=["nothing-runs-under-this-name"], min_duration="0")
        can_create = s.scalar("select has_database_privilege(current_database(), 'CREATE')")
        apply(plan, confirm=[], audit_table=True)
        last = audit.read()[-1]
        if not can_create:
            # No privilege to create the schema: the file record says so, the action still succeeded.
            assert "audit_table_error" in last and last["outcome"] == "nothing_to_do"
            with pg.connect(clean_clone) as admin:
                admin.execute("create schema pgrunbooks authorization postgres")
            apply(plan, confirm=[], audit_table=True)
            last = audit.read()[-1]
        assert last.get("audit_table") == "pgrunbooks.audit_log", last
        row = s.fetch_one("select action, outcome, operator, record from pgrunbooks.audit_log order by id desc limit 1")
    assert row["action"] == "terminate_sessions" and row["outcome"] == "nothing_to_do"
    assert row["record"]["id"] == last["id"]
    with pg.connect(clean_clone) as admin:
        assert admin.execute("select count(*) from pgrunbooks.audit_log").fetchone()[0] >= 1
