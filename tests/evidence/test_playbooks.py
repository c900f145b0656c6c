"""The two playbooks end to end through the real CLI (papermill, kernels), on the first server only (two
kernels cost ~18 s; the ranking itself is tested on both versions in test_rank.py):
with a lock queue and a WAL-retaining slot planted, high_load's first finding is the lock queue's root and
disk_space's is the slot; the evidence is written beside each report; nothing is changed (dry runs)."""

from __future__ import annotations

import json

from clihelpers import action_cli as cli, run_dir_of, runbook_report as report
from pgrunbooks.seed import incidents


def test_playbooks_name_the_planted_causes_first(first_pg, clean_db, tmp_path):
    pg = first_pg
    suite = tmp_path / "incidents.yaml"
    suite.write_text(
        "description: the incident playbooks with a short evidence window\n"
        f"params:\n  target: local:{clean_db}\n  evidence_seconds: 1\n  evidence_samples: 100\n"
        "runbooks:\n  - incidents/high_load\n  - incidents/disk_space\n"
    )
    out = tmp_path / "reports"
    out.mkdir()
    log = tmp_path / "audit.jsonl"
    admin = pg.admin_conninfo(clean_db)
    with incidents.lock_queue(admin, waiters=2) as queue, incidents.wal_retaining_slot(admin, megabytes=32) as slot:
        proc = cli(pg, ["suite", str(suite), "--jobs", "2", "--fail-on", "none"], out, log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    high, disk = report(out, "incidents/high_load"), report(out, "incidents/disk_space")
    assert high["findings"]["status"] == "ok" and disk["findings"]["status"] == "ok"
    first = high["findings"]["findings"][0]
    assert (first["check_id"], first["object"]) == ("high_load.lock_queue", f"pid:{queue.root_pid}")
    first = disk["findings"]["findings"][0]
    assert (first["check_id"], first["object"]) == ("disk_space.wal_retaining_slot", f"slot:{slot.slot}")
    assert "most likely cause: lock_queue" in high["outputs"] and "· read-only" in high["outputs"]
    assert "action.terminate_sessions.plan" in {f["check_id"] for f in high["findings"]["findings"]}
    assert "action.drop_slot.plan" in {f["check_id"] for f in disk["findings"]["findings"]}
    folder = run_dir_of(out)
    for stem in ("incidents-high_load", "incidents-disk_space"):
        evidence = json.loads((folder / f"{stem}.evidence.json").read_text())
        assert evidence["sample_count"] == 100 and evidence["lock_tree"]
    assert not log.exists(), "dry runs write no audit record"
