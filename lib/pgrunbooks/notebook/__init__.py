"""The in-notebook API: what a runbook imports in its first cell.

```python
from pgrunbooks import notebook as rb
from pgrunbooks.notebook import charts

s = rb.start("weekly/index_health", target)       # connect, configure %sql and plotly, show a header
results = rb.diagnose(s, checks, thresholds=thresholds, suppress=suppress)   # the declared checks
rb.banner(results.findings)
findings = rb.record(results.findings)             # THE call that reports findings to the runner
charts.show_if(charts.index_waste(results))        # charts and tables, displayed consistently
```

One module per concern: ``session`` (start, current, the Session and its SQLAlchemy engine),
``findings`` (record, banner, detected, show_findings), ``display`` (show, MIME bundles,
plotly), ``sqlmagic`` (``%sql`` through JupySQL), ``diagnostics`` (a runbook's declared
checks), ``charts`` (figures of check measurements), ``evidence`` (``rb.capture``: an incident
playbook's evidence, shown and attached).

Every runbook kernel imports this package, so importing it stays cheap: pandas, plotly,
SQLAlchemy, JupySQL and the checks registry are imported when first used.
"""

from pgrunbooks.engine.html import PLOTLY_MIME
from pgrunbooks.findings import FINDINGS_MIME
from pgrunbooks.notebook.diagnostics import diagnose
from pgrunbooks.notebook.display import attach, dataframe_bundle, figure_bundle, show
from pgrunbooks.notebook.evidence import capture
from pgrunbooks.notebook.findings import banner, detected, record, show_findings
from pgrunbooks.notebook.session import Session, current, start

__all__ = [
    "FINDINGS_MIME",
    "PLOTLY_MIME",
    "Session",
    "attach",
    "banner",
    "capture",
    "current",
    "dataframe_bundle",
    "detected",
    "diagnose",
    "figure_bundle",
    "record",
    "show",
    "show_findings",
    "start",
]
