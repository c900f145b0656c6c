"""Render ``docs/faults.md`` from the catalogue: ``python -m pgrunbooks.seed.faults.docs > docs/faults.md``.

``tests/seed/test_faults_docs.py`` fails when the committed page differs from what this renders.
"""

from __future__ import annotations

import sys

from pgrunbooks.names import qualified
from pgrunbooks.seed.runtime import RUNTIME_FINDS

from .runtime_catalogue import RUNTIME_FAULT_LIST
from .plant import FAULTS
from .model import Fault, RuntimeFault

SQL_LINK = "../lib/pgrunbooks/seed/sql/faults/"

INTRO = """\
# Planted faults

`pgrunbooks.seed` can plant a catalogue of realistic faults in a seeded sandbox
database, so every check and runbook has something real to find, and a clean
database (`--faults none`) on which no check may flag anything. The catalogue is
`pgrunbooks.seed.FAULTS` (database-scope ones in `DATABASE_FAULTS`, cluster ones
in `CLUSTER_FAULTS`). **This page is generated** from it by
`python -m pgrunbooks.seed.faults.docs > docs/faults.md`; a test keeps it in step.

Each fault is one entry of `lib/pgrunbooks/seed/faults/catalogue.py` plus its SQL
files in `lib/pgrunbooks/seed/sql/faults/`: `<name>.sql` plants it (one
transaction), `<name>.probe.sql` returns one boolean, is it there
(`Fault.present(conn)`), and `<name>.revert.sql`, for the cluster fault, removes it
(`Fault.revert(conn)`). Names reach the SQL as `psycopg.sql` identifiers
(`{key}`) and every value as a bound parameter (`%(key)s`). Three faults need a
step that SQL in one transaction cannot take; their entry names a short Python
hook and says why. `Fault.finds` names the check ids that must report a fault.

```python
from pgrunbooks.seed import seed, apply_faults, revert_faults, settle, FAULTS
seed(conn, scale=1, faults="all")            # or "none", "leaky_policy,unused_index", [names]
apply_faults(conn, ["extra_superuser"]); revert_faults(conn, ["extra_superuser"])
```

Unknown names raise `UnknownFault` (a `ValueError`) that lists the valid ones.
`faults="all"` includes the cluster fault, and a seed that does not name a
cluster fault reverts it, so `pgrunbooks sandbox seed --faults none` after
`--faults all` leaves a clean cluster. The test templates use `DATABASE_FAULTS`
only, because a cluster fault is seen by every database of the cluster (clean
ones included).

## Summary

| fault | plants | must be found by |
|---|---|---|
"""

TAIL = """
## What the clean schema looks like (true negatives)

A database seeded with `faults="none"` and settled has nothing any check above
may flag. Things a check must **not** flag:

- **Archive tables.** `public.call_archives` and `public.sms_archives` have
  the columns of `calls` / `sms_messages` plus `archived_at`, a primary key and
  **no foreign keys by design** (archived rows outlive their organizations);
  their `org_id` / `phone_number_id` columns must not count as
  `missing_foreign_keys`. They have a table comment saying so.
- **Service-role-only tables.** `call_archives`, `sms_archives`, `db_metrics`
  (and the planted `user_import_staging`) have RLS enabled with one policy
  `<table>_service_role_only … to service_role using ((select auth.role()) =
  'service_role')`; they are granted to `service_role` only, so
  `authenticated` gets "permission denied" rather than rows.
- **`org_users`' policy** uses the SECURITY DEFINER helper
  (`org_id in (select public.user_org_ids())`) to avoid recursive RLS.
- **Constraint-backed indexes** (primary keys, `*_key` uniques) are scanned by
  `settle` too, but checks of unused/duplicate indexes should skip them anyway.
- **Tables with no rows** (`call_archives`, `sms_archives`) are analyzed.
- **`auth.users`** lives in schema `auth`, is not RLS-protected and is not an
  app table; RLS checks look at `public`.

Side effects a check author should expect in the **faults** database:

- `recordings_url_key` (invalid) has `idx_scan = 0`; an `unused_indexes`
  check should exclude `not indisvalid` indexes (they are `invalid_indexes`).
- `orphaned_rows` rows are invisible to every member through RLS.

## Statistics: `settle(conn, faults)`

Statistics are per database and `CREATE DATABASE … TEMPLATE` does not copy
them, so tests that clone a seeded template call `settle` on the clone. It:

1. flushes the session's pending counters (ANALYZE subtracts its own
   backend's unflushed dead-tuple counts from what it reports);
2. `vacuum (analyze)` every user table except those with autovacuum off;
   those (`db_metrics` when `dead_tuples` is planted) get `analyze` only, which
   sets `n_dead_tup` from its sample; `user_import_staging` gets neither;
3. reloads `user_import_staging` (see `never_analyzed`);
4. scans every valid index of `public` and `auth` once (except
   `calls_to_number_idx`), checking with EXPLAIN under `enable_seqscan = off`
   that the intended index is used; a duplicate that the planner prefers is
   dropped inside a rolled-back transaction for the probe (scan counters
   survive the rollback);
5. runs a few of the guide's application queries (as `postgres`, and one as an
   `authenticated` member through RLS) so `pg_stat_statements` has entries;
6. calls `pg_stat_force_next_flush()` so the counters are visible to other
   sessions as soon as it returns.

Faults found in the database are honoured even if *faults* does not name them,
so a forgotten argument cannot vacuum the planted state away. It takes about
0.35 s at scale 1.

## Runtime faults (`pgrunbooks.seed.runtime`)

Live sessions for the incident runbooks. Each is a context manager that opens
its own connections (threads where a session must block), waits until the
state is visible in `pg_stat_activity`, yields the pid(s), and on exit cancels,
rolls back and closes everything, also when the test has already terminated
the sessions. `RUNTIME_FAULTS` maps names to them; `RUNTIME_FINDS` maps names
to the checks that must find them.

| runtime fault | call | state | application_name | must be found by |
|---|---|---|---|---|
{runtime}

The sessions set `statement_timeout`, `lock_timeout` and
`idle_in_transaction_session_timeout` to 0 so role-level defaults do not end
them early. Waiters are cancelled and rolled back before the blocker lets go,
so no planted update ever commits.

## Incident faults (scope `runtime`, `pgrunbooks.seed.incidents`)

Live incidents for the incident playbooks (`runbooks/incidents/`), in the catalogue as
`RUNTIME_FAULT_LIST` in `seed/faults/runtime_catalogue.py` (`RuntimeFault` entries, scope `runtime`): never planted by
`seed --faults`, started and stopped on demand. Each is a context manager taking an
admin conninfo to a seeded database (`with incidents.lock_queue(conninfo) as planted:`)
that plants the state, waits until it is visible where its playbook looks
(`pg_stat_activity`, `pg_stat_statements`, `pg_replication_slots`, `pg_policies`),
yields a frozen `Planted` (pids, query id, slot, policy…) and on exit undoes
everything, also what a playbook's action already ended. From a shell, a
background holder process (`python -m pgrunbooks.seed.hold NAME --conninfo …`)
keeps one until it is stopped:

```bash
pgrunbooks sandbox fault list
```

`pgrunbooks sandbox fault start NAME` returns once the fault is visible and prints
what it planted; `pgrunbooks sandbox fault stop NAME` (or `--all`) undoes it. The
game day notebook (`notebooks/04_incident_game_day.ipynb`) drills each one.

| incident fault | plants | must be named first by |
|---|---|---|
{incidents}
{incident_sections}"""

#: runtime fault -> (call, state, application_name) for the table above
RUNTIME_ROWS = {
    "long_running_query": (
        "`long_running_query(conninfo, seconds=600)`",
        "one session `active` in `select pg_sleep($1)`; yields its pid",
        "`victorysync/api`",
    ),
    "idle_in_transaction": (
        '`idle_in_transaction(conninfo, table="public.organizations")`',
        "`select … for update` on one row, then `idle in transaction`; yields its pid",
        "`victorysync/worker`",
    ),
    "blocking_chain": (
        "`blocking_chain(conninfo, depth=3)`",
        "session 1 holds a row lock of `organizations` idle in transaction; sessions 2..depth each wait "
        "(`wait_event_type = 'Lock'`) to `update … set updated_at = now()` the same row, in order; yields "
        "the pids, blocker first",
        "blocker `victorysync/billing-job`, waiters `victorysync/api`",
    ),
    "idle_connections": (
        "`idle_connections(conninfo, n)`",
        "n connections `idle`; yields their pids",
        "`victorysync/pool`",
    ),
    "forgotten_slot": (
        '`forgotten_slot(conninfo, name="victorysync_cdc", segments=3)` (a superuser)',
        "a physical replication slot reserving WAL (`pg_create_physical_replication_slot(name, true)`), no "
        "consumer, then `segments` WAL switches past it (about 16 MB each); yields the slot name, drops it on exit",
        "`pgrunbooks/seed-slot`",
    ),
}


def _codes(words) -> str:
    return ", ".join(f"`{w}`" for w in words)


def _section(fault: Fault) -> str:
    scope = " (cluster scope)" if fault.scope == "cluster" else ""
    lines = [
        f"\n### `{fault.name}`{scope}\n",
        f"**Plants.** {fault.description}\n",
        f"**Why it matters.** {fault.why}\n",
        f"**Found by** {_codes(fault.finds)}." + (f" {fault.found_note}" if fault.found_note else "") + "\n",
    ]
    files = ", ".join(f"[`{name}`]({SQL_LINK}{name})" for name in fault.sql_files())
    bound = [f"`{key}` = `{qualified(*parts)}`" for key, parts in fault.names.items()]
    bound += [f"`{key}` = `{value}`" for key, value in fault.params.items()]
    lines.append(f"SQL: {files}" + (f"; with {', '.join(bound)}" if bound else "") + ".\n")
    if fault.hook is not None:
        lines.append(f"Python step (`{fault.hook.__name__}`): {fault.hook_reason}\n")
    return "\n".join(lines)


def _incident(fault: RuntimeFault) -> str:
    return "\n".join([
        f"\n### `{fault.name}` (runtime)\n",
        f"**Plants.** {fault.description}\n",
        f"**Named first by** `{fault.playbook}`: {fault.found_note}.\n",
        f"**Fix.** {fault.fix[0].upper() + fault.fix[1:]}.\n",
        f"Start / stop: `{fault.start_command}` / `{fault.stop_command}`.\n",
    ])


def render() -> str:
    """The text of docs/faults.md."""
    rows = [f"| `{f.name}` | {'**cluster**: ' if f.scope == 'cluster' else ''}{f.summary} | {_codes(f.finds)} |"
            for f in FAULTS.values()]
    runtime = [f"| `{name}` | {' | '.join(RUNTIME_ROWS[name])} | {_codes(finds)} |" for name, finds in RUNTIME_FINDS.items()]
    sections = "".join(_section(f) for f in FAULTS.values())
    incidents = [f"| `{f.name}` | {f.summary} | `{f.playbook}` |" for f in RUNTIME_FAULT_LIST]
    tail = TAIL.replace("{runtime}", "\n".join(runtime)).replace("{incidents}", "\n".join(incidents))
    tail = tail.replace("{incident_sections}", "".join(_incident(f) for f in RUNTIME_FAULT_LIST))
    return INTRO + "\n".join(rows) + "\n\n## The faults\n" + sections + tail


if __name__ == "__main__":
    sys.stdout.write(render())
