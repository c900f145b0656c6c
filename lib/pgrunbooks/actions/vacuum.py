"""VACUUM (ANALYZE) / ANALYZE per table, chosen from the diagnostics or named explicitly.

One table at a time on a dedicated autocommit connection (:mod:`pgrunbooks.actions.autocommit`),
with a progress bar from ``pg_stat_progress_vacuum`` / ``pg_stat_progress_analyze``. Never
``VACUUM FULL``. Whether the server really did the work is read from its own counters
(``vacuum_count`` / ``analyze_count``): a statement the server skipped (it answers with a
SQLSTATE class 01 warning and does nothing) is an error, not a success.
"""

from __future__ import annotations

from typing import Any, Iterable

from psycopg import sql

from pgrunbooks.actions import catalog
from pgrunbooks.actions.autocommit import SESSION_MODE_NOTE, maintain_each, maintain_privilege, run_watched
from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.actions.diagnostics import Flagged, existing_schemas, flagged_relations
from pgrunbooks.errors import SkippedByServerError

TABLE_KINDS = ("r", "m", "p")
# Rough rate for the plan's duration estimate.
VACUUM_MB_PER_S = 150.0
# The checks a table is taken from, and what each calls for.
# vacuum_age is answered by a VACUUM: a table only ANALYZEd would be flagged again next week.
VACUUM_CHECKS = {"dead_tuples": "vacuum", "table_bloat": "vacuum", "vacuum_age": "vacuum",
                 "stale_statistics": "analyze", "never_analyzed": "analyze"}
VACUUM_REASONS = {"dead_tuples", "table_bloat", "vacuum_age", "requested"}
VACUUM, ANALYZE = "vacuum (analyze)", "analyze"

TABLE_STATS = (
    "select c.oid::int8 as oid, n.nspname as schema, c.relname as name, coalesce(s.n_live_tup, 0) as live_tuples,"
    " coalesce(s.n_dead_tup, 0) as dead_tuples, coalesce(s.n_mod_since_analyze, 0) as modified_since_analyze,"
    " greatest(s.last_vacuum, s.last_autovacuum) as last_vacuum, greatest(s.last_analyze, s.last_autoanalyze) as last_analyze,"
    " coalesce(s.vacuum_count, 0) as vacuum_count, coalesce(s.analyze_count, 0) as analyze_count,"
    " pg_catalog.pg_relation_size(c.oid) as heap_bytes, pg_catalog.pg_total_relation_size(c.oid) as total_bytes,"
    " c.relkind::text as kind"
    " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
    " left join pg_catalog.pg_stat_all_tables s on s.relid = c.oid"
    " where c.oid = any(%s::oid[])"
)


def _statement(op: str, rel: Relation) -> sql.Composed:
    return sql.SQL("vacuum (analyze) {}" if op == VACUUM else "analyze {}").format(rel.ident)


def _mb(n: Any, digits: int = 3) -> float:
    return round((n or 0) / 1048576, digits)


class VacuumAnalyze(Action):
    """``VACUUM (ANALYZE)`` the tables with dead tuples or bloat, ``ANALYZE`` those with stale statistics."""

    name = "vacuum_analyze"
    title = "VACUUM / ANALYZE"
    confirm_hint = "the database name"
    outline_columns = ("operation", "table", "reasons")

    # -- plan -----------------------------------------------------------------------------------

    def plan(
        self,
        session,
        tables: Iterable[str] | None = None,
        *,
        from_checks: bool = True,
        schemas: Iterable[str] = ("public",),
        analyze_only: Iterable[str] = (),
        statement_timeout: str = "30min",
        lock_timeout: str = "5s",
    ) -> Plan:
        """Dry run of VACUUM (ANALYZE) / ANALYZE per table. Changes nothing.

        Tables come from ``tables`` (explicit, each must exist) and, with ``from_checks``,
        from the diagnostics (the checks registry, its thresholds): ``dead_tuples`` and
        ``table_bloat``, ``vacuum_age`` → ``VACUUM (ANALYZE)``, ``stale_statistics`` and ``never_analyzed``
        → ``ANALYZE``; a check that errors stops the plan (:class:`~pgrunbooks.errors.CheckFailedError`).
        ``analyze_only`` names tables to ANALYZE without vacuuming. Confirm with the database name.
        """
        schemas = existing_schemas(session, schemas)
        chosen = self._requested_tables(session, tables, analyze_only)
        source = "explicit list"
        if from_checks:
            self._add_flagged(chosen, flagged_relations(session, list(VACUUM_CHECKS), kinds=TABLE_KINDS, what="table", schemas=schemas))
            source = "diagnostics (checks: " + ", ".join(VACUUM_CHECKS) + ")"
        objects, statements, steps, blockers, total_mb = self._table_steps(session, chosen)
        return self.new_plan(
            session,
            summary=self._summary(objects, statement_timeout, lock_timeout),
            confirm=session.scalar("select current_database()"),
            statements=statements,
            objects=objects,
            estimated_seconds=round(total_mb / VACUUM_MB_PER_S, 1),
            undo="-- none needed: VACUUM and ANALYZE change no data (statistics are refreshed again by autovacuum)",
            warnings=chosen.warnings,
            blockers=blockers,
            notes=[
                f"tables chosen from: {source}",
                SESSION_MODE_NOTE,
                "VACUUM takes a SHARE UPDATE EXCLUSIVE lock (reads and writes continue); ANALYZE reads a sample",
            ],
            parameters={
                "tables": list(tables or []),
                "analyze_only": list(analyze_only or []),
                "from_checks": from_checks,
                "schemas": schemas,
                "statement_timeout": statement_timeout,
                "lock_timeout": lock_timeout,
            },
            state={"steps": steps, "rels": chosen.relations},
        )

    @staticmethod
    def _requested_tables(session, tables: Iterable[str] | None, analyze_only: Iterable[str]) -> Flagged:
        """The explicitly named tables (each must exist); ``analyze_only`` ones are marked as such."""
        chosen = Flagged()
        for names, reason in ((tables or [], "requested"), (analyze_only or [], "requested (analyze only)")):
            for name in names:
                rel = catalog.resolve(session, name, kinds=TABLE_KINDS, what="table")
                chosen.relations[rel.oid] = rel
                chosen.reasons.setdefault(rel.oid, set()).add(reason)
        return chosen

    @staticmethod
    def _add_flagged(chosen: Flagged, flagged: Flagged) -> None:
        chosen.relations.update(flagged.relations)
        for oid, why in flagged.reasons.items():
            chosen.reasons.setdefault(oid, set()).update(why)
        chosen.warnings += flagged.warnings

    @staticmethod
    def _operation(why: set[str]) -> str:
        """VACUUM (ANALYZE) for dead tuples, bloat or an explicit request; ANALYZE otherwise (and for analyze_only)."""
        return VACUUM if "requested (analyze only)" not in why and why & VACUUM_REASONS else ANALYZE

    def _table_steps(self, session, chosen: Flagged) -> tuple[list, list, list, list, float]:
        """Per table, in name order: the object row, the statement, the step, any privilege blocker."""
        rels = chosen.relations
        stats = {r["oid"]: r for r in session.fetch(TABLE_STATS, ([*rels],))} if rels else {}
        objects, statements, steps, blockers = [], [], [], []
        total_mb = 0.0
        for oid, rel in sorted(rels.items(), key=lambda kv: (kv[1].schema, kv[1].name)):
            why = chosen.reasons[oid]
            op = self._operation(why)
            st = stats.get(oid, {})
            if not maintain_privilege(session, rel):
                blockers.append(f"the current role may not {op} {rel} (owner or MAINTAIN privilege needed)")
            statements.append(_statement(op, rel).as_string(session.conn) + ";")
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
                    "size_mb": _mb(st.get("total_bytes"), 2),
                }
            )
        return objects, statements, steps, blockers, total_mb

    @staticmethod
    def _summary(objects: list[dict[str, Any]], statement_timeout: str, lock_timeout: str) -> str:
        if not objects:
            return "Nothing to do: no table needs VACUUM or ANALYZE."
        vacuums = sum(1 for o in objects if o["operation"] != ANALYZE)
        return (
            f"{len(objects)} table(s) to maintain: {vacuums} VACUUM (ANALYZE), {len(objects) - vacuums} ANALYZE, "
            f"one table at a time, each bounded by statement_timeout={statement_timeout} and "
            f"lock_timeout={lock_timeout}. No data changes."
        )

    # -- apply ----------------------------------------------------------------------------------

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        rels: dict[int, Relation] = plan.state["rels"]
        with ctx.step("re-check preconditions"):
            for step in plan.state["steps"]:
                catalog.ensure_unchanged(plan.session, rels[step["oid"]])
        objects, verified, warnings = maintain_each(
            plan, ctx, lambda s, step, timeouts: self._maintain_table(s, rels[step["oid"]], step["op"], ctx, timeouts)
        )
        return self.result(
            ctx,
            outcome="applied" if objects else "nothing_to_do",
            summary=self._space_summary(objects),
            verified=verified,
            objects=objects,
            warnings=warnings,
            failure_hint="re-run the plan; check for long transactions holding back VACUUM",
        )

    @staticmethod
    def _maintain_table(s, rel: Relation, op: str, ctx: Context, timeouts: dict[str, str]) -> tuple[dict, list[Verified], list[str]]:
        """Run one table's statement; read back what the server did (its counters), what it warned about."""
        before = s.fetch_one(TABLE_STATS, ([rel.oid],))
        with ctx.step(f"{op} {rel.qualified}"):
            run = run_watched(s, _statement(op, rel), "vacuum", f"{op} {rel.name}", ctx, timeouts)
        after = s.fetch_one(TABLE_STATS, ([rel.oid],))
        counter = "vacuum_count" if op == VACUUM else "analyze_count"
        if after[counter] <= before[counter]:
            said = "; ".join(map(str, run.warnings)) or "no warning, but its statistics counters did not move"
            raise SkippedByServerError(f"{op} {rel}: the server skipped it ({said})")
        obj = {
            "table": rel.qualified,
            "operation": op,
            "seconds": run.seconds,
            "dead_tuples_before": before["dead_tuples"],
            "dead_tuples_after": after["dead_tuples"],
            "size_mb_before": _mb(before["total_bytes"]),
            "size_mb_after": _mb(after["total_bytes"]),
            "reclaimed_mb": round((before["total_bytes"] - after["total_bytes"]) / 1048576, 3),
            "last_analyze": after["last_analyze"],
            "phases": ", ".join(dict.fromkeys(run.phases)),
        }
        checks = [
            Verified(
                f"{rel.qualified}: statistics refreshed",
                after["analyze_count"] > before["analyze_count"],
                f"last analyze {after['last_analyze']}",
            )
        ]
        if op != ANALYZE:
            checks.append(
                Verified(
                    f"{rel.qualified}: dead tuples reduced",
                    (after["dead_tuples"] or 0) <= (before["dead_tuples"] or 0),
                    f"{before['dead_tuples']:,} → {after['dead_tuples']:,} dead tuples",
                )
            )
        return obj, checks, [f"{rel}: {n}" for n in run.warnings]

    @staticmethod
    def _space_summary(objects: list[dict[str, Any]]) -> str:
        if not objects:
            return "Nothing to do."
        reclaimed = sum(o["reclaimed_mb"] for o in objects)
        # A first VACUUM creates the free-space and visibility maps: a few kB more, not a loss.
        if reclaimed >= 0.005:
            space = f"{reclaimed:.2f} MB returned to the operating system"
        elif reclaimed <= -0.005:
            space = f"no space returned to the operating system (the free-space and visibility maps took {-reclaimed:.2f} MB)"
        else:
            space = "no space returned to the operating system"
        return (
            f"{len(objects)} table(s) maintained; {space} "
            "(plain VACUUM makes dead space reusable inside the table and only truncates empty pages at its end)."
        )


VACUUM_ANALYZE = VacuumAnalyze()
plan_vacuum_analyze = VACUUM_ANALYZE.plan
