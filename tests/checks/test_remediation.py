"""Every remediation a finding prints is SQL that fixes it, proven on PostgreSQL 18 and 15.

For each check in :data:`CASES`, on a private clone of the faults database: run the check, execute
each planted finding's remediation as a DBA pastes it into psql (statement by statement, autocommit,
so ``create index concurrently`` and ``vacuum`` run as printed) as ``postgres`` — the owner of the
app's tables and, as on Supabase, not a superuser — or as ``supabase_admin`` where the statement
needs a superuser; run the check again and assert the finding is gone. Where the remediation prints
an undo, run it and assert the finding is back.

A case plants what no seeded fault has (a bloated table, a live session) and does first what the
remediation's comment asks to do first (remove the duplicates before rebuilding a unique index).
Statistics are not re-settled after a fix: VACUUM and ANALYZE write their statistics as they finish,
and :func:`pgrunbooks.seed.settle` vacuums every table itself, so it would hide whether the printed
statement did the work.

Checks whose findings print no statement that removes them are in :data:`NO_SQL_FIX`, each with
the reason; together with :data:`CASES` they are the whole registry, so a new check cannot skip this.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator, Mapping

import pytest
from clihelpers import sql_statements, undo_statements

from pgrunbooks import checks, seed
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity
from pgrunbooks.sandbox import ADMIN_USER
from pgrunbooks.seed import runtime

FLAGGED = {Severity.WARNING, Severity.CRITICAL}
BROKEN = {Severity.ERROR, Severity.SKIPPED}
DBA = "postgres"

#: check id -> why its findings print no statement that makes them go away
NO_SQL_FIX = {
    "connections": "prose: too many connections is fixed by pool sizes or a pooler, not by a statement",
    "slow_statements": "prose: a slow statement is fixed by the index or rewrite EXPLAIN points to",
    "top_statements": "prose: informational ranking; what to optimise is a human decision",
    "statements_reset_age": "its reset starts a new statistics window (the finding is always there, it states "
                            "the window) and would wipe the cluster-wide statistics other tests read",
    "database_size": "prose: space is freed by archiving or a larger disk, chosen by a human",
    "schema_sizes": "prose: a measurement; only thresholds you set make it a finding",
    "table_sizes": "prose: a measurement; archiving is the archive action, with its own plan",
    "database_growth": "prose: growth is investigated, not undone; its SQL only records a baseline",
    "xid_wraparound": "the horizon holder must be found first, and no test can age a database towards 2^31",
    "multixact_wraparound": "the horizon holder must be found first, and no test can age a database towards 2^31",
    "checkpoints": "prose: max_wal_size is server configuration (a custom config on Supabase)",
    "cache_hit_ratio": "prose: needs an index or more memory, chosen from the statements that read most",
    "seq_scan_heavy_tables": "prose: the index to add depends on the queries that scan the table",
    "backup_freshness": "prose: the archive_command's fix depends on its error in the server log; its positive needs an archiving server (tests/checks/test_backup_freshness.py)",
}


# ------------------------------------------------------------------------------------------ planting
def _workload(*statements: str):
    """A plant that runs ``statements`` as the DBA; their statistics are in the shared counters
    when it yields."""
    @contextlib.contextmanager
    def plant(pg, db: str) -> Iterator[None]:
        with pg.connect(db, user=DBA) as conn:
            for statement in statements:
                conn.execute(statement)
            conn.execute("select pg_stat_force_next_flush()")
        yield

    return plant


#: 60 % of public.archives rewritten since its last analyze, autovacuum kept away
_stale_archives = _workload("alter table public.archives set (autovacuum_enabled = false)",
                            "update public.archives set payload = payload where id::text < 'a'")
#: 70 % of public.sms_messages deleted and vacuumed: the space stays in the table and its indexes
_bloated_messages = _workload("delete from public.sms_messages where created_at < now() - interval '60 days'",
                              "vacuum (analyze) public.sms_messages")


@contextlib.contextmanager
def _autovacuum_off(pg, db: str) -> Iterator[None]:
    """Autovacuum switched off server-wide (reset afterwards, whatever happens)."""
    with pg.connect(db) as admin:
        admin.execute("alter system set autovacuum = off")
        admin.execute("select pg_reload_conf()")
        _until(pg, db, "select current_setting('autovacuum') = 'off'")
        try:
            yield
        finally:
            admin.execute("alter system reset autovacuum")
            admin.execute("select pg_reload_conf()")
            _until(pg, db, "select current_setting('autovacuum') = 'on'")


@contextlib.contextmanager
def _extra_superuser(pg, db: str) -> Iterator[None]:
    """The cluster fault (a leftover superuser login), reverted afterwards."""
    with pg.connect(db) as admin:
        seed.apply_faults(admin, ["extra_superuser"])
        try:
            yield
        finally:
            seed.revert_faults(admin, ["extra_superuser"])


@contextlib.contextmanager
def _forgotten_slot(pg, db: str) -> Iterator[tuple[str, ...]]:
    """The runtime slot fault (a physical slot reserving WAL, no consumer); yields its ``slot:`` object."""
    with runtime.forgotten_slot(pg.conninfo(db, user=ADMIN_USER)) as slot:
        yield (f"slot:{slot}",)


def _until(pg, db: str, query: str, timeout: float = 10.0) -> None:
    """Poll ``query`` from new sessions until true (a reloaded setting reaches sessions a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        with pg.connect(db) as conn:
            if conn.execute(query).fetchone()[0]:
                return
        assert time.monotonic() < deadline, f"timed out waiting for: {query}"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------- done first
def _remove_duplicate_urls(pg, db: str) -> None:
    """What a failed unique build asks first: the duplicates go (the later copy of each URL)."""
    with pg.connect(db, user=DBA) as conn:
        conn.execute("delete from public.recordings a using public.recordings b"
                     " where a.url = b.url and (a.created_at, a.id) > (b.created_at, b.id)")


def _remove_orphans(pg, db: str) -> None:
    """What a missing foreign key asks first: orphaned_rows' own remediation, until none is left
    (deleting orphaned calls can orphan their recordings)."""
    for _ in range(3):
        orphans = [f for f in _run(pg, db, "orphaned_rows") if f.severity in FLAGGED]
        if not orphans:
            return
        for f in orphans:
            _execute(pg, db, sql_statements(f.remediation), DBA)
    pytest.fail("orphaned rows keep coming back")


# -------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One check's remediation, executed on the objects the faults database (or ``plant``) gives it."""

    check_id: str
    #: ``Finding.object`` of each finding to fix (``plant`` may yield them instead: pids)
    objects: tuple[str, ...] = ()
    thresholds: Mapping[str, object] = field(default_factory=dict)
    #: who runs the remediation
    user: str = DBA
    #: the remediation prints an undo that brings the finding back
    undo: bool = False
    #: a context manager ``plant(pg, db)`` that creates the condition (and may yield the objects)
    plant: Callable[..., ContextManager] | None = None
    #: ``first(pg, db)``: what the remediation's comment asks to do before its statements
    first: Callable | None = None
    label: str = ""

    @property
    def id(self) -> str:
        return self.label or self.check_id


def _sessions(kind: str):
    """A runtime fault as a plant: the live session(s), yielding the ``pid:`` object to fix."""
    @contextlib.contextmanager
    def plant(pg, db: str) -> Iterator[tuple[str, ...]]:
        conninfo = pg.conninfo(db)
        if kind == "blocking":
            with runtime.blocking_chain(conninfo, depth=3, table="public.invoices") as pids:
                time.sleep(2 * QUICK["warning"])
                yield (f"pid:{pids[0]}",)
        else:
            fault = runtime.long_running_query if kind == "long" else runtime.idle_in_transaction
            with fault(conninfo) as pid:
                time.sleep(2 * QUICK["warning"])
                yield (f"pid:{pid}",)

    return plant


QUICK = {"warning": 0.2}  # seconds: the planted sessions are a moment old

CASES = [
    Case("dead_tuples", ("public.db_metrics",)),
    Case("vacuum_age", ("public.db_metrics", "public.user_import_staging")),
    Case("vacuum_age", ("autovacuum",), user=ADMIN_USER, plant=_autovacuum_off, label="vacuum_age-server"),
    Case("stale_statistics", ("public.archives",), {"min_changes": 100}, plant=_stale_archives),
    Case("never_analyzed", ("public.user_import_staging",)),
    Case("sequence_exhaustion", ("public.db_metrics_id_seq",)),
    Case("long_running_queries", thresholds=QUICK, plant=_sessions("long")),
    Case("idle_in_transaction", thresholds=QUICK, plant=_sessions("idle")),
    Case("blocking_locks", thresholds=QUICK, plant=_sessions("blocking")),
    Case("unused_indexes", ("public.calls_to_number_idx",), undo=True),
    Case("duplicate_indexes", ("public.sms_messages_org_created_idx",), undo=True),
    Case("invalid_indexes", ("public.recordings_url_key",), first=_remove_duplicate_urls),
    Case("fk_without_index", ("public.invoices.invoices_billing_record_id_fkey",)),
    Case("table_bloat", ("public.sms_messages",), {"min_bytes": 0}, plant=_bloated_messages),
    Case("index_bloat", ("public.sms_messages_pkey",), {"min_bytes": 0}, plant=_bloated_messages),
    Case("rls_disabled", ("public.webhook_events",)),
    Case("rls_no_policy", ("public.call_notes",)),
    Case("policy_initplan", ("public.sms_messages.sms_messages_tenant_isolation",)),
    Case("policy_always_true", ("public.billing_records.billing_records_read_all",
                                "public.phone_numbers.phone_numbers_anon_read")),
    Case("privileged_roles", ("role:legacy_admin",), user=ADMIN_USER, plant=_extra_superuser),
    Case("security_definer_search_path", ("public.is_org_admin(uuid)",)),
    Case("anon_grants", ("public.phone_numbers",)),
    Case("tables_without_primary_key", ("public.call_event_log",)),
    Case("auth_users_exposed", ("public.member_directory",)),
    Case("policy_user_metadata", ("public.invoices.invoices_delete_admins_only",)),
    Case("security_definer_views", ("public.org_call_summary", "public.member_directory"), undo=True),
    Case("policies_without_rls", ("public.announcements",)),
    Case("extensions_in_public", ("extension:pg_trgm",), user=ADMIN_USER),  # the platform admin owns it
    Case("materialized_views_exposed", ("public.monthly_sms_totals",)),
    Case("foreign_tables_exposed", ("public.legacy_invoices",)),
    Case("missing_foreign_keys", ("public.calls.org_id", "public.invoices.org_id", "public.org_users.org_id",
                                  "public.phone_numbers.org_id", "public.recordings.call_id",
                                  "public.sms_messages.org_id"), first=_remove_orphans),
    Case("orphaned_rows", ("public.calls.org_id", "public.invoices.org_id", "public.org_users.org_id",
                           "public.phone_numbers.org_id", "public.recordings.call_id", "public.sms_messages.org_id")),
    Case("tenant_isolation", ("public.billing_records", "public.phone_numbers", "public.webhook_events")),
    Case("tenant_isolation", ("public.invoices:own_rows", "public.recordings:own_rows"), label="tenant_isolation-own_rows"),
    Case("function_search_path", ("public.org_display_name(uuid)",), undo=True),
    Case("definer_api_execute", ("public.is_org_admin(uuid)", "public.org_billing_history(uuid)")),
    Case("multiple_permissive_policies", ("public.billing_records:authenticated:select",)),
    Case("replication_slots", user=ADMIN_USER, plant=_forgotten_slot),
]


def test_every_check_has_its_remediation_executed_or_says_why_not():
    executed = {case.check_id for case in CASES}
    assert not executed & set(NO_SQL_FIX), "a check is either executed or explained, not both"
    assert executed | set(NO_SQL_FIX) == set(checks.REGISTRY)


# --------------------------------------------------------------------------------------------- run
def _run(pg, db: str, check_id: str, thresholds: Mapping | None = None) -> list:
    with connect(pg.conninfo(db), runbook="test/remediation") as session:
        return checks.run_checks(session, ids=[check_id], thresholds={check_id: dict(thresholds or {})})


def _execute(pg, db: str, statements: list[str], user: str) -> None:
    with pg.connect(db, user=user) as conn:  # autocommit, like psql
        for statement in statements:
            conn.execute(statement)


def _flagged(findings, objects) -> dict:
    assert not [f for f in findings if f.severity in BROKEN], findings
    return {f.object: f for f in findings if f.severity in FLAGGED and f.object in objects}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_remediation_fixes_the_finding(pg, faults_clone, case):
    db = faults_clone
    with (case.plant(pg, db) if case.plant else contextlib.nullcontext()) as planted:
        objects = planted or case.objects
        before = _flagged(_run(pg, db, case.check_id, case.thresholds), objects)
        assert set(before) == set(objects), f"the fault is not flagged: {sorted(objects)} vs {sorted(before)}"
        if case.first:
            case.first(pg, db)
        for f in before.values():
            _execute(pg, db, sql_statements(f.remediation), case.user)
        after = _flagged(_run(pg, db, case.check_id, case.thresholds), objects)
        assert not after, {o: f.remediation for o, f in after.items()}

        undo = {o: undo_statements(f.remediation) for o, f in before.items()}
        assert all(undo.values()) if case.undo else not any(undo.values()), undo
        for statements in undo.values():
            _execute(pg, db, statements, case.user)
        if case.undo:
            assert set(_flagged(_run(pg, db, case.check_id, case.thresholds), objects)) == set(objects)


def test_policy_rewrite_only_wraps_the_calls(pg, faults_clone):
    """The printed ``alter policy`` keeps the policy's meaning: the same expressions, each
    ``auth.uid()`` now a sub-select (what the check asks for, nothing else)."""
    query = ("select pg_get_expr(polqual, polrelid) || ' | ' || pg_get_expr(polwithcheck, polrelid)"
             " from pg_policy where polname = 'sms_messages_tenant_isolation'")
    with pg.connect(faults_clone) as conn:
        conn.execute("set search_path = pg_catalog")
        old = conn.execute(query).fetchone()[0]
        finding = next(f for f in _run(pg, faults_clone, "policy_initplan") if f.severity in FLAGGED)
        _execute(pg, faults_clone, sql_statements(finding.remediation), DBA)
        new = conn.execute(query).fetchone()[0]
    assert "auth.uid()" in old and new == old.replace("auth.uid()", "( SELECT auth.uid() AS uid)")
