"""Every value checked before connecting (pgrunbooks.engine.constraints, issue 11 item 4):
declared constraints of the runbooks, bad sizes/timeouts/intervals/timestamps, int4/int8
ranges, non-UTF-8 input, unknown thresholds, a suite's unset env:VAR said once, and a usage
error raised inside a runbook exiting 3. The real CLI, against a server that never answers."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import nbformat
import pytest

from pgrunbooks import audit
from pgrunbooks.engine import constraints
from pgrunbooks.engine.catalog import discover
from pgrunbooks.engine.params import notebook_parameters

from clihelpers import PROJECT, HangServer, run_dir_of

RUNBOOKS = PROJECT / "runbooks"


@pytest.fixture
def hang():
    server = HangServer()
    yield server
    server.close()


def _cli(args, env, cwd, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pgrunbooks", *args], env=env, cwd=cwd, capture_output=True,
                          timeout=timeout)


def _env(hang: HangServer, **extra) -> dict[str, str]:
    env = dict(os.environ, PGRB_HANG_DSN=hang.dsn(timeout=2), PGRUNBOOKS_RUNBOOKS=str(RUNBOOKS), **extra)
    env.pop("PGRB_UNSET_TARGET", None)
    return env


# ------------------------------------------------------------------------------------------
# The parsers, without a server
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, unit, seconds", [
    ("5s", "s", 5), ("500ms", "s", 0.5), ("30min", "s", 1800), ("1h", "s", 3600), ("2 days", "s", 172800),
    ("1 year", "s", 31557600), ("6 months", "s", 6 * 2592000), ("5 minutes", "s", 300), ("1h 30min", "s", 5400),
    ("5000", "ms", 5), (0, "ms", 0), ("0", "ms", 0), ("-5min", "s", -300),
])
def test_intervals_read_like_postgresql(text, unit, seconds):
    assert constraints.interval_seconds(text, unit) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30sekonds", "soon", "", "5 s x", "1.2.3s", True, None, "5 5"])
def test_unparseable_intervals_are_refused(text):
    with pytest.raises(ValueError):
        constraints.interval_seconds(text)


def test_timestamps_are_iso_and_utc_without_a_zone():
    assert constraints.parse_timestamp("2026-01-31") == dt.datetime(2026, 1, 31, tzinfo=dt.timezone.utc)
    assert constraints.parse_timestamp("2026-01-31T10:00:00+02:00").utcoffset() == dt.timedelta(hours=2)
    with pytest.raises(ValueError):
        constraints.parse_timestamp("yesterday")


def test_ints_are_bounded_by_int8_even_without_a_max():
    assert constraints.problems("n", 2**63, {"type": "int"}) == ["parameter 'n' must be at most 9223372036854775807, got 9223372036854775808"]
    assert constraints.problems("n", 2**63 - 1, {"type": "int"}) == []


def test_a_malformed_declaration_is_refused():
    for bad in ({"type": "nosuch"}, {"type": "int", "min": "x"}, {"type": "interval", "unit": "fortnight"},
                {"type": "int", "mni": 1}):
        with pytest.raises(constraints.ConstraintSpecError):
            constraints.check_spec({"p": bad}, "test")


# ------------------------------------------------------------------------------------------
# The runbooks declare a constraint for every numeric, interval and timestamp parameter
# ------------------------------------------------------------------------------------------
def _looks_like_interval(value) -> bool:
    try:
        constraints.interval_seconds(value)
    except (ValueError, KeyError):
        return False
    return isinstance(value, str)


@pytest.mark.parametrize("runbook", discover(RUNBOOKS), ids=lambda r: r.name)
def test_every_numeric_interval_and_timestamp_parameter_has_a_constraint(runbook):
    declared = constraints.check_spec(runbook.metadata.get("parameters"), runbook.name)
    spec = notebook_parameters(runbook.path)
    assert set(declared) <= set(spec), f"constraints for parameters the cell does not have: {set(declared) - set(spec)}"
    needs = set()
    for name, param in spec.items():
        words = param.help.lower()
        if param.type in ("int", "float") or _looks_like_interval(param.default) \
                or any(w in words for w in ("timestamp", "interval", "seconds", "rows per")):
            needs.add(name)
        if param.type == "list" and any(isinstance(v, int) and not isinstance(v, bool) for v in param.default or []):
            needs.add(name)
    assert needs <= set(declared), f"{runbook.name}: no constraint for {sorted(needs - set(declared))}"
    for name, decl in declared.items():  # the defaults themselves are valid
        default = spec[name].default if spec[name].has_literal_default else None
        assert constraints.problems(name, default, decl) == [], f"{runbook.name}: default of {name}"
    if runbook.mutates:  # a mutation's time bounds can never be switched off (0 = no limit in PostgreSQL)
        for name in ("statement_timeout", "lock_timeout"):
            if name in spec:
                assert constraints.problems(name, "0", declared[name]), f"{runbook.name}: {name}=0 must be refused"


# ------------------------------------------------------------------------------------------
# The real CLI: exit 3, every problem listed, nothing connected
# ------------------------------------------------------------------------------------------
def test_bad_values_of_an_apply_exit_3_listing_every_problem_before_connecting(hang, tmp_path):
    proc = _cli([
        "run", "monthly/archive_old_data", "--target", "env:PGRB_HANG_DSN", "--out", str(tmp_path / "out"),
        "-p", "dry_run=false", "-p", "confirm=10", "-p", "batch_size=0", "-p", "lock_timeout=0",
        "-p", "statement_timeout=30sekonds", "-p", "as_of=2999-01-01", "-p", "pause=-1",
        "-p", "pairs=[{source: public.calls, archive: public.call_archives, older_than: soon}]",
    ], _env(hang, PGRUNBOOKS_AUDIT_LOG=str(tmp_path / "audit.jsonl")), tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    for expected in ("'batch_size' must be at least 1, got 0", "'lock_timeout' must be at least 1ms, got '0'",
                     "'statement_timeout' is not an interval: '30sekonds'", "'as_of' must be at most now",
                     "'pause' must be at least 0", "pairs[0].older_than is not an interval: 'soon'"):
        assert expected in err, err
    assert hang.accepted == 0, "nothing connected"
    assert not (tmp_path / "out").exists(), "no run directory, no kernel"
    [record] = audit.read(tmp_path / "audit.jsonl")  # the refused apply is on record all the same
    assert record["outcome"] == "refused" and record["runbook"] == "monthly/archive_old_data"
    assert "'batch_size' must be at least 1" in record["error"]["message"]
    assert record["error"]["while"] == "validating parameters"


def test_a_refused_dry_run_leaves_no_audit_record(hang, tmp_path):
    log = tmp_path / "audit.jsonl"
    proc = _cli(["run", "monthly/archive_old_data", "--target", "env:PGRB_HANG_DSN", "-p", "batch_size=0",
                 "--out", str(tmp_path / "out")], _env(hang, PGRUNBOOKS_AUDIT_LOG=str(log)), tmp_path)
    assert proc.returncode == 3 and not log.exists()


@pytest.mark.parametrize("assignment, message", [
    ("pids=[99999999999999]", "pids[0] must be at most 2147483647, got 99999999999999"),
    ("pids=[0]", "pids[0] must be at least 1"),
    ("grace_period=-1", "'grace_period' must be at least 0"),
    ("min_duration=5 sekonds", "'min_duration' is not an interval"),
])
def test_out_of_range_and_unparseable_values_exit_3(hang, tmp_path, assignment, message):
    proc = _cli(["run", "incidents/terminate_sessions", "--target", "env:PGRB_HANG_DSN", "-p", assignment,
                 "--out", str(tmp_path / "out")], _env(hang), tmp_path)
    assert proc.returncode == 3 and message in proc.stderr.decode(), proc.stderr.decode()
    assert hang.accepted == 0


def test_non_utf8_bytes_in_a_parameter_or_a_params_file_exit_3_before_anything_runs(hang, tmp_path):
    env = _env(hang, LC_ALL="C.UTF-8", LANG="C.UTF-8")
    proc = _cli(["run", "weekly/vacuum_analyze", "--target", "env:PGRB_HANG_DSN", "--out", str(tmp_path / "out"),
                 "-p", b"tables=[public.caf\xe9]"], env, tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert b"is not UTF-8 (byte 0xe9" in proc.stderr
    params = tmp_path / "latin1.yaml"
    params.write_bytes(b"dry_run: true\ntables: [public.caf\xe9]\n")
    proc = _cli(["run", "weekly/vacuum_analyze", "--target", "env:PGRB_HANG_DSN", "--out", str(tmp_path / "out"),
                 "-f", str(params)], env, tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert b"latin1.yaml is not UTF-8: byte 0xe9 at line 2" in proc.stderr
    assert hang.accepted == 0 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("thresholds, message", [
    ("thresholds={tenant_isolation: {nosuch: 1}}", "tenant_isolation has no threshold 'nosuch'"),
    ("thresholds={tenant_isolaton: {sample: 1}}", "unknown check 'tenant_isolaton' (did you mean tenant_isolation?)"),
    ("thresholds={tenant_isolation: {sample: many}}", "tenant_isolation.sample: 'many' is not a valid int"),
])
def test_unknown_thresholds_in_a_runbook_parameter_exit_3(hang, tmp_path, thresholds, message):
    proc = _cli(["run", "weekly/security_audit", "--target", "env:PGRB_HANG_DSN", "-p", thresholds,
                 "--out", str(tmp_path / "out")], _env(hang), tmp_path)
    assert proc.returncode == 3 and message in proc.stderr.decode(), proc.stderr.decode()
    assert hang.accepted == 0


def test_every_threshold_problem_is_listed_at_once(hang, tmp_path):
    proc = _cli(["run", "weekly/security_audit", "--target", "env:PGRB_HANG_DSN", "--out", str(tmp_path / "out"),
                 "-p", "thresholds={tenant_isolation: {nosuch: 1}, dead_tupels: {warning: 1}}", "-p", "checks=[nosuch]"],
                _env(hang), tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    for expected in ("unknown check 'nosuch'", "tenant_isolation has no threshold 'nosuch'", "unknown check 'dead_tupels'"):
        assert expected in err, err


def test_an_unset_env_target_in_a_suite_is_reported_once(hang, tmp_path):
    suite = tmp_path / "three.yaml"
    suite.write_text("runbooks: [weekly/index_health, weekly/security_audit, daily/health_overview]\n"
                     "params:\n  target: env:PGRB_UNSET_TARGET\n")
    proc = _cli(["suite", str(suite), "--out", str(tmp_path / "out")], _env(hang), tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert err.count("PGRB_UNSET_TARGET is not set") == 1, err


def test_a_usage_error_raised_inside_a_runbook_exits_3_with_its_report(tmp_path):
    root = tmp_path / "runbooks" / "test"
    root.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("tables = ['public.nosuch']  # tables to act on")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from pgrunbooks.errors import ParameterError\n"
        "raise ParameterError(f'no table matches {tables}', hint='see pgrunbooks check')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "plan.ipynb")
    env = dict(os.environ, PGRUNBOOKS_RUNBOOKS=str(tmp_path / "runbooks"))
    proc = _cli(["run", "test/plan", "--out", str(tmp_path / "out")], env, tmp_path, timeout=180)
    assert proc.returncode == 3, proc.stderr.decode() + proc.stdout.decode()
    run_dir = run_dir_of(tmp_path / "out")
    assert (run_dir / "test-plan.html").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["runbooks"][0]["error"]["ename"] == "ParameterError"
