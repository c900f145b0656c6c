"""Run-to-run diff of findings (pgrunbooks.history.runs + the engine): a suite run says what is
new, resolved and still open since the previous run of the same suite and target.

One tiny suite (weekly/security_audit with its one fast check ``tables_without_primary_key``)
on a database of its own, run three times in this process with ``--fail-on new``: a clean
baseline; then with a table without a primary key planted, which must be the only new
finding; then with it dropped and the history store unreachable, where the previous run
directory still says it is resolved. Each run costs a kernel: three per server. Then, without
a kernel (:class:`RunHistory` on the real store): the run the store missed is still the previous
one, an incomplete run is not recorded, a store the role may not write falls back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json

import pytest

from clihelpers import PROJECT, make_runbook_db
from pgrunbooks import cli
from pgrunbooks.history.runs import RunHistory
from pgrunbooks.sandbox import free_port

PLANTED = "tables_without_primary_key:public.h15b_no_pk"


def _suite_run(pg, suite, out, *extra: str) -> dict:
    """``pgrunbooks suite SUITE --fail-on new`` in this process, ``local`` the server ``pg``."""
    stdout, stderr = io.StringIO(), io.StringIO()
    before = set(out.iterdir()) if out.exists() else set()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        mp.setenv("PGRUNBOOKS_HOME", str(pg.home))
        mp.setenv("PGRUNBOOKS_RUNBOOKS", str(PROJECT / "runbooks"))
        mp.setenv("PLOOMBER_STATS_ENABLED", "false")
        code = cli.main(["suite", str(suite), "--jobs", "1", "--out", str(out), "--fail-on", "new", *extra])
    made = set(out.iterdir()) - before if out.exists() else set()
    assert len(made) == 1, f"exit {code}, no run directory\n{stdout.getvalue()[-3000:]}\n{stderr.getvalue()[-3000:]}"
    (run_dir,) = made
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "dir": run_dir,
            "summary": json.loads((run_dir / "summary.json").read_text()),
            "index": (run_dir / "index.html").read_text()}


@pytest.fixture(scope="module")
def three_runs(pg, tmp_path_factory):
    db = make_runbook_db(pg)
    here = tmp_path_factory.mktemp("run-diff")
    suite, out = here / "diffed.yaml", here / "reports"
    suite.write_text(
        f"params:\n  target: local:{db}\nrunbooks:\n"
        "  - {name: weekly/security_audit, params: {checks: [tables_without_primary_key]}}\n"
    )
    try:
        baseline = _suite_run(pg, suite, out)
        with pg.connect(db) as conn:
            conn.execute("create table public.h15b_no_pk (x int)")
        planted = _suite_run(pg, suite, out)
        with pg.connect(db) as conn:
            conn.execute("drop table public.h15b_no_pk")
        nowhere = f"host=127.0.0.1 port={free_port()} dbname=history user=postgres connect_timeout=2"
        unreachable = _suite_run(pg, suite, out, "--history", nowhere)
        # The store reachable again: the run it missed (only in its directory) is the newer previous run.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PGRUNBOOKS_HOME", str(pg.home))
            after = RunHistory(suite="diffed", target=f"local:{db}")
            after.compare([], out / "not-yet-written")
            after.close()
            # A run in which a runbook failed is no baseline: compared, not recorded.
            incomplete = RunHistory(suite="diffed", target=f"local:{db}")
            incomplete.compare([_result("failed")], out / "not-yet-written")
            incomplete_id = incomplete.record([_result("failed")], out / "not-yet-written")
            # Just after the planted run, a runbook failing: only its own findings are not re-checked.
            just_after = dt.datetime.fromisoformat(planted["summary"]["started_at"]) + dt.timedelta(microseconds=1)
            failing = {}
            for name in ("weekly/other", "weekly/security_audit"):
                failing[name] = RunHistory(suite="diffed", target=f"local:{db}", started_at=just_after)
                failing[name].compare([_result("failed", name=name)], out / "not-yet-written")
                failing[name].close()
        # A store the role may not write (no CREATE on that database): not used, said once.
        not_ours = pg.create_database(f"h15b_ro_{db}")
        try:
            refused = RunHistory(suite="diffed", target=f"local:{db}", store=pg.conninfo(not_ours))
            refused.compare([], out / "not-yet-written")
            refused.record([], out / "not-yet-written")
        finally:
            pg.drop_database(not_ours)
        with pg.connect("pgrunbooks_history") as conn:
            recorded = conn.execute(
                "select r.run_dir, count(f.key) filter (where f.severity <> 'ok')"
                " from pgrunbooks.runs as r left join pgrunbooks.run_findings as f on f.run_id = r.id"
                " where r.target = %s group by r.id, r.run_dir order by r.started_at", (f"local:{db}",)).fetchall()
    finally:
        pg.drop_database(db)
    return {"baseline": baseline, "planted": planted, "unreachable": unreachable, "recorded": recorded, "after": after,
            "refused": refused, "incomplete": (incomplete, incomplete_id),
            "failing": failing}


def _keys(entries):
    return [e["key"] for e in entries]


def test_the_first_run_has_no_previous_run_and_nothing_new(three_runs):
    run = three_runs["baseline"]
    assert run["code"] == 0, run["stderr"] + run["stdout"]
    assert run["summary"]["previous_run"] is None and run["summary"]["new"] == []
    assert "First run of this suite on this target" in run["index"]


def test_a_finding_planted_between_two_runs_is_the_only_new_one(three_runs):
    run = three_runs["planted"]
    summary = run["summary"]
    assert _keys(summary["new"]) == [PLANTED]
    assert summary["new"][0]["severity"] == "warning" and summary["new"][0]["check_id"] == "tables_without_primary_key"
    assert summary["resolved"] == [] and summary["open"] == []
    assert summary["previous_run"]["source"] == "history"
    assert summary["previous_run"]["run_dir"] == str(three_runs["baseline"]["dir"])
    assert run["code"] == 1, "--fail-on new: a new warning fails the run"
    assert "since the previous run (" in run["stdout"] and ": 1 new, 0 resolved, 0 still open" in run["stdout"]
    page = run["index"]
    since = page.index("Since the previous run")
    assert since < page.index("Look at first") and PLANTED in page[since:page.index("Look at first")]


def test_the_store_unreachable_the_previous_directory_says_it_is_resolved(three_runs):
    run = three_runs["unreachable"]
    summary = run["summary"]
    assert _keys(summary["resolved"]) == [PLANTED] and summary["new"] == [] and summary["open"] == []
    assert summary["previous_run"] == {
        "started_at": three_runs["planted"]["summary"]["started_at"],
        "run_dir": str(three_runs["planted"]["dir"]), "source": "directory",
    }
    assert run["code"] == 0, "nothing new: --fail-on new passes"
    warnings = [line for line in run["stderr"].splitlines() if line.startswith("warning: history store")]
    assert len(warnings) == 1 and "compared with the previous run directory" in warnings[0]
    assert "1 resolved" in run["stdout"] and f"resolved  {PLANTED}" in run["stdout"]


def test_every_complete_reachable_run_is_recorded_in_the_history_store(three_runs):
    incomplete, run_id = three_runs["incomplete"]
    assert run_id is None and incomplete.warnings == [] and incomplete.diff.previous["source"] == "directory"
    assert three_runs["recorded"] == [
        (str(three_runs["baseline"]["dir"]), 0), (str(three_runs["planted"]["dir"]), 1),
    ]


def test_a_run_missing_from_the_store_is_still_the_previous_one(three_runs):
    after = three_runs["after"]
    assert after.warnings == []
    assert after.diff.previous["run_dir"] == str(three_runs["unreachable"]["dir"])
    assert after.diff.previous["source"] == "directory"
    assert after.diff.new == after.diff.resolved == after.diff.open == []


def test_a_store_the_role_may_not_write_falls_back_to_the_directory(three_runs):
    refused = three_runs["refused"]
    assert len(refused.warnings) == 1 and "PrivilegeError" in refused.warnings[0], refused.warnings
    assert refused.diff.previous["source"] == "directory"
    assert refused.diff.previous["run_dir"] == str(three_runs["unreachable"]["dir"])


def test_only_the_findings_of_a_runbook_that_failed_are_not_re_checked(three_runs):
    other, same = three_runs["failing"]["weekly/other"].diff, three_runs["failing"]["weekly/security_audit"].diff
    assert other.previous["source"] == same.previous["source"] == "history"
    assert _keys(e.to_dict() for e in other.resolved) == [PLANTED] and other.unchecked == []
    assert _keys(e.to_dict() for e in same.unchecked) == [PLANTED] and same.resolved == []


def _result(status, *findings, name="weekly/a"):
    from pgrunbooks.engine.results import RunResult

    return RunResult(name, "a", status, list(findings))


def test_fail_on_new_fails_only_on_new_warnings_and_worse():
    from pgrunbooks.engine.run import exit_code
    from pgrunbooks.findings import Finding
    from pgrunbooks.history.diff import Entry, compare

    old, info = Finding("old", "critical", "o", object="x"), Finding("n", "info", "n", object="y")
    results = [_result("ok", old, info)]
    known = [Entry.of(old)]
    assert exit_code(results, "new", compare(known, [Entry.of(old), Entry.of(info)])) == 0
    assert exit_code(results, "critical", compare(known, [Entry.of(old)])) == 1, "the severity modes ignore the diff"
    warning = Finding("w", "warning", "w", object="z")
    assert exit_code([_result("ok", old, warning)], "new", compare(known, [Entry.of(old), Entry.of(warning)])) == 1
    assert exit_code([_result("failed")], "new", compare(known, [])) == 2, "a failed runbook still exits 2"
    assert exit_code([_result("ok", old)], "new", None) == 1, "no diff at all: every finding is new"


def test_fail_on_new_is_for_runs_and_suites_and_said_in_their_help(capsys):
    from pgrunbooks.engine.run import parse_fail_on
    from pgrunbooks.errors import UsageError

    assert parse_fail_on("NEW", allow_new=True) == "new"
    with pytest.raises(UsageError, match="unknown --fail-on value 'new'"):
        parse_fail_on("new")  # `pgrunbooks check` has no previous run
    for command in ("run", "suite"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "'new': exit 1 only when a finding of warning or worse is new since the previous run" in text
        assert "--history TARGET" in text and "--no-history" in text
