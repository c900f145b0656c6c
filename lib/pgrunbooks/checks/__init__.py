"""The checks library: one SQL file per check, a registry, and a runner that turns rows into findings.

```python
from pgrunbooks import checks, db
with db.connect("local", runbook="adhoc") as s:
    findings = checks.run_checks(s, categories=["maintenance"], thresholds={"dead_tuples": {"warning": 0.1}})
    results = checks.run_results(s, ids=["table_sizes"])   # findings + measurement rows
    results.frame("table_sizes")                           # a DataFrame for charts
```

See ``docs/checks.md`` (generated from :data:`REGISTRY`) for every check: what, why, how to fix.
"""

from pgrunbooks.checks.registry import CATEGORIES, REGISTRY, Check, load_sql, select
from pgrunbooks.checks.runner import CheckResult, Context, Results, run_checks, run_one, run_results

# Importing the category modules fills REGISTRY (in category order).
from pgrunbooks.checks import activity as _activity  # noqa: F401,E402
from pgrunbooks.checks import statements as _statements  # noqa: F401,E402
from pgrunbooks.checks import space as _space  # noqa: F401,E402
from pgrunbooks.checks import maintenance as _maintenance  # noqa: F401,E402
from pgrunbooks.checks import indexes as _indexes  # noqa: F401,E402
from pgrunbooks.checks import bloat as _bloat  # noqa: F401,E402
from pgrunbooks.checks import security as _security  # noqa: F401,E402
from pgrunbooks.checks import exposure as _exposure  # noqa: F401,E402
from pgrunbooks.checks import consistency as _consistency  # noqa: F401,E402
from pgrunbooks.checks import tenant as _tenant  # noqa: F401,E402
from pgrunbooks.checks import permissive as _permissive  # noqa: F401,E402
from pgrunbooks.checks import replication as _replication  # noqa: F401,E402

__all__ = [
    "CATEGORIES",
    "REGISTRY",
    "Check",
    "CheckResult",
    "Context",
    "Results",
    "load_sql",
    "run_checks",
    "run_one",
    "run_results",
    "select",
]
