"""The seeded db_metrics gives database_growth what it needs: an index and a day-old snapshot."""

from __future__ import annotations

import json

from clihelpers import cli_env, run_cli


def test_database_growth_runs_on_the_seeded_database(pg, faults_db):
    # max_scan_rows=1: without an index on db_metrics the check would refuse (skipped) at any scale.
    args = ["check", "--target", f"local:{faults_db}", "--check", "database_growth", "--format", "json",
            "--fail-on", "none", "--threshold", "database_growth.max_scan_rows=1"]
    out = run_cli(args, cli_env(pg), cwd=pg.home)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [c["status"] for c in doc["checks"]] == ["ok"]
    [finding] = doc["findings"]
    assert finding["severity"] == "ok", finding  # a snapshot a day old, a plausible size: no growth alarm
    assert "change:" in finding["title"] and " ago " in finding["title"]
