"""VACUUM / ANALYZE per table and REINDEX INDEX CONCURRENTLY per index, chosen from diagnostics.

These statements cannot run inside a transaction block, so ``SET LOCAL`` is not an
option: each runs on a **dedicated autocommit connection** on which ``statement_timeout``
and ``lock_timeout`` are set at session level before the statement and reset after it,
and which is closed at the end. That needs a session-mode connection (direct, or
Supavisor/PgBouncer in *session* mode, port 5432 on Supabase); through a
transaction-mode pooler (port 6543) the settings could land on another client's backend.

Progress comes from ``pg_stat_progress_vacuum`` / ``pg_stat_progress_analyze`` /
``pg_stat_progress_create_index``, polled from a second connection while the statement
runs. Never ``REINDEX DATABASE`` / ``TABLE`` (they block writes): one index at a time,
concurrently; invalid leftovers of a failed concurrent build (``*_ccnew``, ``*_ccold``)
are dropped concurrently, other invalid indexes rebuilt, and a rebuild that fails cleans
up the leftover it created before raising.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from typing import Any, Iterable, Iterator

import psycopg
from psycopg import sql

from pgrunbooks.actions import catalog
from pgrunbooks.actions.base import ActionResult, Context, Plan, VerificationError, register
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.errors import ActionError, PreconditionError, UsageError

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
LEFTOVER = re.compile(r"_cc(new|old)[0-9]*$")
# Rough rates for the plan's duration estimate.
VACUUM_MB_PER_S = 150.0
REINDEX_MB_PER_S = 40.0

SESSION_MODE_NOTE = (
    "runs on a dedicated autocommit connection with session-level statement_timeout/lock_timeout "
    "(VACUUM and REINDEX CONCURRENTLY cannot run in a transaction block): use a direct or "
    "session-mode connection, not a transaction-mode pooler"
)


# ---------------------------------------------------------------------------------------------
# Dedicated autocommit connection, bounded statements, progress polling


@contextlib.contextmanager
def autocommit_session(session) -> Iterator[Any]:
    """A new read-write autocommit session on the same target (closed on exit)."""
    from pgrunbooks.db import connect

    s = connect(session.target, runbook=session.runbook, read_only=False, autocommit=True)
    try:
        yield s
    finally:
        s.close()


@contextlib.contextmanager
def bounded(s, *, statement_timeout: str, lock_timeout: str) -> Iterator[None]:
    """Session-level timeouts around one statement, reset afterwards (the connection is ours alone)."""
    s.conn.execute(
        "select set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
        (statement_timeout, lock_timeout),
    )
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):
            s.conn.execute("reset statement_timeout")
            s.conn.execute("reset lock_timeout")


PROGRESS_QUERIES = {
    "vacuum": (
        "select 'vacuum' as kind, phase, heap_blks_total as total, heap_blks_scanned as done,"
        " index_vacuum_count from pg_catalog.pg_stat_progress_vacuum where pid = %(pid)s"
        " union all select 'analyze', phase, sample_blks_total, sample_blks_scanned, null"
        " from pg_catalog.pg_stat_progress_analyze where pid = %(pid)s"
    ),
    "create_index": (
        "select 'create_index' as kind, phase,"
        " case when blocks_total > 0 then blocks_total else tuples_total end as total,"
        " case when blocks_total > 0 then blocks_done else tuples_done end as done,"
        " lockers_total, lockers_done from pg_catalog.pg_stat_progress_create_index where pid = %(pid)s"
    ),
}


class ProgressPoller:
    """Polls a progress view for ``pid`` from its own connection, feeding a tqdm bar.

    ``samples`` keeps every distinct (kind, phase) seen, for the result and the tests.
    """

    def __init__(self, session, pid: int, view: str, desc: str, *, interval: float = 0.25, bar: bool = True):
        self.session, self.pid, self.query, self.desc = session, pid, PROGRESS_QUERIES[view], desc
        self.interval, self.use_bar = interval, bar
        self.samples: list[dict[str, Any]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"pgrunbooks-progress-{pid}")

    def __enter__(self) -> "ProgressPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from pgrunbooks.db import connect

        bar = None
        try:
            with connect(self.session.target, runbook=self.session.runbook, read_only=True, statement_timeout="5s") as mon:
                while not self._stop.is_set():
                    for row in mon.fetch(self.query, {"pid": self.pid}):
                        key = (row["kind"], row["phase"])
                        if not self.samples or (self.samples[-1]["kind"], self.samples[-1]["phase"]) != key:
                            self.samples.append({"kind": row["kind"], "phase": row["phase"], "at": time.monotonic()})
                        if self.use_bar:
                            if bar is None:
                                from tqdm.auto import tqdm

                                bar = tqdm(total=row["total"] or None, desc=self.desc, unit="blk", mininterval=0.5)
                            if row["total"] and bar.total != row["total"]:
                                bar.total = row["total"]
                            bar.n = row["done"] or 0
                            bar.set_postfix_str(f"{row['kind']}: {row['phase']}", refresh=True)
                    self._stop.wait(self.interval)
        except Exception as exc:  # progress is a nicety; never fail the action for it
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if bar is not None:
                bar.close()

    @property
    def phases(self) -> list[str]:
        return [f"{s['kind']}: {s['phase']}" for s in self.samples]


def _run_watched(s, statement: sql.Composable, view: str, desc: str, ctx: Context, timeouts: dict[str, str]) -> dict[str, Any]:
    """Run one maintenance statement on autocommit session ``s`` with a progress poller."""
    notices: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(f"{diag.severity}: {diag.message_primary}")

    s.conn.add_notice_handler(on_notice)
    started = time.monotonic()
    poller = ProgressPoller(s, s.backend_pid, view, desc, bar=ctx.progress_bar)
    try:
        with poller:
            with bounded(s, **timeouts):
                s.conn.execute(statement)
    finally:
        s.conn.remove_notice_handler(on_notice)
        # Kept for the audit record: where a failed statement was when it stopped.
        ctx.progress["last_phases"] = {"statement": statement.as_string(s.conn), "phases": poller.phases}
    return {"seconds": round(time.monotonic() - started, 3), "phases": poller.phases, "notices": notices}


# ---------------------------------------------------------------------------------------------
# Candidates from the checks library (with a small fallback of our own)


def _findings(session, ids: list[str]) -> list[Any] | None:
    """Findings of those of ``ids`` the checks library registers; None when it has none of them."""
    try:
        import pgrunbooks.checks as checks  # registers the checks
        from pgrunbooks.checks.registry import REGISTRY
    except Exception:
        return None
    run_checks = getattr(checks, "run_checks", None)
    if run_checks is None:
        try:
            from pgrunbooks.checks.runner import run_checks
        except Exception:
            return None
    known = [i for i in ids if i in REGISTRY]
    if not known:
        return None
    try:
        return list(run_checks(session, ids=known))
    except Exception:
        return None


def _bad(finding) -> bool:
    sev = getattr(finding.severity, "value", str(finding.severity))
    return sev in ("warning", "critical")


TABLE_STATS = (
    "select c.oid::int8 as oid, n.nspname as schema, c.relname as name, coalesce(s.n_live_tup, 0) as live_tuples,"
    " coalesce(s.n_dead_tup, 0) as dead_tuples, coalesce(s.n_mod_since_analyze, 0) as modified_since_analyze,"
    " greatest(s.last_vacuum, s.last_autovacuum) as last_vacuum, greatest(s.last_analyze, s.last_autoanalyze) as last_analyze,"
    " pg_catalog.pg_relation_size(c.oid) as heap_bytes, pg_catalog.pg_total_relation_size(c.oid) as total_bytes,"
    " c.relkind::text as kind"
    " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
    " left join pg_catalog.pg_stat_all_tables s on s.relid = c.oid"
    " where c.oid = any(%s::oid[])"
)

FALLBACK_TABLES = (
    "select c.oid::int8 as oid,"
    " case when coalesce(s.n_dead_tup, 0) > greatest(%(min_dead)s, %(dead_ratio)s * coalesce(s.n_live_tup, 0)) then 'dead_tuples'"
    "      when greatest(s.last_analyze, s.last_autoanalyze) is null and coalesce(s.n_live_tup, 0) + coalesce(s.n_mod_since_analyze, 0) > 0 then 'never_analyzed'"
    "      when coalesce(s.n_mod_since_analyze, 0) > greatest(%(min_dead)s, %(dead_ratio)s * coalesce(s.n_live_tup, 0)) then 'stale_statistics'"
    " end as reason"
    " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
    " left join pg_catalog.pg_stat_all_tables s on s.relid = c.oid"
    " where c.relkind in ('r', 'm') and n.nspname <> all(%(system)s) and n.nspname not like 'pg\\_temp%%'"
    " and n.nspname = any(%(schemas)s)"
)

VACUUM_CHECKS = {"dead_tuples": "vacuum", "table_bloat": "vacuum", "stale_statistics": "analyze", "never_analyzed": "analyze"}


def _resolve_object(session, name: str, kinds: tuple[str, ...], what: str) -> Relation | None:
    try:
        return catalog.resolve(session, name, kinds=kinds, what=what)
    except UsageError:
        return None


def _maintain_privilege(session, rel: Relation) -> bool:
    """May the current role VACUUM/ANALYZE/REINDEX ``rel``? (owner, superuser, or MAINTAIN on 17+)."""
    if session.server_version >= 170000:
        return bool(session.scalar("select pg_catalog.has_table_privilege(%s::oid, 'MAINTAIN')", (rel.oid,)))
    return bool(
        session.scalar(
            "select pg_catalog.pg_has_role(c.relowner, 'USAGE') or (select rolsuper from pg_catalog.pg_roles where rolname = current_user)"
            " from pg_catalog.pg_class c where c.oid = %s",
            (rel.oid,),
        )
    )


# ---------------------------------------------------------------------------------------------
# VACUUM / ANALYZE


def plan_vacuum_analyze(
    session,
    tables: Iterable[str] | None = None,
    *,
    from_checks: bool = True,
    schemas: Iterable[str] = ("public",),
    analyze_only: Iterable[str] = (),
    min_dead_tuples: int = 1000,
    dead_ratio: float = 0.1,
    statement_timeout: str = "30min",
    lock_timeout: str = "5s",
) -> Plan:
    """Dry run of VACUUM (ANALYZE) / ANALYZE per table. Changes nothing.

    Tables come from ``tables`` (explicit, each must exist) and, with ``from_checks``,
    from the diagnostics: ``dead_tuples`` and ``table_bloat`` → ``VACUUM (ANALYZE)``,
    ``stale_statistics`` and ``never_analyzed`` → ``ANALYZE`` (the checks library's
    warning/critical findings; when it is unavailable a small query on
    ``pg_stat_all_tables`` with ``min_dead_tuples`` / ``dead_ratio`` stands in).
    ``analyze_only`` names tables to ANALYZE without vacuuming. Confirm with the database name.
    """
    schemas = list(schemas)
    reasons: dict[int, set[str]] = {}
    rels: dict[int, Relation] = {}
    notes: list[str] = []
    source = "explicit list"
    for name in tables or []:
        rel = catalog.resolve(session, name, kinds=("r", "m", "p"), what="table")
        rels[rel.oid] = rel
        reasons.setdefault(rel.oid, set()).add("requested")
    analyze_rels = set()
    for name in analyze_only or []:
        rel = catalog.resolve(session, name, kinds=("r", "m", "p"), what="table")
        rels[rel.oid] = rel
        reasons.setdefault(rel.oid, set()).add("requested (analyze only)")
        analyze_rels.add(rel.oid)
    if from_checks:
        findings = _findings(session, list(VACUUM_CHECKS))
        if findings is not None:
            source = "diagnostics (checks: " + ", ".join(VACUUM_CHECKS) + ")"
            for f in findings:
                if f.check_id in VACUUM_CHECKS and _bad(f) and f.object:
                    rel = _resolve_object(session, f.object, ("r", "m", "p"), "table")
                    if rel is not None and rel.schema in schemas:
                        rels[rel.oid] = rel
                        reasons.setdefault(rel.oid, set()).add(f.check_id)
        else:
            source = "fallback query on pg_stat_all_tables (the checks library is not available)"
            for row in session.fetch(
                FALLBACK_TABLES,
                {"min_dead": min_dead_tuples, "dead_ratio": dead_ratio, "system": list(SYSTEM_SCHEMAS), "schemas": schemas},
            ):
                if row["reason"]:
                    r = session.fetch_one(
                        "select n.nspname as schema, c.relname as name, c.relkind::text as kind from pg_catalog.pg_class c"
                        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = %s",
                        (row["oid"],),
                    )
                    if r:
                        rel = Relation(int(row["oid"]), r["schema"], r["name"], r["kind"])
                        rels[rel.oid] = rel
                        reasons.setdefault(rel.oid, set()).add(row["reason"])
    notes.append(f"tables chosen from: {source}")
    notes.append(SESSION_MODE_NOTE)
    notes.append("VACUUM takes a SHARE UPDATE EXCLUSIVE lock (reads and writes continue); ANALYZE reads a sample")

    stats = {r["oid"]: r for r in session.fetch(TABLE_STATS, ([*rels],))} if rels else {}
    objects, statements, blockers, steps = [], [], [], []
    total_mb = 0.0
    for oid, rel in sorted(rels.items(), key=lambda kv: (kv[1].schema, kv[1].name)):
        why = reasons[oid]
        vac = oid not in analyze_rels and bool(why & {"dead_tuples", "table_bloat", "requested"})
        op = "vacuum (analyze)" if vac else "analyze"
        st = stats.get(oid, {})
        if not _maintain_privilege(session, rel):
            blockers.append(f"the current role may not {op} {rel} (owner or MAINTAIN privilege needed)")
        stmt = sql.SQL("vacuum (analyze) {}" if vac else "analyze {}").format(rel.ident)
        statements.append(stmt.as_string(session.conn) + ";")
        steps.append({"oid": oid, "op": op})
        total_mb += (st.get("total_bytes") or 0) / 1048576
        objects.append(
            {
                "table": rel.qualified,
                "operation": op,
                "reasons": ", ".join(sorted(why)),
                "live_tuples": st.get("live_tuples"),
                "dead_tuples": st.get("dead_tuples"),
                "modified_since_analyze": st.get("modified_since_analyze"),
                "last_vacuum": st.get("last_vacuum"),
                "last_analyze": st.get("last_analyze"),
                "size_mb": round((st.get("total_bytes") or 0) / 1048576, 2),
            }
        )
    database = session.scalar("select current_database()")
    summary = (
        f"{len(objects)} table(s) to maintain: "
        f"{sum(1 for o in objects if o['operation'] != 'analyze')} VACUUM (ANALYZE), "
        f"{sum(1 for o in objects if o['operation'] == 'analyze')} ANALYZE, one table at a time, each bounded by "
        f"statement_timeout={statement_timeout} and lock_timeout={lock_timeout}. No data changes."
        if objects
        else "Nothing to do: no table needs VACUUM or ANALYZE."
    )
    return Plan(
        action="vacuum_analyze",
        title="VACUUM / ANALYZE",
        summary=summary,
        target=str(session.target),
        database=database,
        runbook=session.runbook,
        confirm=database,
        confirm_hint="the database name",
        statements=statements,
        objects=objects,
        rows=None,
        estimated_seconds=round(total_mb / VACUUM_MB_PER_S, 1),
        undo="-- none needed: VACUUM and ANALYZE change no data (statistics are refreshed again by autovacuum)",
        blockers=blockers,
        notes=notes,
        parameters={
            "tables": list(tables or []),
            "analyze_only": list(analyze_only or []),
            "from_checks": from_checks,
            "schemas": schemas,
            "statement_timeout": statement_timeout,
            "lock_timeout": lock_timeout,
        },
        state={"steps": steps, "rels": rels},
        session=session,
    )


def _check_same(session, rel: Relation) -> None:
    row = session.fetch_one(
        "select n.nspname as schema, c.relname as name from pg_catalog.pg_class c"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = %s",
        (rel.oid,),
    )
    if row is None or (row["schema"], row["name"]) != (rel.schema, rel.name):
        raise PreconditionError(f"{rel} was dropped or renamed since the plan", hint="make a new plan")


@register("vacuum_analyze")
def _apply_vacuum(plan: Plan, ctx: Context) -> ActionResult:
    session = plan.session
    rels: dict[int, Relation] = plan.state["rels"]
    with ctx.step("re-check preconditions"):
        for step in plan.state["steps"]:
            _check_same(session, rels[step["oid"]])
    timeouts = {"statement_timeout": plan.parameters["statement_timeout"], "lock_timeout": plan.parameters["lock_timeout"]}
    objects, warnings = [], []
    done = []
    with autocommit_session(session) as s:
        for step in plan.state["steps"]:
            rel = rels[step["oid"]]
            before = s.fetch_one(TABLE_STATS, ([rel.oid],))
            stmt = sql.SQL("vacuum (analyze) {}" if step["op"] != "analyze" else "analyze {}").format(rel.ident)
            with ctx.step(f"{step['op']} {rel.qualified}"):
                run = _run_watched(s, stmt, "vacuum", f"{step['op']} {rel.name}", ctx, timeouts)
            after = s.fetch_one(TABLE_STATS, ([rel.oid],))
            skipped = [n for n in run["notices"] if "skipping" in n.lower()]
            if skipped:
                raise ActionError(f"{step['op']} {rel}: the server skipped it ({'; '.join(skipped)})", hint="run as the table owner")
            done.append(rel.qualified)
            ctx.progress["committed"] = f"{step['op']} done on " + ", ".join(done)
            objects.append(
                {
                    "table": rel.qualified,
                    "operation": step["op"],
                    "seconds": run["seconds"],
                    "dead_tuples_before": before["dead_tuples"],
                    "dead_tuples_after": after["dead_tuples"],
                    "size_mb_before": round(before["total_bytes"] / 1048576, 3),
                    "size_mb_after": round(after["total_bytes"] / 1048576, 3),
                    "reclaimed_mb": round((before["total_bytes"] - after["total_bytes"]) / 1048576, 3),
                    "last_analyze": after["last_analyze"],
                    "phases": ", ".join(dict.fromkeys(run["phases"])),
                }
            )
            warnings += [f"{rel}: {n}" for n in run["notices"] if not n.startswith("INFO")]
    verified = {}
    for o in objects:
        stale = o["last_analyze"] is None
        verified[f"{o['table']}: statistics refreshed"] = {"ok": not stale, "detail": f"last analyze {o['last_analyze']}"}
        if o["operation"] != "analyze":
            verified[f"{o['table']}: dead tuples reduced"] = {
                "ok": (o["dead_tuples_after"] or 0) <= (o["dead_tuples_before"] or 0),
                "detail": f"{o['dead_tuples_before']:,} → {o['dead_tuples_after']:,} dead tuples",
            }
    reclaimed = sum(o["reclaimed_mb"] for o in objects)
    # A first VACUUM creates the free-space and visibility maps: a few kB more, not a loss.
    space = (
        f"{reclaimed:.2f} MB returned to the operating system"
        if reclaimed >= 0.005
        else f"no space returned to the operating system (the free-space and visibility maps took {-reclaimed:.2f} MB)"
        if reclaimed <= -0.005
        else "no space returned to the operating system"
    )
    summary = (
        f"{len(objects)} table(s) maintained; {space} "
        "(plain VACUUM makes dead space reusable inside the table and only truncates empty pages at its end)."
        if objects
        else "Nothing to do."
    )
    bad = [k for k, v in verified.items() if not v["ok"]]
    if bad:
        raise VerificationError("post-conditions failed: " + "; ".join(bad), hint="re-run the plan; check for long transactions holding back VACUUM")
    return ActionResult(
        action="vacuum_analyze",
        outcome="applied" if objects else "nothing_to_do",
        summary=summary,
        verified=verified,
        objects=objects,
        timings=dict(ctx.timings),
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------
# REINDEX INDEX CONCURRENTLY


INDEX_INFO = (
    "select i.indexrelid::int8 as oid, n.nspname as schema, ic.relname as name, t.oid::int8 as table_oid,"
    " tn.nspname as table_schema, t.relname as table_name, i.indisvalid as valid, i.indisready as ready,"
    " i.indisunique as is_unique, i.indisprimary as is_primary,"
    " pg_catalog.pg_relation_size(i.indexrelid) as bytes, ic.relkind::text as kind,"
    " exists (select from pg_catalog.pg_constraint x where x.conindid = i.indexrelid and x.contype = 'x') as exclusion,"
    " exists (select from pg_catalog.pg_stat_progress_create_index p where p.index_relid = i.indexrelid or"
    "         (p.relid = i.indrelid and p.command like 'CREATE INDEX%%')) as build_in_progress,"
    " pg_catalog.pg_get_indexdef(i.indexrelid) as definition"
    " from pg_catalog.pg_index i join pg_catalog.pg_class ic on ic.oid = i.indexrelid"
    " join pg_catalog.pg_namespace n on n.oid = ic.relnamespace"
    " join pg_catalog.pg_class t on t.oid = i.indrelid join pg_catalog.pg_namespace tn on tn.oid = t.relnamespace"
)


def plan_reindex(
    session,
    indexes: Iterable[str] | None = None,
    *,
    from_checks: bool = True,
    schemas: Iterable[str] = ("public",),
    rebuild_invalid: bool = True,
    drop_leftovers: bool = True,
    drop_invalid: Iterable[str] = (),
    statement_timeout: str = "1h",
    lock_timeout: str = "5s",
) -> Plan:
    """Dry run of rebuilding indexes one at a time with ``REINDEX INDEX CONCURRENTLY``. Changes nothing.

    Indexes come from ``indexes`` (explicit) and, with ``from_checks``, from the
    diagnostics: bloated indexes (``index_bloat``) and invalid ones (``invalid_indexes``,
    plus a catalog query for invalid indexes in ``schemas``). An invalid index named like
    a leftover of a failed concurrent rebuild (``*_ccnew``, ``*_ccold``) is dropped
    (``DROP INDEX CONCURRENTLY``) when ``drop_leftovers``; other invalid indexes are
    rebuilt (``rebuild_invalid``) unless listed in ``drop_invalid``. An invalid unique
    index whose columns hold duplicates cannot be rebuilt: the plan says so. Indexes
    being built right now and exclusion-constraint indexes are left alone.
    Confirm with the database name.
    """
    schemas = list(schemas)
    reasons: dict[int, set[str]] = {}
    notes: list[str] = []
    warnings: list[str] = []
    source = ["explicit list"] if indexes else []
    for name in indexes or []:
        rel = catalog.resolve(session, name, kinds=catalog.INDEX_KINDS, what="index")
        reasons.setdefault(rel.oid, set()).add("requested")
    drop_set: set[int] = set()
    for name in drop_invalid or []:
        rel = catalog.resolve(session, name, kinds=catalog.INDEX_KINDS, what="index")
        reasons.setdefault(rel.oid, set()).add("requested drop")
        drop_set.add(rel.oid)
    if from_checks:
        findings = _findings(session, ["index_bloat", "invalid_indexes"])
        if findings is not None:
            source.append("diagnostics (checks: index_bloat, invalid_indexes)")
            for f in findings:
                if f.check_id in ("index_bloat", "invalid_indexes") and _bad(f) and f.object:
                    rel = _resolve_object(session, f.object, catalog.INDEX_KINDS, "index")
                    if rel is not None and rel.schema in schemas:
                        reasons.setdefault(rel.oid, set()).add(f.check_id)
        else:
            source.append("catalog query for invalid indexes (the checks library is not available: no bloat estimate)")
        if rebuild_invalid or drop_leftovers:
            for row in session.fetch(
                "select i.indexrelid::int8 as oid from pg_catalog.pg_index i join pg_catalog.pg_class c on c.oid = i.indexrelid"
                " join pg_catalog.pg_namespace n on n.oid = c.relnamespace where not i.indisvalid and n.nspname = any(%s)",
                (schemas,),
            ):
                reasons.setdefault(int(row["oid"]), set()).add("invalid")
    notes.append("indexes chosen from: " + (", ".join(source) or "nothing"))
    notes.append(SESSION_MODE_NOTE)
    notes.append(
        "REINDEX INDEX CONCURRENTLY builds a new index beside the old one and swaps them: writes continue; it waits "
        "for transactions that could still use the old index (bounded by lock_timeout)"
    )
    infos = {int(r["oid"]): r for r in session.fetch(INDEX_INFO + " where i.indexrelid = any(%s::oid[])", ([*reasons],))} if reasons else {}
    objects, statements, steps, blockers = [], [], [], []
    total_mb = 0.0
    for oid, info in sorted(infos.items(), key=lambda kv: (kv[1]["schema"], kv[1]["name"])):
        rel = Relation(oid, info["schema"], info["name"], info["kind"])
        table = Relation(int(info["table_oid"]), info["table_schema"], info["table_name"], "r")
        why = reasons[oid]
        if info["schema"] in SYSTEM_SCHEMAS:
            warnings.append(f"{rel}: system catalog indexes cannot be reindexed concurrently; skipped")
            continue
        if info["build_in_progress"]:
            warnings.append(f"{rel}: an index build is running on {table} right now; left alone")
            continue
        if info["exclusion"]:
            warnings.append(f"{rel}: exclusion-constraint indexes cannot be reindexed concurrently; skipped")
            continue
        op, note = "reindex concurrently", ""
        if not info["valid"]:
            if LEFTOVER.search(info["name"]) and drop_leftovers:
                op, note = "drop leftover", "invalid leftover of a failed REINDEX CONCURRENTLY"
            elif oid in drop_set:
                op, note = "drop invalid", "invalid index, dropped as requested"
            elif rebuild_invalid or "requested" in why:
                op, note = "rebuild invalid", "invalid (a failed CREATE INDEX CONCURRENTLY?): rebuilt"
                dup = _duplicates(session, oid, table) if info["is_unique"] else False
                if dup:
                    warnings.append(
                        f"{rel} is an invalid UNIQUE index and {table} holds duplicate values for it ({dup}): a rebuild "
                        f"would fail. Fix the data first, or drop it: plan_reindex(..., drop_invalid=['{rel.qualified}'])"
                    )
                    continue
            else:
                continue
        elif oid in drop_set:
            raise UsageError(f"{rel} is valid: drop_invalid only drops invalid indexes")
        if not _maintain_privilege(session, table):
            blockers.append(f"the current role may not {op} {rel} (owner of {table} or MAINTAIN privilege needed)")
        if op.startswith("drop"):
            stmt = sql.SQL("drop index concurrently if exists {}").format(rel.ident)
        else:
            stmt = sql.SQL("reindex index concurrently {}").format(rel.ident)
        statements.append(stmt.as_string(session.conn) + ";")
        steps.append({"oid": oid, "op": op, "table_oid": table.oid})
        total_mb += (info["bytes"] or 0) / 1048576
        objects.append(
            {
                "index": rel.qualified,
                "table": table.qualified,
                "operation": op,
                "reasons": ", ".join(sorted(why)) + (f" ({note})" if note else ""),
                "valid": info["valid"],
                "size_mb": round((info["bytes"] or 0) / 1048576, 3),
            }
        )
    database = session.scalar("select current_database()")
    summary = (
        f"{len(objects)} index(es): "
        f"{sum(1 for o in objects if not o['operation'].startswith('drop'))} rebuilt with REINDEX INDEX CONCURRENTLY, "
        f"{sum(1 for o in objects if o['operation'].startswith('drop'))} invalid leftover(s) dropped with DROP INDEX "
        f"CONCURRENTLY, one at a time; never REINDEX DATABASE/TABLE. Bounded by statement_timeout={statement_timeout}, "
        f"lock_timeout={lock_timeout}."
        if objects
        else "Nothing to do: no index needs rebuilding."
    )
    return Plan(
        action="reindex",
        title="REINDEX INDEX CONCURRENTLY",
        summary=summary,
        target=str(session.target),
        database=database,
        runbook=session.runbook,
        confirm=database,
        confirm_hint="the database name",
        statements=statements,
        objects=objects,
        estimated_seconds=round(total_mb / REINDEX_MB_PER_S, 1),
        undo=(
            "-- a rebuild has no undo and needs none (same definition, same name).\n"
            "-- a dropped invalid index was unused by queries; to re-create one, run its definition:\n"
            + "\n".join(
                f"-- {infos[s['oid']]['definition']};" for s in steps if s["op"].startswith("drop")
            )
        ),
        warnings=warnings,
        blockers=blockers,
        notes=notes,
        parameters={
            "indexes": list(indexes or []),
            "drop_invalid": list(drop_invalid or []),
            "from_checks": from_checks,
            "schemas": schemas,
            "rebuild_invalid": rebuild_invalid,
            "drop_leftovers": drop_leftovers,
            "statement_timeout": statement_timeout,
            "lock_timeout": lock_timeout,
        },
        state={"steps": steps, "infos": infos},
        session=session,
    )


def _duplicates(session, index_oid: int, table: Relation) -> str | bool:
    """For a plain-column unique index: a sample duplicated key, else False. Bounded; unknown → False."""
    cols = session.fetch(
        "select a.attname as name from pg_catalog.pg_index i cross join lateral unnest(i.indkey[0:i.indnkeyatts - 1])"
        " with ordinality k(attnum, ord) join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum"
        " where i.indexrelid = %s and i.indexprs is null and i.indpred is null order by k.ord",
        (index_oid,),
    )
    if not cols:
        return False
    names = [c["name"] for c in cols]
    q = sql.SQL("select {cols} from {t} where {notnull} group by {cols} having count(*) > 1 limit 1").format(
        cols=sql.SQL(", ").join(sql.Identifier(n) for n in names),
        t=table.ident,
        notnull=sql.SQL(" and ").join(sql.SQL("{} is not null").format(sql.Identifier(n)) for n in names),
    )
    try:
        rows = session.fetch(q, statement_timeout="10s")
    except psycopg.Error:
        return False
    if not rows:
        return False
    return ", ".join(f"{k} = {str(v)[:60]!r}" for k, v in rows[0].items())


def _index_state(s, oid_or_name: Any, table_oid: int | None = None) -> dict | None:
    return s.fetch_one(INDEX_INFO + " where i.indexrelid = %s", (oid_or_name,))


def _leftovers(s, table_oid: int, base: str) -> list[dict]:
    return [
        r
        for r in s.fetch(INDEX_INFO + " where i.indrelid = %s and not i.indisvalid", (table_oid,))
        if LEFTOVER.search(r["name"]) and r["name"].startswith(base[:50])
    ]


@register("reindex")
def _apply_reindex(plan: Plan, ctx: Context) -> ActionResult:
    session = plan.session
    infos = plan.state["infos"]
    with ctx.step("re-check preconditions"):
        for step in plan.state["steps"]:
            info = infos[step["oid"]]
            now = _index_state(session, step["oid"])
            if now is None or (now["schema"], now["name"]) != (info["schema"], info["name"]):
                raise PreconditionError(f"{info['schema']}.{info['name']} was dropped or renamed since the plan", hint="make a new plan")
            if now["valid"] != info["valid"]:
                raise PreconditionError(f"{info['schema']}.{info['name']} changed validity since the plan", hint="make a new plan")
            if now["build_in_progress"]:
                raise PreconditionError(f"an index build started on {info['table_schema']}.{info['table_name']}", hint="wait for it, then re-plan")
    timeouts = {"statement_timeout": plan.parameters["statement_timeout"], "lock_timeout": plan.parameters["lock_timeout"]}
    objects, verified, warnings, done = [], {}, [], []
    with autocommit_session(session) as s:
        for step in plan.state["steps"]:
            info = infos[step["oid"]]
            rel = Relation(step["oid"], info["schema"], info["name"], info["kind"])
            before_leftovers = {r["oid"] for r in _leftovers(s, step["table_oid"], info["name"])}
            if step["op"].startswith("drop"):
                with ctx.step(f"drop {rel.qualified}"):
                    run = _run_watched(s, sql.SQL("drop index concurrently if exists {}").format(rel.ident), "create_index", f"drop {rel.name}", ctx, timeouts)
                gone = _index_state(s, step["oid"]) is None
                verified[f"{rel.qualified}: dropped"] = {"ok": gone, "detail": "no longer in pg_index" if gone else "still present"}
                objects.append({"index": rel.qualified, "operation": step["op"], "seconds": run["seconds"],
                                "size_mb_before": round(info["bytes"] / 1048576, 3), "size_mb_after": 0.0,
                                "reclaimed_mb": round(info["bytes"] / 1048576, 3), "phases": ""})
            else:
                before = _index_state(s, step["oid"])
                try:
                    with ctx.step(f"reindex {rel.qualified}"):
                        run = _run_watched(s, sql.SQL("reindex index concurrently {}").format(rel.ident), "create_index", f"reindex {rel.name}", ctx, timeouts)
                except Exception as exc:
                    cleaned, left = _cleanup(s, step["table_oid"], info["name"], before_leftovers, timeouts)
                    if hasattr(exc, "message"):
                        if cleaned:
                            exc.message += f" The invalid leftover of the failed rebuild was dropped: {', '.join(cleaned)}."
                        if left:
                            exc.message += (
                                f" The invalid leftover {', '.join(left)} could not be dropped yet (the same blocker); "
                                "the next plan_reindex drops it, or run: drop index concurrently " + left[0] + ";"
                            )
                    ctx.progress["leftovers"] = {"dropped": cleaned, "remaining": left}
                    raise
                after = s.fetch_one(
                    INDEX_INFO + " where ic.relname = %s and n.nspname = %s", (info["name"], info["schema"])
                )
                ok = bool(after and after["valid"] and after["ready"])
                verified[f"{rel.qualified}: valid after rebuild"] = {"ok": ok, "detail": "indisvalid and indisready" if ok else "not valid"}
                new_left = [r["name"] for r in _leftovers(s, step["table_oid"], info["name"]) if r["oid"] not in before_leftovers]
                verified[f"{rel.qualified}: no leftover"] = {"ok": not new_left, "detail": ", ".join(new_left) or "no _ccnew/_ccold index left"}
                objects.append({"index": rel.qualified, "operation": step["op"], "seconds": run["seconds"],
                                "size_mb_before": round(before["bytes"] / 1048576, 3),
                                "size_mb_after": round((after["bytes"] if after else 0) / 1048576, 3),
                                "reclaimed_mb": round((before["bytes"] - (after["bytes"] if after else 0)) / 1048576, 3),
                                "phases": ", ".join(dict.fromkeys(run["phases"]))})
            done.append(rel.qualified)
            ctx.progress["committed"] = "done: " + ", ".join(done)
    bad = [k for k, v in verified.items() if not v["ok"]]
    if bad:
        raise VerificationError("post-conditions failed: " + "; ".join(bad), hint="inspect the index with \\d and re-plan")
    reclaimed = sum(o["reclaimed_mb"] for o in objects)
    return ActionResult(
        action="reindex",
        outcome="applied" if objects else "nothing_to_do",
        summary=(f"{len(objects)} index(es) done; {reclaimed:.2f} MB reclaimed." if objects else "Nothing to do."),
        verified=verified,
        objects=objects,
        timings=dict(ctx.timings),
        warnings=warnings,
    )


def _cleanup(s, table_oid: int, base: str, before: set[int], timeouts: dict[str, str]) -> tuple[list[str], list[str]]:
    """Drop the invalid ``*_ccnew`` index a failed REINDEX CONCURRENTLY left behind.

    Best effort, bounded by the plan's timeouts: when the rebuild failed on a lock, the
    drop usually waits on the same session, so what remains is reported (and picked up
    by the next plan as a leftover). Returns (dropped, remaining).
    """
    dropped: list[str] = []
    try:
        if s.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            s.conn.rollback()
        new = [r for r in _leftovers(s, table_oid, base) if r["oid"] not in before]
    except psycopg.Error:
        return dropped, []
    for r in new:
        name = f"{r['schema']}.{r['name']}"
        try:
            with bounded(s, **timeouts):
                s.conn.execute(sql.SQL("drop index concurrently if exists {}").format(sql.Identifier(r["schema"], r["name"])))
            dropped.append(name)
        except psycopg.Error:
            pass
    remaining = [f"{r['schema']}.{r['name']}" for r in new if f"{r['schema']}.{r['name']}" not in dropped]
    return dropped, remaining
