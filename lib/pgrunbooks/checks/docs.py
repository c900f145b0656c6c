"""Render ``docs/checks.md`` from the registry: ``python -m pgrunbooks.checks.docs > docs/checks.md``.

``tests/checks/test_checks_docs.py`` fails when the committed page differs from what this renders, so
the docs cannot drift from the code.
"""

from __future__ import annotations

import sys

from pgrunbooks.checks import CATEGORIES, REGISTRY
from pgrunbooks.checks.registry import sql_files

INTRO = """\
# Checks

The diagnostics behind the daily and weekly runbooks and `pgrunbooks check`: {count} checks in
{categories} categories, each one SQL file (`lib/pgrunbooks/checks/sql/<id>.sql`, with a header
saying what it measures, the privileges it needs and its caveats) plus one registry entry
(`pgrunbooks.checks.REGISTRY`). **This page is generated** from the registry by
`python -m pgrunbooks.checks.docs > docs/checks.md`; a test keeps it in step.

## How checks report

* The SQL returns **measurements**; Python applies the **thresholds** and returns
  [`Finding`](../lib/pgrunbooks/findings.py)s (`check_id, severity, title, object, value, threshold,
  detail, remediation, data`; `data` holds the measurement row).
* A check that finds nothing returns **one `ok` finding** saying what it looked at, so a report
  shows every check that ran. `info` is context (statement statistics age, top statements,
  shrinking database, short lock waits); `warning` and `critical` are problems.
* A finding's **remediation** is written for that object. Where a statement fixes it, it is SQL
  you can paste into psql as it stands: the statements, every explanation as a `--` comment,
  and the undo, when there is one, as an `-- undo: …;` comment (a test runs each one on a
  database with the fault and checks the finding is gone). Where no statement can (a pool
  size, a disk, a query to rewrite), it is prose. Checks whose fix is a guarded action say so
  ("fixed by the `vacuum_analyze` action", see [actions.md](actions.md)); `pgrunbooks list`
  shows the runbook that applies it.
* A check whose requirement is missing (server version, extension, privilege, a table it reads)
  returns **one `skipped` finding** with the reason and the fix (`grant … to …`). A privilege error
  at run time (SQLSTATE 42501) is a `skipped` finding too. Any other failure is one **`error`**
  finding (SQLSTATE and message) and the run goes on: nothing crashes the run.
* Every check runs in **its own read-only transaction** (even on a read-write session) with its
  `statement_timeout` (10 s unless stated), `lock_timeout = 2s` and `search_path = pg_catalog`.
  Size functions never wait behind DDL: relations locked ACCESS EXCLUSIVE are measured from
  `pg_class.relpages`. Activity checks never report this session nor other pgrunbooks sessions
  (`application_name` `pgrunbooks/%`).
* Suppress a finding by its **key** — `check_id:object`, shown in every report and in
  `--format json` — or a whole check by its id: `suppress: ["unused_indexes:public.idx_legacy"]`
  in params, `suppress=[…]` in `run_checks`, `--suppress KEY` on the command line. A check whose
  findings are all suppressed reports one `ok` saying so.

## Using them

```python
from pgrunbooks import checks, db
with db.connect("local", runbook="adhoc") as s:
    findings = checks.run_checks(s, categories=["maintenance"],
                                 thresholds={{"dead_tuples": {{"warning": 0.1}}}},
                                 suppress=["never_analyzed:public.user_import_staging"])
    results = checks.run_results(s, ids=["table_sizes"])   # findings + measurement rows per check
    results.frame("table_sizes")                           # a pandas DataFrame, for charts
```

```
pgrunbooks check [--target T] [--category C]… [--check ID]… [--threshold ID.NAME=VALUE]…
                 [--suppress KEY]… [--format table|json] [--fail-on info|warning|error|critical|none]
                 [--all] [--list]
```

Exit codes as for `pgrunbooks run`: 0 nothing at or above `--fail-on` (default `critical`),
1 findings at or above it, 2 the tool failed (target unreachable), 3 bad usage (unknown check,
category or threshold: nothing ran).

## Versions and privileges

* PostgreSQL 15 to 18. Differences are handled by **SQL variants** (`<id>.pgNN.sql` replaces
  `<id>.sql` from major version NN: `checkpoints.pg17.sql` reads `pg_stat_checkpointer`), by
  **fragments** for a difference of one expression (`{{last_idx_scan}}` in `unused_indexes.sql` is
  `unused_indexes.last_idx_scan.sql` on 15 and its `.pg16.sql` variant from 16) and, for
  `pg_stat_statements`, by a **column map**
  read from the view itself (`mean_exec_time` / `mean_time`, `shared_blk_read_time` /
  `blk_read_time`), so an extension not yet updated after `pg_upgrade` works too. The extension is
  looked up in `pg_extension`, whatever its schema (`extensions` on Supabase).
* The whole registry runs with **no `error`** as a role with only `pg_monitor` and `SELECT` on the
  app tables. What such a role cannot see is reported as `skipped` with the grant:

| check | needs, beyond pg_monitor + SELECT on the app tables |
|---|---|
| slow_statements, top_statements, statements_reset_age | `USAGE` on the schema of pg_stat_statements (`grant usage on schema extensions to …`) |
| sequence_exhaustion | `SELECT` on the sequences (`grant select on all sequences in schema public to …`, or pg_read_all_data) |
| database_growth, orphaned_rows | rows not hidden by row level security: a BYPASSRLS role (`postgres` on Supabase) |
| table_bloat, index_bloat | planner statistics, which `pg_stats` hides under RLS: a BYPASSRLS role or the owner (or pgstattuple) |
| tenant_isolation | membership in `authenticated` and `anon` (to `SET ROLE`), and a BYPASSRLS role to sample rows |

## Checks by category

{toc}
"""


def _value(v) -> str:
    if v is None:
        return "off (`None`)"
    if isinstance(v, (list, tuple)):
        return ", ".join(f"`{x}`" for x in v) if v else "(empty)"
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1024**2 and v % 1024**2 == 0:
        unit = "GiB" if v % 1024**3 == 0 else "MiB"
        return f"`{v}` ({v // 1024**(3 if unit == 'GiB' else 2)} {unit})"
    return f"`{v}`"


def render() -> str:
    """docs/checks.md as it must read for the registry as it is."""
    toc_lines = []
    for category, blurb in CATEGORIES.items():
        ids = [c.id for c in REGISTRY.values() if c.category == category]
        toc_lines.append(f"* **{category}** ({blurb}): " + ", ".join(f"[`{i}`](#{i})" for i in ids))
    out = [INTRO.format(count=len(REGISTRY), categories=len(CATEGORIES), toc="\n".join(toc_lines))]
    for category in CATEGORIES:
        out.append(f"\n## {category.capitalize()}\n")
        for check in (c for c in REGISTRY.values() if c.category == category):
            out.append(f"\n### {check.id}\n")
            out.append(f"**{check.title}.** {check.description}\n")
            if check.why:
                out.append(f"\n**Why it matters.** {check.why}\n")
            out.append(f"\n**How to fix.**\n\n```\n{check.remediation.strip()}\n```\n")
            if check.fixed_by:
                out.append(f"\nFixed by the `{check.fixed_by}` action ([actions.md](actions.md)).\n")
            if check.thresholds:
                out.append("\n| threshold | default |\n|---|---|\n")
                for name, value in check.thresholds.items():
                    out.append(f"| `{name}` | {_value(value)} |\n")
            reqs = "; ".join(check.requirements)
            main, rest = sql_files(check.id)
            out.append(f"\nRequires: {reqs}. Reads: {check.reads}. "
                       f"SQL: {', '.join(f'`{n}`' for n in main)}"
                       + (f" (+ {', '.join(f'`{n}`' for n in rest)})" if rest else "")
                       + f". Timeout: {check.statement_timeout}.\n")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
