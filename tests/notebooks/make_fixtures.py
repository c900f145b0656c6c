"""Regenerates the fixture notebooks in tests/notebooks/fixtures/ (run: python tests/notebooks/make_fixtures.py)."""
import nbformat
from nbformat.v4 import new_notebook, new_code_cell, new_markdown_cell

def nb(cells, meta):
    n = new_notebook(cells=cells)
    n.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "pgrunbooks": meta,
    }
    for c in n.cells:
        pass
    return n

def params(src):
    c = new_code_cell(src)
    c.metadata["tags"] = ["parameters"]
    return c

import pathlib
root = pathlib.Path(__file__).resolve().parent / "fixtures"
findings = nb([
    new_markdown_cell("# Fixture: findings with a chart\n\nConnects to `target`, measures a few things and records findings (one per severity given in `severities`), then draws a chart. Used by the runner's tests and `bench/suite.py`."),
    params('target = "local"  # where to connect: local, local:DB, env:VAR, service:NAME\n'
           'severities = ["warning", "ok"]  # one finding per entry, in this order\n'
           'limit = 5  # how many rows to chart\n'
           'ratio = 0.5  # a float parameter (int accepted)\n'
           'label = "fixture"  # a free-text label, recorded in a finding\'s detail\n'
           'with_chart = True  # draw the plotly chart\n'
           'suppress = []  # finding keys to suppress\n'
           'echo_env = ""  # name of an environment variable to print (tests that artifacts are redacted)'),
    new_code_cell('from pgrunbooks import notebook as rb\nfrom pgrunbooks.findings import Finding\n\ns = rb.start("fixtures/findings", target)'),
    new_code_cell('rows = s.fetch("select g as n, g * %s as v from generate_series(1, %s) as g order by g", (ratio, limit))\n'
                  'findings = [\n'
                  '    Finding(f"fixture.sev{i}", sev, f"fixture finding {i}", object=f"obj{i}", value=len(rows), threshold=limit, detail=label, remediation="select 1;")\n'
                  '    for i, sev in enumerate(severities)\n'
                  ']\n'
                  'kept = rb.record(findings)\nrb.banner(kept)'),
    new_code_cell('if with_chart:\n    import plotly.graph_objects as go\n    fig = go.Figure(go.Bar(x=[r["n"] for r in rows], y=[float(r["v"]) for r in rows]))\n    fig.update_layout(title="fixture chart")\n    rb.show(fig)'),
    new_code_cell('rb.record([Finding("fixture.role", "info", "connected role", object=s.info()["role"], detail=s.info()["mode"])])'),
    new_code_cell('if echo_env:\n    import os\n    print("the environment says:", os.environ.get(echo_env))'),
], {"group": "fixtures", "title": "Findings with a chart", "purpose": "Test fixture: records findings and draws a chart.", "mutates": False})

failing = nb([
    new_markdown_cell("# Fixture: a cell that raises"),
    params('target = "local"  # where to connect\nfail = True  # raise in the second cell\nsleep_s = 0  # seconds the server sleeps before the failing cell (to test timeouts)'),
    new_code_cell('from pgrunbooks import notebook as rb\nfrom pgrunbooks.findings import Finding\ns = rb.start("fixtures/failing", target)\nrb.record([Finding("fixture.before", "warning", "recorded before the failure")])'),
    new_code_cell('if sleep_s:\n    s.fetch("select pg_catalog.pg_sleep(%s)", (sleep_s,))'),
    new_code_cell('if fail:\n    raise RuntimeError("planted failure in the fixture")'),
    new_code_cell('rb.record([Finding("fixture.after", "critical", "never reached")])'),
], {"group": "fixtures", "title": "Failing runbook", "purpose": "Test fixture: raises in a cell.", "mutates": False})

empty = nb([
    params('x = 1  # unused'),
    new_code_cell('pass'),
], {"group": "fixtures", "title": "Empty", "purpose": "Kernel-start floor for bench/suite.py.", "mutates": False})

required = nb([
    new_markdown_cell("# Fixture: required parameter"),
    params('target = "local"  # where to connect\n'
           'tenant = None  # required: organization slug to look at\n'
           'days = 7  # look-back window'),
    new_code_cell('from pgrunbooks import notebook as rb\nfrom pgrunbooks.findings import Finding\ns = rb.start("fixtures/required", target)\n'
                  'n = s.scalar("select count(*) from pg_catalog.pg_class where relname = %s", (tenant,))\n'
                  'rb.record([Finding("fixture.tenant", "ok", "tenant looked up", object=tenant, value=n)])'),
], {"group": "fixtures", "title": "Required parameter", "purpose": "Test fixture: a parameter without default.", "mutates": True})

for name, n in [("findings", findings), ("failing", failing), ("empty", empty), ("required", required)]:
    nbformat.validate(n)
    nbformat.write(n, f"{root}/{name}.ipynb")
