"""The runtime faults for the incident playbooks (scope ``runtime``): live states held by
:mod:`pgrunbooks.seed.incidents` while a test, a game day or ``pgrunbooks sandbox fault start`` needs
them; never planted by ``sandbox seed``. ``docs/faults.md`` lists them after the database faults.
"""

from __future__ import annotations

from .catalogue import LEAKY_POLICY, LOCKOUT_POLICY, LOCKOUT_TABLE
from .model import RuntimeFault

#: Runtime faults for the incident playbooks, in the order docs/faults.md lists them.
RUNTIME_FAULT_LIST = (
    RuntimeFault(
        name="regressed_statement",
        summary="an org's recent-calls query, 400 fast calls recorded, now run back to back by 2 sessions "
        "whose plan lost its indexes (same query id, ~20-100x the time per call, all CPU)",
        description="Runs `select … from public.calls c left join public.recordings r … where c.org_id = $1 "
        "order by c.created_at desc limit 20` 400 times with its index (the `pg_stat_statements` history), "
        "then `clients` sessions (`victorysync/api`) with `enable_indexscan`, `enable_bitmapscan` and "
        "`enable_indexonlyscan` off run it in a loop: sequential scans and a sort, `active` with no wait event.",
        playbook="high_load",
        found_note="the statement whose mean time per call in the window regressed against its history, "
        "by query id",
        fix="terminate the sessions running it (the playbook's guarded cancel → terminate); a cancel alone "
        "is retried, as an app would",
    ),
    RuntimeFault(
        name="lock_queue",
        summary="a billing job idle in transaction after reading `public.calls`, an `ALTER TABLE` queued "
        "behind it, 3 app reads queued behind the DDL",
        description="The root (`victorysync/billing-job`) read `public.calls` in a transaction and went idle "
        "(ACCESS SHARE). A migration (`victorysync/migrations`) runs `alter table public.calls alter column id "
        "set default gen_random_uuid()` (its existing default: a no-op if it ever runs) and waits for ACCESS "
        "EXCLUSIVE; `waiters` readers (`victorysync/api`, `select count(*) from public.calls`) wait behind it.",
        playbook="high_load",
        found_note="lock waits behind one root pid (the idle billing job), with the DDL and the readers "
        "as its tree",
        fix="terminate the root: the DDL runs (changing nothing) and the readers finish",
    ),
    RuntimeFault(
        name="temp_spills",
        summary="2 report sessions with `work_mem = 64kB` running per-org distinct counts back to back: "
        "temp files on every run",
        description="`clients` sessions (`victorysync/reports`) with `work_mem = '64kB'` loop over "
        "`select c.org_id, count(distinct (c.to_number, c.created_at)), count(distinct (c.from_number, "
        "c.duration)) from public.calls c group by c.org_id`: each sort spills, so `temp_blks_written` and "
        "`pg_stat_database.temp_files` grow with every run.",
        playbook="high_load",
        found_note="temp-file spills: the statement with the most temp blocks written in the window",
        fix="terminate the report sessions (and give the report a sensible `work_mem`)",
    ),
    RuntimeFault(
        name="connection_flood",
        summary="idle `postgres` connections (`victorysync/api`) until 3 usable slots are left",
        description="Opens idle connections as `postgres` until `max_connections` minus the reserved slots "
        "minus every connected backend leaves `leave` (3) free: an app whose pool grew without a pooler.",
        playbook="connections_exhausted",
        found_note="headroom of `leave` connections; one role and application holding almost all of them, idle",
        fix="terminate the idle sessions older than a threshold (the playbook's guarded action); put a "
        "pooler in front",
    ),
    RuntimeFault(
        name="idle_in_transaction_holders",
        summary="3 worker sessions each holding a row lock of `public.organizations`, idle in transaction",
        description="`count` sessions (`victorysync/worker`) each `select … for update` a different row of "
        "`public.organizations` and go `idle in transaction`; yields once they have been idle `age` seconds.",
        playbook="connections_exhausted",
        found_note="sessions idle in transaction, oldest first, with their transaction ages",
        fix="terminate them; set `idle_in_transaction_session_timeout` for the worker's role",
    ),
    RuntimeFault(
        name="wal_retaining_slot",
        summary="an inactive physical slot `victorysync_cdc` retaining at least 64 MB of WAL",
        description="`pg_create_physical_replication_slot('victorysync_cdc', true)` with no consumer, then "
        "WAL messages and segment switches until the slot retains `megabytes` (64) of `pg_wal`.",
        playbook="disk_space",
        found_note="the inactive slot pinning WAL, with its retained bytes",
        fix="drop the inactive slot (the playbook's guarded action, confirmed by name)",
    ),
    RuntimeFault(
        name="leaking_policy",
        summary=f"the `leaky_policy` database fault (`{LEAKY_POLICY}`, `using (true)`), planted live and "
        "dropped on stop",
        description=f"Plants `create policy {LEAKY_POLICY} on public.billing_records for select to "
        "authenticated using (true)` (the `leaky_policy` SQL) unless it is there; drops it on exit.",
        playbook="tenant_data_exposure",
        found_note="a member sees other organizations' `billing_records`; the `using (true)` policy responsible",
        fix=f"drop the `using (true)` policy `{LEAKY_POLICY}` (the playbook's policy fix, re-probed before commit)",
    ),
    RuntimeFault(
        name="lockout_policy",
        summary=f"the `locking_out_policy` database fault (`{LOCKOUT_POLICY}` compares org id with user id), "
        "restored on stop",
        description=f"Rewrites `{LOCKOUT_POLICY}` on `{LOCKOUT_TABLE}` with the `locking_out_policy` SQL "
        "(`org_id::text = (select auth.uid())::text`) unless it is so already; on exit it gets back the "
        "`using` / `with check` it had.",
        playbook="tenant_data_exposure",
        found_note="a member sees none of their own organization's invoices (RLS-filtered, not 42501); the "
        "policy responsible",
        fix="alter the policy back to the membership check (the playbook's policy fix, re-probed before commit)",
    ),
)
RUNTIME_FAULT_NAMES = tuple(f.name for f in RUNTIME_FAULT_LIST)
