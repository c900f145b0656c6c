"""``rb.record`` reports findings to the engine (one display output of the findings MIME type),
drops suppressed ones, and ``rb.detected`` prints what a nbval cell compares."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pgrunbooks import notebook
from pgrunbooks.findings import FINDINGS_MIME, Finding
from pgrunbooks.redact import register_secret

FINDINGS = [
    Finding("dead_tuples", "warning", "dead tuples", object="public.calls"),
    Finding("rls_disabled", "critical", "RLS is off", object="public.invoices"),
    Finding("connections", "ok", "connections fine"),
]


@pytest.fixture
def shell():
    shell = InteractiveShell.instance()
    yield shell
    shell.user_ns.pop("suppress", None)


def test_record_publishes_findings_and_honours_suppress(capsys):
    kept = notebook.record(
        [Finding("a.b", "warning", "one", object="x"), Finding("c.d", "critical", "two")], suppress=["c.d"]
    )
    assert [f.check_id for f in kept] == ["a.b"]
    out = capsys.readouterr().out
    assert "1 warning" in out and "1 suppressed" in out


def test_record_publishes_one_findings_output_with_passwords_redacted(shell):
    register_secret("Rec0rd-s3cret")
    leaky = Finding("x.y", "warning", "leak", object="o", detail="dsn password=Rec0rd-s3cret")
    with capture_output() as captured:
        kept = notebook.record([*FINDINGS, leaky], suppress=[])
    (output,) = captured.outputs
    payload = output.data[FINDINGS_MIME]
    assert [item["key"] for item in payload] == [f.key for f in kept] == [f.key for f in [*FINDINGS, leaky]]
    assert "Rec0rd-s3cret" not in repr(output.data)
    assert "text/html" in output.data and "text/plain" in output.data


def test_record_defaults_to_the_notebooks_suppress_parameter(shell):
    shell.user_ns["suppress"] = ["rls_disabled:public.invoices"]
    with capture_output() as captured:
        kept = notebook.record(FINDINGS)
    assert [f.check_id for f in kept] == ["dead_tuples", "connections"]
    assert [item["check_id"] for item in captured.outputs[0].data[FINDINGS_MIME]] == ["dead_tuples", "connections"]


def test_detected_prints_keys_at_or_above_the_level_worst_first(capsys):
    notebook.detected(FINDINGS)
    assert capsys.readouterr().out.splitlines() == [
        "1 critical, 1 warning, 1 ok",
        "  [critical] rls_disabled:public.invoices",
        "  [warning] dead_tuples:public.calls",
    ]
