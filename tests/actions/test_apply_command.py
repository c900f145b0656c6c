"""The apply command a dry run prints applies exactly the reviewed plan (issue 11, item 1).

What a DBA does: run a mutating runbook's dry run through the real CLI on a private clone
of the planted-faults sandbox, with filters that shape the plan; copy the one command
printed at the top of the plan; paste it. Here the command is split with ``shlex`` (as a
POSIX shell does) and run verbatim (only ``--out`` is added, for the report folder); the
run must apply the plan that was reviewed: the same objects, the same rows, and an audit
record whose plan has the dry run's fingerprint. Kernels cost seconds: the first server only
(the library tests cover both versions).
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import nbformat
import pytest

from pgrunbooks import audit
from pgrunbooks.seed.runtime import long_running_query
from clihelpers import action_cli, printed_apply_command, runbook_report

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"
NOT_PLAN_SHAPING = {"operator", "suppress"}  # who applies it, which findings are accepted: not the plan
SMS_PAIR = "pairs=[{source: public.sms_messages, archive: public.sms_archives, older_than: 6 months}]"


def dry_then_paste(pg, runbook: str, args: list[str], tmp_path) -> dict:
    """The dry run of ``runbook`` with ``args``, then its printed command pasted as is."""
    log = tmp_path / "audit.jsonl"
    dry, applied = tmp_path / "dry", tmp_path / "apply"
    dry.mkdir()
    applied.mkdir()
    proc = action_cli(pg, ["run", runbook, *args], dry, log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dry_doc = runbook_report(dry, runbook)
    command = printed_apply_command(dry_doc["outputs"])
    # The command is the first thing the plan shows, and is alone on its line.
    head = dry_doc["outputs"].index("pgrunbooks run ")
    assert "Dry run: nothing was changed" not in dry_doc["outputs"][:head]
    assert command[:3] == ["pgrunbooks", "run", runbook], command
    assert command[-1].startswith("plan_fingerprint=") and "dry_run=false" in command
    assert not audit.read(log), "a dry run writes no audit record"
    assert dry_doc["outputs"].index("pgrunbooks run ") < dry_doc["outputs"].index("Plan: "), "at the top of the plan"
    assert set(words(command)) == runbook_parameters(runbook) - NOT_PLAN_SHAPING, "every plan-shaping parameter"
    proc = action_cli(pg, command[1:], applied, log)
    assert proc.returncode == 0, shlex.join(command) + "\n" + proc.stdout + proc.stderr
    (plan,) = [f for f in dry_doc["findings"]["findings"] if f["check_id"].endswith(".plan")]
    records = audit.read(log)
    assert [r["outcome"] for r in records] == ["started", "applied"], records
    fingerprint = command[-1].removeprefix("plan_fingerprint=")
    assert records[-1]["plan"]["fingerprint"] == fingerprint == records[-1]["fingerprint_given"]
    planned = records[-1]["plan"]
    counted = planned["rows"] if planned["rows"] is not None else len(planned["objects"])
    assert counted == plan["value"], "the applied plan counted what the reviewed one did"
    return {"command": command, "record": records[-1], "dry": dry_doc, "applied": runbook_report(applied, runbook)}


def runbook_parameters(runbook: str) -> set[str]:
    """The names the runbook's parameters cell assigns."""
    nb = nbformat.read(RUNBOOKS / f"{runbook}.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets}


def words(command: list[str]) -> dict[str, str]:
    """``-p key=value`` words of a split command, as key → raw value."""
    return dict(w.split("=", 1) for w in command[3:] if w != "-p")


@pytest.fixture
def pg1(first_pg):
    return first_pg


def test_pasted_vacuum_command_applies_the_reviewed_tables(pg1, faults_clone, tmp_path):
    args = ["--target", f"local:{faults_clone}", "-p", "from_checks=false", "-p", "tables=[public.db_metrics]",
            "-p", "analyze_only=[public.user_import_staging]", "-p", "lock_timeout=3s"]
    run = dry_then_paste(pg1, "weekly/vacuum_analyze", args, tmp_path)
    given = words(run["command"])
    assert given["tables"] == "[public.db_metrics]" and given["from_checks"] == "false"
    assert given["lock_timeout"] == "3s" and given["target"] == f"local:{faults_clone}"
    done = {o["table"]: o for o in run["record"]["result"]["objects"]}
    assert set(done) == {"public.db_metrics", "public.user_import_staging"}, "the reviewed tables, no others"


def test_pasted_archive_command_moves_the_reviewed_rows(pg1, faults_clone, tmp_path):
    with pg1.connect(faults_clone) as conn:
        before = conn.execute("select count(*) from public.sms_archives").fetchone()[0]
        calls = conn.execute("select count(*) from public.calls").fetchone()[0]
    args = ["--target", f"local:{faults_clone}", "-p", SMS_PAIR, "-p", "batch_size=500", "-p", "vacuum=false"]
    run = dry_then_paste(pg1, "monthly/archive_old_data", args, tmp_path)
    given = words(run["command"])
    assert given["batch_size"] == "500" and given["vacuum"] == "false" and "sms_messages" in given["pairs"]
    assert given["as_of"].startswith('"'), "as_of is a quoted YAML string, as -p parses it"
    assert not any(w.endswith(".") for w in run["command"]), "no full stop glued to the last word"
    rows = run["record"]["plan"]["rows"]
    assert rows > 0
    with pg1.connect(faults_clone) as conn:
        assert conn.execute("select count(*) from public.sms_archives").fetchone()[0] == before + rows
        assert conn.execute("select count(*) from public.calls").fetchone()[0] == calls, "only the reviewed pair"


def test_pasted_reindex_command_rebuilds_and_drops_the_reviewed_indexes(pg1, faults_clone, tmp_path):
    def nodes(conn):
        return dict(conn.execute(
            "select c.relname, c.relfilenode from pg_class c join pg_index i on i.indexrelid = c.oid"
            " where c.relnamespace = 'public'::regnamespace").fetchall())

    with pg1.connect(faults_clone) as conn:
        before = nodes(conn)
    args = ["--target", f"local:{faults_clone}", "-p", "from_checks=false", "-p", "indexes=[public.phone_numbers_org_id_idx]",
            "-p", "drop_invalid=[public.recordings_url_key]"]
    run = dry_then_paste(pg1, "monthly/reindex", args, tmp_path)
    given = words(run["command"])
    assert given["indexes"] == "[public.phone_numbers_org_id_idx]" and given["drop_invalid"] == "[public.recordings_url_key]"
    with pg1.connect(faults_clone) as conn:
        after = nodes(conn)
    assert "recordings_url_key" not in after and after["phone_numbers_org_id_idx"] != before["phone_numbers_org_id_idx"]
    untouched = set(before) - {"recordings_url_key", "phone_numbers_org_id_idx"}
    assert {k: after.get(k) for k in untouched} == {k: before[k] for k in untouched}, "no other index rebuilt"


def test_pasted_terminate_command_signals_the_reviewed_sessions(pg1, faults_clone, tmp_path):
    with long_running_query(pg1.conninfo(faults_clone), application_name="victorysync/report") as pid:
        args = ["--target", f"local:{faults_clone}", "-p", "states=[active]", "-p", "idle_in_transaction=false",
                "-p", "min_duration=0", "-p", "applications=[victorysync/report]", "-p", "mode=terminate"]
        run = dry_then_paste(pg1, "incidents/terminate_sessions", args, tmp_path)
        with pg1.connect(faults_clone) as conn:
            assert conn.execute("select count(*) from pg_stat_activity where pid = %s", (pid,)).fetchone()[0] == 0
    given = words(run["command"])
    assert given["pids"] == f"[{pid}]" and given["confirm"] == f"[{pid}]"
    assert given["applications"] == "[victorysync/report]" and given["states"] == "[active]" and given["mode"] == "terminate"
    assert [o["pid"] for o in run["record"]["result"]["objects"]] == [pid]
