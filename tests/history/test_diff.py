"""The run-to-run diff of findings (pgrunbooks.history.diff): pure, no database.

What a DBA reads at the top of a run's index: which problems are new since the previous run,
which were resolved, which are still open, compared by finding key."""

from __future__ import annotations

from pgrunbooks.history.diff import Entry, compare
from pgrunbooks.findings import Finding


def _e(check, obj, severity="warning", runbook="weekly/a"):
    return Entry.of(Finding(check, severity, f"{check} on {obj}", object=obj), runbook)


def test_a_finding_planted_between_two_runs_is_the_only_new_one():
    before = [_e("rls_disabled", "public.calls"), _e("unused_indexes", "public.i1", "info")]
    after = before + [_e("tables_without_primary_key", "public.t", "warning")]
    diff = compare(before, after, previous_run={"started_at": "2026-12-01T00:00:00+00:00"})
    assert [e.key for e in diff.new] == ["tables_without_primary_key:public.t"]
    assert diff.resolved == [] and diff.unchecked == []
    assert [e.key for e in diff.open] == ["rls_disabled:public.calls", "unused_indexes:public.i1"]  # worst first
    assert diff.counts_text() == "1 new, 0 resolved, 2 still open"


def test_a_finding_gone_is_resolved_and_ok_findings_are_not_problems():
    before = [_e("rls_disabled", "public.calls", "critical"), _e("tables_without_primary_key", "", "ok")]
    after = [_e("rls_disabled", "", "ok")]
    diff = compare(before, after)
    assert [e.key for e in diff.resolved] == ["rls_disabled:public.calls"]
    assert diff.new == [] and diff.open == []  # an ok finding appearing or going is no news


def test_the_same_key_from_two_runbooks_counts_once_at_its_worst():
    now = [_e("rls_disabled", "public.x", "warning", "weekly/a"), _e("rls_disabled", "public.x", "critical", "daily/b")]
    diff = compare([], now)
    assert [(e.key, e.severity.value) for e in diff.new] == [("rls_disabled:public.x", "critical")]


def test_without_a_previous_run_every_problem_is_new():
    diff = compare(None, [_e("a", "x", "info"), _e("b", "y", "critical"), _e("c", "z", "skipped")])
    assert diff.previous is None and [e.key for e in diff.new] == ["b:y", "a:x"]
    assert diff.to_dict()["previous_run"] is None


def test_findings_of_a_runbook_that_failed_this_time_are_not_resolved():
    before = [_e("a", "x", runbook="weekly/broken"), _e("b", "y", runbook="weekly/fine"), _e("c", "z", runbook=None)]
    diff = compare(before, [], failed_runbooks={"weekly/broken"})
    assert [e.key for e in diff.resolved] == ["b:y"]
    assert [e.key for e in diff.unchecked] == ["a:x", "c:z"]  # its runbook failed, or unknown while one failed


def test_fail_on_new_counts_new_warnings_and_worse_only():
    diff = compare([_e("old", "o", "critical")], [_e("old", "o", "critical"), _e("n1", "a", "info"), _e("n2", "b", "warning"), _e("n3", "c", "error")])
    assert [e.key for e in diff.alerting()] == ["n3:c", "n2:b"]
    assert compare([], [_e("n1", "a", "info")]).alerting() == []


def test_summary_lists_have_the_documented_keys():
    doc = compare([_e("a", "x")], [_e("b", "y", "critical")], previous_run={"started_at": "t", "source": "history"}).to_dict()
    assert set(doc) == {"previous_run", "new", "resolved", "open", "unchecked"}
    assert doc["new"] == [{"key": "b:y", "check_id": "b", "severity": "critical", "object": "y", "title": "b on y"}]
    assert [e["key"] for e in doc["resolved"]] == ["a:x"]
    assert Entry.from_dict(doc["new"][0]) == Entry("b:y", "b", "critical", "y", "b on y")


def _summary(folder, suite, target, started, findings=(), status="ok"):
    import json

    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({
        "suite": suite, "target": target, "started_at": started,
        "runbooks": [{"runbook": "weekly/a", "status": status, "findings": [e.to_dict() for e in findings]}],
    }))


def test_the_previous_run_directory_is_the_latest_complete_one_of_the_same_suite_and_target(tmp_path):
    import datetime as dt

    from pgrunbooks.history.runs import previous_in_directory

    _summary(tmp_path / "20261201T060000Z", "daily", "local", "2026-12-01T06:00:00+00:00", [_e("a", "old")])
    _summary(tmp_path / "20261202T060000Z", "daily", "local", "2026-12-02T06:00:00+00:00", [_e("a", "x")])
    _summary(tmp_path / "20261202T060000Z-2", "daily", "service:prod", "2026-12-02T06:00:01+00:00", [_e("b", "y")])
    _summary(tmp_path / "20261202T070000Z", "weekly", "local", "2026-12-02T07:00:00+00:00", [_e("c", "z")])
    (tmp_path / "20261202T080000Z").mkdir()  # a run still being written: no summary yet
    _summary(tmp_path / "20261202T090000Z", "daily", "local", "2026-12-02T09:00:00+00:00", status="failed")  # no baseline
    now = dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc)
    entries, about = previous_in_directory(tmp_path, "daily", "local", now)
    assert [e.key for e in entries] == ["a:x"] and entries[0].runbook == "weekly/a"
    assert about == {"started_at": "2026-12-02T06:00:00+00:00", "run_dir": str(tmp_path / "20261202T060000Z"), "source": "directory"}
    assert previous_in_directory(tmp_path, "daily", "service:prod", now)[1]["run_dir"].endswith("-2")
    assert previous_in_directory(tmp_path, "monthly", "local", now) is None
    assert previous_in_directory(tmp_path / "missing", "daily", "local", now) is None
