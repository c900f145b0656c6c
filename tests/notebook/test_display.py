"""``rb.show`` displays figures and tables consistently, and importing the notebook layer
stays cheap (every runbook kernel imports it before its first cell)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pgrunbooks import notebook as rb


@pytest.fixture
def shell():
    return InteractiveShell.instance()


def test_importing_the_notebook_layer_loads_no_heavy_library():
    probe = (
        "import json, sys\n"
        "import pgrunbooks.notebook, pgrunbooks.notebook.charts\n"
        "heavy = ('pandas', 'plotly', 'sqlalchemy', 'sql', 'IPython', 'nbconvert', 'pgrunbooks.checks')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []


def test_a_figure_is_published_as_plotly_json_without_plotly_js(shell):
    import plotly.graph_objects as go

    with capture_output() as captured:
        rb.show(go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout={"title": {"text": "Sizes"}}))
    (output,) = captured.outputs
    assert output.data["text/plain"] == "<chart: Sizes>"
    figure = output.data[rb.PLOTLY_MIME]
    assert figure["layout"]["height"] == 380 and figure["config"]["displaylogo"] is False
    assert len(json.dumps(figure)) < 20_000, "the figure only, never plotly.js"


def test_a_dataframe_is_shown_truncated_with_the_total(shell):
    import pandas as pd

    with capture_output() as captured:
        rb.show(pd.DataFrame({"n": range(250)}), max_rows=200)
    html = captured.outputs[0].data["text/html"]
    assert html.count("<td>") == 200  # one column, 200 rows
    assert "showing 200 of 250 rows" in html


def test_show_if_notes_a_check_that_measured_nothing(capsys):
    from pgrunbooks.checks import Results
    from pgrunbooks.notebook import charts

    charts.show_if(charts.table_sizes(Results()))
    assert capsys.readouterr().out == "(nothing to chart)\n"
