"""One Ctrl-C stops `pgrunbooks run monthly/archive_old_data` applying on a big clone (issue 11):
exit 130, the report written with the interrupted cell marked, the audit says `interrupted`
with what was committed, and no batch commits afterwards. The apply command is the one the
dry run printed, run verbatim (split with shlex). PostgreSQL 18 and 15."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from pgrunbooks import audit

from clihelpers import PROJECT, run_dir_of


def _archived(conn) -> int:
    return conn.execute("select count(*) from public.call_archives").fetchone()[0]


def _printed_apply_command(run_dir) -> list[str]:
    nb = nbformat.read(run_dir / "monthly-archive_old_data.ipynb", as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or (output.get("data") or {}).get("text/plain") or ""
            for line in "".join(text).splitlines():
                if line.strip().startswith("pgrunbooks run monthly/archive_old_data") and "dry_run=false" in line:
                    return shlex.split(line.strip())
    raise AssertionError("the dry run printed no apply command")


@pytest.mark.slow
def test_sigint_stops_an_archive_apply_from_the_cli_exit_130_report_and_audit(pg, big_clone, tmp_path):
    env = dict(os.environ, PGRB_ARCHIVE_DSN=pg.conninfo(big_clone), PGRUNBOOKS_RUNBOOKS=str(PROJECT / "runbooks"),
               PGRUNBOOKS_AUDIT_LOG=str(tmp_path / "audit.jsonl"), PLOOMBER_STATS_ENABLED="false")
    shaping = ["-p", "pairs=[{source: public.calls, archive: public.call_archives, older_than: 1 year}]",
               "-p", "on_dependents=skip", "-p", "batch_size=1000", "-p", "vacuum=false",
               "-p", f"as_of={dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()}"]
    dry = subprocess.run(
        [sys.executable, "-m", "pgrunbooks", "run", "monthly/archive_old_data", "-p", "target=env:PGRB_ARCHIVE_DSN",
         *shaping, "--out", str(tmp_path / "dry")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert dry.returncode in (0, 1), dry.stderr + dry.stdout
    words = _printed_apply_command(run_dir_of(tmp_path / "dry"))
    assert words[:2] == ["pgrunbooks", "run"]
    out = tmp_path / "apply"
    proc = subprocess.Popen([sys.executable, "-m", *words, "--out", str(out)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        with pg.connect(big_clone) as mon:
            while _archived(mon) < 5_000:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the apply never got going"
                time.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)
            archived = _archived(mon)
            time.sleep(1.0)
            assert _archived(mon) == archived, "no batch committed after the CLI ended"
            left = mon.execute("select count(*) from public.calls where created_at < now() - interval '1 year'").fetchone()[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert left > 10_000, "the run stopped; it did not move every row"
    run_dir = run_dir_of(out)
    assert (run_dir / "monthly-archive_old_data.html").is_file()
    nb = nbformat.read(run_dir / "monthly-archive_old_data.ipynb", as_version=4)
    marked = [c for c in nb.cells if c.get("metadata", {}).get("papermill", {}).get("exception")]
    assert marked and "act.conclude(" in marked[0].source, "the interrupted cell (the apply) is the one marked"
    assert [o for o in marked[0].outputs if o.get("output_type") == "error"], "with the error it stopped on"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["runbooks"][0]["error"]["ename"] == "KeyboardInterrupt", summary["runbooks"][0]["error"]
    records = audit.read(tmp_path / "audit.jsonl")
    applies = [r for r in records if r.get("outcome") != "planned" and r.get("dry_run") is not True]
    assert applies[-1]["outcome"] == "interrupted", applies[-1]
    assert f"{archived:,} rows of public.calls archived" in applies[-1]["progress"]["committed"]
