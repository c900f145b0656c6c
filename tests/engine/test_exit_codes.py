"""The run's exit code from its results and ``--fail-on`` (pgrunbooks.engine.run). No kernel."""

from __future__ import annotations

import pytest

from pgrunbooks.engine.results import RunResult
from pgrunbooks.engine.run import exit_code, parse_fail_on
from pgrunbooks.errors import UsageError
from pgrunbooks.findings import Finding


def _result(status="ok", *severities):
    return RunResult("g/n", "t", status, [Finding(f"c{i}", s, "x") for i, s in enumerate(severities)])


@pytest.mark.parametrize(
    "results, fail_on, code",
    [
        ([_result("ok", "ok", "info")], "critical", 0),
        ([_result("ok", "warning")], "critical", 0),
        ([_result("ok", "warning")], "warning", 1),
        ([_result("ok", "critical")], "critical", 1),
        ([_result("ok", "critical")], "none", 0),
        ([_result("ok", "skipped")], "info", 0),
        ([_result("ok", "critical"), _result("failed")], "critical", 2),
        ([_result("failed")], "none", 2),
    ],
)
def test_exit_codes(results, fail_on, code):
    assert exit_code(results, fail_on) == code


def test_fail_on_rejects_unknown_levels():
    with pytest.raises(UsageError):
        parse_fail_on("severe")
    assert parse_fail_on("WARNING") == "warning" and parse_fail_on("none") == "none"
