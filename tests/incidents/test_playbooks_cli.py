"""tenant_data_exposure through the real CLI (a kernel costs seconds: the first server only; the
library tests cover both versions and the pooler): its dry run names the leak first and prints the
command that applies the fix; a missing user is exit 3 before anything runs."""

from __future__ import annotations

from clihelpers import PROJECT, action_cli, printed_apply_command, runbook_report
from incident_helpers import member_of_two
from pgrunbooks import audit, cli
from pgrunbooks.seed.faults.catalogue import LEAKY_POLICY

TENANT = "incidents/tenant_data_exposure"


def test_tenant_playbook_names_the_leak_first_and_prints_the_fix(first_pg, faults_copy, tmp_path):
    pg, log = first_pg, tmp_path / "audit.jsonl"
    user = member_of_two(pg, faults_copy)
    proc = action_cli(pg, ["run", TENANT, "--target", f"local:{faults_copy}", "-p", f"user={user}",
                           "-p", "table=public.billing_records"], tmp_path, log)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a critical finding: the leak
    doc = runbook_report(tmp_path, TENANT)
    first = doc["findings"]["findings"][0]
    assert first["check_id"] == "tenant_data_exposure.leak" and LEAKY_POLICY in first["title"]
    command = printed_apply_command(doc["outputs"])  # the library test applies this plan
    assert "confirm=public.billing_records" in command and "dry_run=false" in command and f"user={user}" in command
    assert not audit.read(log), "a dry run writes no audit record"


def test_tenant_playbook_without_user_is_exit_3_before_anything_runs(first_pg, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PGRUNBOOKS_HOME", str(first_pg.home))
    monkeypatch.setenv("PGRUNBOOKS_RUNBOOKS", str(PROJECT / "runbooks"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", TENANT, "--target", "local:postgres", "--out", str(tmp_path)]) == 3
    assert "parameter 'user' is required" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing ran, no report"
