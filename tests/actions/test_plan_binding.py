"""The confirmation binds the reviewed plan, not just a number (issue 11); refusals are audited.

Through the real CLI, as the issue met them: a reindex reviewed for one index and applied
for another with the same ``confirm`` and fingerprint refuses; an archive reviewed with
defaults and applied with a bigger batch refuses; drift within ``max_drift`` is accepted
and reported, beyond it refuses. In the library (both server versions): timeouts of 0 are
refused for mutations, an ``as_of`` in the future is refused, and a plan that fails while
being made for an apply leaves a ``refused`` audit record.
"""

from __future__ import annotations

import pytest

from pgrunbooks import audit
from pgrunbooks.actions import ConfirmationError, apply, plan_archive, plan_vacuum_analyze
from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError
from pgrunbooks.notebook.act import pin_cutoffs
from clihelpers import action_cli, printed_apply_command, runbook_report

SMS_PAIR = "pairs=[{source: public.sms_messages, archive: public.sms_archives, older_than: 6 months}]"
SMS_PAIRS = [{"source": "public.sms_messages", "archive": "public.sms_archives", "older_than": "6 months"}]


def dry_run_command(pg, runbook: str, args: list[str], tmp_path) -> list[str]:
    dry = tmp_path / "dry"
    dry.mkdir()
    proc = action_cli(pg, ["run", runbook, *args], dry, tmp_path / "audit.jsonl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return printed_apply_command(runbook_report(dry, runbook)["outputs"])


def replaced(command: list[str], **values: str) -> list[str]:
    """``command`` with the ``-p`` words of ``values`` changed (what a user edits before pasting)."""
    out = []
    for word in command:
        key = word.split("=", 1)[0]
        out.append(f"{key}={values[key]}" if key in values else word)
    return out


def refused_run(pg, command: list[str], tmp_path) -> tuple[str, dict]:
    out = tmp_path / "apply"
    out.mkdir()
    log = tmp_path / "audit.jsonl"
    proc = action_cli(pg, command[1:], out, log)
    assert proc.returncode != 0, proc.stdout
    records = audit.read(log)
    assert [r["outcome"] for r in records] == ["refused"], records
    return proc.stdout + proc.stderr, records[0]


def test_reindex_reviewed_for_one_index_refuses_another_with_the_same_confirm(first_pg, faults_clone, tmp_path):
    pg = first_pg
    command = dry_run_command(pg, "monthly/reindex", ["--target", f"local:{faults_clone}", "-p", "from_checks=false",
                                                       "-p", "indexes=[public.phone_numbers_org_id_idx]",
                                                       "-p", "drop_invalid=[]"], tmp_path)
    with pg.connect(faults_clone) as conn:
        before = conn.execute("select relfilenode from pg_class where relname = 'calls_created_at_idx'").fetchone()
    output, record = refused_run(pg, replaced(command, indexes="[public.calls_created_at_idx]"), tmp_path)
    assert "ConfirmationError" in output and "differ from the plan that was reviewed" in output
    assert record["error"]["type"] == "ConfirmationError"
    with pg.connect(faults_clone) as conn:
        after = conn.execute("select relfilenode from pg_class where relname = 'calls_created_at_idx'").fetchone()
    assert after == before, "the other index was not rebuilt"


def test_archive_reviewed_with_defaults_refuses_a_bigger_batch(first_pg, faults_clone, tmp_path):
    pg = first_pg
    command = dry_run_command(pg, "monthly/archive_old_data", ["--target", f"local:{faults_clone}", "-p", SMS_PAIR],
                              tmp_path)
    with pg.connect(faults_clone) as conn:
        before = conn.execute("select count(*) from public.sms_archives").fetchone()[0]
    output, record = refused_run(pg, replaced(command, batch_size="1000000"), tmp_path)
    assert "differ from the plan that was reviewed" in output
    assert record["parameters"]["batch_size"] == 1000000
    with pg.connect(faults_clone) as conn:
        assert conn.execute("select count(*) from public.sms_archives").fetchone()[0] == before, "nothing moved"


def test_a_pasted_command_without_its_fingerprint_refuses(first_pg, faults_clone, tmp_path):
    pg = first_pg
    command = dry_run_command(pg, "weekly/vacuum_analyze", ["--target", f"local:{faults_clone}"], tmp_path)
    output, record = refused_run(pg, [w for w in command[:-2]], tmp_path)  # "-p plan_fingerprint=…" left out
    assert "no plan_fingerprint given" in output and record["error"]["type"] == "ConfirmationError"


def make_old(pg, db: str, n: int) -> None:
    """``n`` recent SMS become older than the cutoff: rows written since the dry run."""
    with pg.connect(db) as conn:
        conn.execute(
            "update public.sms_messages set created_at = now() - interval '2 years'"
            " where id in (select id from public.sms_messages where created_at > now() - interval '1 month'"
            " order by id limit %s)", (n,))


def test_archive_drift_within_max_drift_is_applied_and_reported(first_pg, faults_clone, tmp_path):
    pg = first_pg
    command = dry_run_command(pg, "monthly/archive_old_data",
                              ["--target", f"local:{faults_clone}", "-p", SMS_PAIR, "-p", "max_drift=5"], tmp_path)
    make_old(pg, faults_clone, 3)
    out = tmp_path / "apply"
    out.mkdir()
    log = tmp_path / "audit.jsonl"
    proc = action_cli(pg, command[1:], out, log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    applied = audit.read(log)[-1]
    assert applied["outcome"] == "applied"
    reviewed = int([w for w in command if w.startswith("confirm=")][0].removeprefix("confirm="))
    assert applied["plan"]["rows"] == reviewed + 3
    assert any("drift of +3 rows" in w for w in applied["result"]["warnings"]), applied["result"]["warnings"]
    assert "drift of +3 rows" in runbook_report(out, "monthly/archive_old_data")["html"]


def test_archive_drift_beyond_max_drift_refuses(first_pg, faults_clone, tmp_path):
    pg = first_pg
    command = dry_run_command(pg, "monthly/archive_old_data",
                              ["--target", f"local:{faults_clone}", "-p", SMS_PAIR, "-p", "max_drift=0"], tmp_path)
    make_old(pg, faults_clone, 1)
    output, record = refused_run(pg, command, tmp_path)
    assert "more than max_drift apart" in output and record["error"]["type"] == "ConfirmationError"


# ----------------------------------------------------------------------------------------
# the library, both server versions
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("timeouts", [{"statement_timeout": "0"}, {"lock_timeout": "0ms"}, {"statement_timeout": 0}])
def test_zero_timeouts_are_refused_for_mutations(pg, faults_clone, audit_log, timeouts):
    with connect(pg.conninfo(faults_clone), runbook="vacuum_analyze", read_only=False) as s:
        plan = plan_vacuum_analyze(s, tables=["public.db_metrics"], from_checks=False, **timeouts)
        with pytest.raises(UsageError, match="= 0 would remove the bound") as refused:
            apply(plan, confirm=faults_clone, progress=False)
    assert refused.value.exit_code == 3
    (record,) = audit.read(audit_log)
    assert record["outcome"] == "refused" and record["error"]["type"] == "UsageError"


def test_as_of_in_the_future_is_refused_and_audited(pg, faults_clone, audit_log):
    with connect(pg.conninfo(faults_clone), runbook="monthly/archive_old_data", read_only=False) as s:
        with pytest.raises(UsageError, match="later than now") as refused:
            pin_cutoffs(s, SMS_PAIRS, "2999-01-01T00:00:00+00:00")
    assert refused.value.exit_code == 3
    (record,) = audit.read(audit_log)
    assert record["outcome"] == "refused" and "later than now" in record["error"]["message"]
    assert record["action"] == "archive" and record["error"]["while"] == "planning"


def test_a_failure_while_planning_an_apply_is_audited_a_dry_run_is_not(pg, faults_clone, audit_log):
    with connect(pg.conninfo(faults_clone), runbook="weekly/vacuum_analyze", read_only=True) as s:
        with pytest.raises(Exception):
            plan_vacuum_analyze(s, tables=["public.nosuch"], from_checks=False)
    assert not audit_log.exists(), "a dry run (read-only) is not audited"
    with connect(pg.conninfo(faults_clone), runbook="weekly/vacuum_analyze", read_only=False) as s:
        with pytest.raises(Exception) as failed:
            plan_vacuum_analyze(s, tables=["public.nosuch"], from_checks=False)
    (record,) = audit.read(audit_log)
    assert record["outcome"] == "refused" and record["action"] == "vacuum_analyze"
    assert record["error"]["type"] == type(failed.value).__name__ and "nosuch" in record["error"]["message"]
    assert record["parameters"]["tables"] == ["public.nosuch"] and record["target"]


def test_a_python_plan_applies_without_a_fingerprint_a_wrong_one_refuses(pg, faults_clone, audit_log):
    with connect(pg.conninfo(faults_clone), runbook="monthly/archive_old_data", read_only=False) as s:
        plan = plan_archive(s, pin_cutoffs(s, SMS_PAIRS, None)[0], vacuum=False)
        assert len(plan.fingerprint) == 12 and plan.fingerprint == plan.fingerprint
        with pytest.raises(ConfirmationError, match="is not this plan's"):
            apply(plan, plan.confirm, fingerprint="aaaaaaaaaaaa", progress=False)
        result = apply(plan, plan.confirm, progress=False)
    assert result.outcome == "applied"
    assert [r["outcome"] for r in audit.read(audit_log)] == ["refused", "started", "applied"]
    assert audit.read(audit_log)[-1]["plan"]["fingerprint"] == plan.fingerprint
