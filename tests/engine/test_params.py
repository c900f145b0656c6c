"""Parameters (pgrunbooks.engine.params): the notebook's parameters cell, params files,
-p values, validation (no kernel, no DB). The files under params/ are tested in test_suites.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrunbooks.engine import params
from pgrunbooks.errors import ParameterError

PROJECT = Path(__file__).resolve().parents[2]
FIXTURES = PROJECT / "tests" / "notebooks"
FINDINGS_NB = FIXTURES / "fixtures" / "findings.ipynb"
REQUIRED_NB = FIXTURES / "fixtures" / "required.ipynb"
PARAMS_DIR = PROJECT / "params"


@pytest.fixture(scope="module")
def spec():
    return params.notebook_parameters(FINDINGS_NB)


def test_types_are_inferred_from_the_defaults(spec):
    assert {name: p.type for name, p in spec.items()} == {
        "target": "str",
        "severities": "list",
        "limit": "int",
        "ratio": "float",
        "label": "str",
        "with_chart": "bool",
        "suppress": "list",
        "echo_env": "str",
    }
    assert spec["limit"].help == "how many rows to chart"


def test_none_default_with_required_comment_is_required():
    spec = params.notebook_parameters(REQUIRED_NB)
    assert spec["tenant"].required and spec["tenant"].type is None
    assert not spec["days"].required
    with pytest.raises(ParameterError, match="'tenant' is required"):
        params.validate({}, spec, runbook="fixtures/required")
    assert params.validate({"tenant": "acme"}, spec, runbook="fixtures/required") == {"tenant": "acme"}


def test_p_values_are_yaml_scalars():
    assert params.parse_assignment("limit=5")[:2] == ("limit", 5)
    assert params.parse_assignment("ratio=0.25")[:2] == ("ratio", 0.25)
    assert params.parse_assignment("with_chart=false")[:2] == ("with_chart", False)
    assert params.parse_assignment("severities=[critical, ok]")[:2] == ("severities", ["critical", "ok"])
    assert params.parse_assignment("label=a=b")[:2] == ("label", "a=b")
    assert params.parse_assignment("label=")[:2] == ("label", "")
    with pytest.raises(ParameterError, match="key=value"):
        params.parse_assignment("limit")
    with pytest.raises(ParameterError, match="invalid parameter name"):
        params.parse_assignment("1x=2")


def test_string_parameter_keeps_the_text_as_typed(spec):
    values, raw = params.merge(assignments=["label=0042", "target=local"])
    assert values["label"] == 34  # what YAML 1.1 made of it (octal!)...
    assert params.validate(values, spec, runbook="r", raw=raw)["label"] == "0042"  # ...and what the notebook gets


def test_int_is_accepted_for_float_but_not_bool_for_int(spec):
    assert params.validate({"ratio": 2}, spec, runbook="r") == {"ratio": 2.0}
    with pytest.raises(ParameterError, match="'limit' must be an int"):
        params.validate({"limit": True}, spec, runbook="r")
    with pytest.raises(ParameterError, match="'with_chart' must be a bool"):
        params.validate({"with_chart": 1}, spec, runbook="r")


def test_every_problem_is_reported_at_once_with_close_matches(spec):
    with pytest.raises(ParameterError) as caught:
        params.validate({"limt": 3, "ratio": "x", "severities": "warning"}, spec, runbook="fixtures/findings")
    text = str(caught.value)
    assert "unknown parameter 'limt' (did you mean limit?)" in text
    assert "'ratio' must be a number" in text
    assert "'severities' must be a list" in text
    assert caught.value.exit_code == 3


def test_target_is_dropped_for_notebooks_without_it_and_suppress_always_accepted():
    empty = params.notebook_parameters(FIXTURES / "fixtures" / "empty.ipynb")
    assert params.validate({"target": "local", "suppress": "a:b"}, empty, runbook="r") == {"suppress": ["a:b"]}
    with pytest.raises(ParameterError, match="'suppress' must be a list"):
        params.validate({"suppress": {"a": 1}}, empty, runbook="r")


def test_files_merge_in_order_then_p(tmp_path):
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text("limit: 1\nlabel: one\nwhen: 2024-01-31\n")
    second.write_text("limit: 2\n")
    values, raw = params.merge([first, second], ["label=three"])
    assert values == {"limit": 2, "label": "three", "when": "2024-01-31"}
    assert raw == {"label": "three"}


def test_bad_params_files_are_usage_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("limit: [1, 2\n")
    with pytest.raises(ParameterError, match="not valid YAML"):
        params.load_params_file(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ParameterError, match="must be a mapping"):
        params.load_params_file(bad)
    with pytest.raises(ParameterError, match="cannot read"):
        params.load_params_file(tmp_path / "missing.yaml")
    with pytest.raises(ParameterError, match="suite definition"):
        params.load_params_file(PARAMS_DIR / "daily.yaml")


def test_injection_text_is_just_a_string(spec):
    values, raw = params.merge(assignments=["label=x'); drop table calls; --", "suppress=[\"x'; drop table calls; --\"]"])
    out = params.validate(values, spec, runbook="r", raw=raw)
    assert out == {"label": "x'); drop table calls; --", "suppress": ["x'; drop table calls; --"]}


def test_a_parameter_papermill_cannot_read_is_an_authoring_error_not_a_silent_loss(tmp_path):
    import nbformat

    cell = nbformat.v4.new_code_cell('month = ""  # the month; empty = the last complete one\nlimit = 5  # rows')
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "eq_in_comment.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(ParameterError, match="cannot read the parameter.s. month") as err:
        params.notebook_parameters(path)
    assert "no '=' inside the comment" in err.value.hint
