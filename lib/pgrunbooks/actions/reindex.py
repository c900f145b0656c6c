"""REINDEX INDEX CONCURRENTLY per index, chosen from the diagnostics or named explicitly.

Never ``REINDEX DATABASE`` / ``TABLE`` (they block writes): one index at a time,
concurrently, on a dedicated autocommit connection (:mod:`pgrunbooks.actions.autocommit`),
with progress from ``pg_stat_progress_create_index``. Invalid leftovers of a failed
concurrent build (``*_ccnew``, ``*_ccold``) are dropped concurrently, other invalid indexes
rebuilt, and a rebuild that fails cleans up the leftover it created before raising.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Iterable

import psycopg
from psycopg import sql

from pgrunbooks.actions import catalog
from pgrunbooks.actions.autocommit import SESSION_MODE_NOTE, bounded, maintain_each, maintain_privilege, run_watched
from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.actions.diagnostics import existing_schemas, flagged_relations
from pgrunbooks.actions.sqlstate import pg_message
from pgrunbooks.errors import PgRunbooksError, PreconditionError, UsageError
from pgrunbooks.names import qualified

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
LEFTOVER = re.compile(r"_cc(new|old)[0-9]*$")
SWAPPED_OUT = re.compile(r"_ccold[0-9]*$")  # the old index, renamed by the swap
REINDEX_CHECKS = ("index_bloat", "invalid_indexes")
DUPLICATES_TIMEOUT = "10s"
# Rough rate for the plan's duration estimate.
REINDEX_MB_PER_S = 40.0
# The operations a plan lists per index.
OP_REINDEX, OP_REBUILD_INVALID = "reindex concurrently", "rebuild invalid"
OP_DROP_LEFTOVER, OP_DROP_INVALID = "drop leftover", "drop invalid"

INDEX_INFO = (
    "select i.indexrelid::int8 as oid, n.nspname as schema, ic.relname as name, t.oid::int8 as table_oid,"
    " tn.nspname as table_schema, t.relname as table_name, i.indisvalid as valid, i.indisready as ready,"
    " i.indisunique as is_unique, i.indisprimary as is_primary,"
    " pg_catalog.pg_relation_size(i.indexrelid) as bytes, ic.relkind::text as kind,"
    " exists (select from pg_catalog.pg_constraint x where x.conindid = i.indexrelid and x.contype = 'x') as exclusion,"
    " exists (select from pg_catalog.pg_stat_progress_create_index p where p.index_relid = i.indexrelid or"
    "         (p.relid = i.indrelid and (p.command like 'CREATE INDEX%%' or p.command = 'REINDEX CONCURRENTLY')))"
    " as build_in_progress,"  # another session's REINDEX CONCURRENTLY: its _ccnew index is not a leftover
    " pg_catalog.pg_get_indexdef(i.indexrelid) as definition"
    " from pg_catalog.pg_index i join pg_catalog.pg_class ic on ic.oid = i.indexrelid"
    " join pg_catalog.pg_namespace n on n.oid = ic.relnamespace"
    " join pg_catalog.pg_class t on t.oid = i.indrelid join pg_catalog.pg_namespace tn on tn.oid = t.relnamespace"
)
INVALID_INDEXES = (
    "select i.indexrelid::int8 as oid, i.indisvalid as valid from pg_catalog.pg_index i"
    " join pg_catalog.pg_class c on c.oid = i.indexrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
    " where (not i.indisvalid or c.relname ~ '_ccold[0-9]*$') and n.nspname = any(%s)"
)  # invalid indexes, and the old index a failed REINDEX CONCURRENTLY left valid after its swap


def _statement(op: str, rel: Relation) -> sql.Composed:
    if op.startswith("drop"):
        return sql.SQL("drop index concurrently if exists {}").format(rel.ident)
    return sql.SQL("reindex index concurrently {}").format(rel.ident)


def _mb(n: Any) -> float:
    return round((n or 0) / 1048576, 3)


def _index_state(s, oid: int) -> dict | None:
    return s.fetch_one(INDEX_INFO + " where i.indexrelid = %s", (oid,))


def _leftovers(s, table_oid: int, base: str) -> list[dict]:
    """``*_ccnew`` / ``*_ccold`` indexes of the table whose name starts like ``base``: invalid ones, and a
    ``*_ccold`` still valid (a rebuild that failed after its swap, before it marked the old index dead)."""
    return [
        r
        for r in s.fetch(INDEX_INFO + " where i.indrelid = %s", (table_oid,))
        if r["name"].startswith(base[:50]) and (SWAPPED_OUT.search(r["name"]) or (not r["valid"] and LEFTOVER.search(r["name"])))
    ]


class Reindex(Action):
    """Rebuild bloated or invalid indexes with ``REINDEX INDEX CONCURRENTLY``; drop failed-build leftovers."""

    name = "reindex"
    title = "REINDEX INDEX CONCURRENTLY"
    confirm_hint = "the database name"
    outline_columns = ("operation", "index", "reasons")

    # -- plan -----------------------------------------------------------------------------------

    def plan(
        self,
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
        plus a catalog query for invalid indexes in ``schemas``); a check that errors stops
        the plan. An invalid index named like a leftover of a failed concurrent rebuild
        (``*_ccnew``, ``*_ccold``) is dropped (``DROP INDEX CONCURRENTLY``) when
        ``drop_leftovers``; other invalid indexes are rebuilt (``rebuild_invalid``) unless
        listed in ``drop_invalid``. An invalid unique index whose columns hold duplicates
        cannot be rebuilt: the plan says so. Indexes being built right now and
        exclusion-constraint indexes are left alone. Confirm with the database name.
        """
        schemas = existing_schemas(session, schemas)
        reasons, drop_set = self._requested_indexes(session, indexes, drop_invalid)
        source = ["explicit list"] if indexes else []
        warnings: list[str] = []
        if from_checks:
            flagged = flagged_relations(session, list(REINDEX_CHECKS), kinds=catalog.INDEX_KINDS, what="index", schemas=schemas)
            for oid, why in flagged.reasons.items():
                reasons.setdefault(oid, set()).update(why)
            warnings += flagged.warnings
            source.append("diagnostics (checks: " + ", ".join(REINDEX_CHECKS) + ")")
            if rebuild_invalid or drop_leftovers:
                for row in session.fetch(INVALID_INDEXES, (schemas,)):
                    reasons.setdefault(int(row["oid"]), set()).add("invalid" if not row["valid"] else "swapped out")
        infos = {int(r["oid"]): r for r in session.fetch(INDEX_INFO + " where i.indexrelid = any(%s::oid[])", ([*reasons],))} if reasons else {}
        objects, statements, steps, blockers = [], [], [], []
        total_mb = 0.0
        for oid, info in sorted(infos.items(), key=lambda kv: (kv[1]["schema"], kv[1]["name"])):
            rel = Relation(oid, info["schema"], info["name"], info["kind"])
            table = Relation(int(info["table_oid"]), info["table_schema"], info["table_name"], "r")
            op, note = self._operation(session, rel, table, info, reasons[oid], drop_set, warnings,
                                       rebuild_invalid=rebuild_invalid, drop_leftovers=drop_leftovers)
            if op is None:
                continue
            if not maintain_privilege(session, table):
                blockers.append(f"the current role may not {op} {rel} (owner of {table} or MAINTAIN privilege needed)")
            statements.append(_statement(op, rel).as_string(session.conn) + ";")
            steps.append({"oid": oid, "op": op, "table_oid": table.oid})
            total_mb += (info["bytes"] or 0) / 1048576
            objects.append(
                {
                    "index": rel.qualified,
                    "table": table.qualified,
                    "operation": op,
                    "reasons": ", ".join(sorted(reasons[oid])) + (f" ({note})" if note else ""),
                    "valid": info["valid"],
                    "size_mb": _mb(info["bytes"]),
                }
            )
        return self.new_plan(
            session,
            summary=self._summary(objects, statement_timeout, lock_timeout),
            confirm=session.scalar("select current_database()"),
            statements=statements,
            objects=objects,
            estimated_seconds=round(total_mb / REINDEX_MB_PER_S, 1),
            undo=self._undo(steps, infos),
            warnings=warnings,
            blockers=blockers,
            notes=[
                "indexes chosen from: " + (", ".join(source) or "nothing"),
                SESSION_MODE_NOTE,
                "REINDEX INDEX CONCURRENTLY builds a new index beside the old one and swaps them: writes continue; it "
                "waits for transactions that could still use the old index (bounded by lock_timeout)",
            ],
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
        )

    @staticmethod
    def _requested_indexes(session, indexes: Iterable[str] | None, drop_invalid: Iterable[str]) -> tuple[dict[int, set[str]], set[int]]:
        """The explicitly named indexes (each must exist), and those of them to drop."""
        reasons: dict[int, set[str]] = {}
        drop_set: set[int] = set()
        for name in indexes or []:
            rel = catalog.resolve(session, name, kinds=catalog.INDEX_KINDS, what="index")
            reasons.setdefault(rel.oid, set()).add("requested")
        for name in drop_invalid or []:
            rel = catalog.resolve(session, name, kinds=catalog.INDEX_KINDS, what="index")
            reasons.setdefault(rel.oid, set()).add("requested drop")
            drop_set.add(rel.oid)
        return reasons, drop_set

    @staticmethod
    def _operation(session, rel: Relation, table: Relation, info: dict, why: set[str], drop_set: set[int],
                   warnings: list[str], *, rebuild_invalid: bool, drop_leftovers: bool) -> tuple[str | None, str]:
        """What to do with one index (None: leave it, with a warning when a reviewer must know why)."""
        if info["schema"] in SYSTEM_SCHEMAS:
            warnings.append(f"{rel}: system catalog indexes cannot be reindexed concurrently; skipped")
            return None, ""
        if info["build_in_progress"]:
            warnings.append(f"{rel}: an index build is running on {table} right now; left alone")
            return None, ""
        if info["exclusion"]:
            warnings.append(f"{rel}: exclusion-constraint indexes cannot be reindexed concurrently; skipped")
            return None, ""
        # A _ccold index stays valid when the rebuild failed after its swap (before marking it dead).
        if drop_leftovers and LEFTOVER.search(info["name"]) and (not info["valid"] or SWAPPED_OUT.search(info["name"])):
            return OP_DROP_LEFTOVER, "leftover of a failed REINDEX CONCURRENTLY"
        if info["valid"]:
            if rel.oid in drop_set:
                raise UsageError(f"{rel} is valid: drop_invalid only drops invalid indexes")
            return OP_REINDEX, ""
        if rel.oid in drop_set:
            return OP_DROP_INVALID, "invalid index, dropped as requested"
        if not (rebuild_invalid or "requested" in why):
            return None, ""
        try:
            dup = _duplicates(session, rel.oid, table) if info["is_unique"] else None
        except psycopg.errors.QueryCanceled:
            dup = None
            warnings.append(
                f"{rel} is an invalid UNIQUE index and looking for duplicate values in {table} took over "
                f"{DUPLICATES_TIMEOUT}: the rebuild may fail on duplicates (it then drops what it built)"
            )
        if dup:
            param = shlex.quote(f"drop_invalid={[rel.qualified]!r}")  # as typed after -p on the command line
            warnings.append(
                f"{rel} is an invalid UNIQUE index and {table} holds duplicate values for it ({dup}): a rebuild "
                f"would fail. Fix the data first, or drop it: plan again with -p {param}"
            )
            return None, ""
        return OP_REBUILD_INVALID, "invalid (a failed CREATE INDEX CONCURRENTLY?): rebuilt"

    @staticmethod
    def _summary(objects: list[dict[str, Any]], statement_timeout: str, lock_timeout: str) -> str:
        if not objects:
            return "Nothing to do: no index needs rebuilding."
        drops = sum(1 for o in objects if o["operation"].startswith("drop"))
        return (
            f"{len(objects)} index(es): {len(objects) - drops} rebuilt with REINDEX INDEX CONCURRENTLY, "
            f"{drops} invalid leftover(s) dropped with DROP INDEX CONCURRENTLY, one at a time; never REINDEX "
            f"DATABASE/TABLE. Bounded by statement_timeout={statement_timeout}, lock_timeout={lock_timeout}."
        )

    @staticmethod
    def _undo(steps: list[dict[str, Any]], infos: dict[int, dict]) -> str:
        return (
            "-- a rebuild has no undo and needs none (same definition, same name).\n"
            "-- a dropped invalid index was unused by queries; to re-create one, run its definition:\n"
            + "\n".join(f"-- {infos[s['oid']]['definition']};" for s in steps if s["op"].startswith("drop"))
        )

    # -- apply ----------------------------------------------------------------------------------

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        infos = plan.state["infos"]
        with ctx.step("re-check preconditions"):
            for step in plan.state["steps"]:
                self._recheck(plan.session, infos[step["oid"]], step["oid"])
        objects, verified, _ = maintain_each(plan, ctx, lambda s, step, timeouts: self._step(s, step, infos[step["oid"]], ctx, timeouts))
        reclaimed = sum(o["reclaimed_mb"] for o in objects)
        return self.result(
            ctx,
            outcome="applied" if objects else "nothing_to_do",
            summary=f"{len(objects)} index(es) done; {reclaimed:.2f} MB reclaimed." if objects else "Nothing to do.",
            verified=verified,
            objects=objects,
            failure_hint="inspect the index with \\d and re-plan",
        )

    @classmethod
    def _step(cls, s, step: dict, info: dict, ctx: Context, timeouts: dict[str, str]) -> tuple[dict, list[Verified], list[str]]:
        rel = Relation(step["oid"], info["schema"], info["name"], info["kind"])
        if step["op"].startswith("drop"):
            obj, checks = cls._drop(s, rel, step, info, ctx, timeouts)
        else:
            obj, checks = cls._rebuild(s, rel, step, info, ctx, timeouts)
        return obj, checks, []

    @staticmethod
    def _recheck(session, info: dict, oid: int) -> None:
        name = qualified(info["schema"], info["name"])
        now = _index_state(session, oid)
        if now is None or (now["schema"], now["name"]) != (info["schema"], info["name"]):
            raise PreconditionError(f"{name} was dropped or renamed since the plan", hint="make a new plan")
        if now["valid"] != info["valid"]:
            raise PreconditionError(f"{name} changed validity since the plan", hint="make a new plan")
        if now["build_in_progress"]:
            raise PreconditionError(
                f"an index build started on {qualified(info['table_schema'], info['table_name'])}", hint="wait for it, then re-plan"
            )

    @staticmethod
    def _drop(s, rel: Relation, step: dict, info: dict, ctx: Context, timeouts: dict[str, str]) -> tuple[dict, list[Verified]]:
        with ctx.step(f"drop {rel.qualified}"):
            run = run_watched(s, _statement(step["op"], rel), "create_index", f"drop {rel.name}", ctx, timeouts)
        gone = _index_state(s, step["oid"]) is None
        obj = {"index": rel.qualified, "operation": step["op"], "seconds": run.seconds,
               "size_mb_before": _mb(info["bytes"]), "size_mb_after": 0.0, "reclaimed_mb": _mb(info["bytes"]), "phases": ""}
        return obj, [Verified(f"{rel.qualified}: dropped", gone, "no longer in pg_index" if gone else "still present")]

    @staticmethod
    def _rebuild(s, rel: Relation, step: dict, info: dict, ctx: Context, timeouts: dict[str, str]) -> tuple[dict, list[Verified]]:
        before_leftovers = {r["oid"] for r in _leftovers(s, step["table_oid"], info["name"])}
        before = _index_state(s, step["oid"])
        try:
            with ctx.step(f"reindex {rel.qualified}"):
                run = run_watched(s, _statement(step["op"], rel), "create_index", f"reindex {rel.name}", ctx, timeouts)
        except Exception as exc:
            try:
                cleaned, left = _cleanup(s, step["table_oid"], info["name"], before_leftovers, timeouts)
            except psycopg.Error as lost:  # the connection is gone too: report the rebuild's error, say so
                ctx.progress["leftovers"] = {"error": pg_message(lost)}
                if isinstance(exc, PgRunbooksError):
                    exc.message += f" Could not look for a leftover of the failed rebuild ({pg_message(lost)}): the next plan_reindex finds it."
                raise exc from None
            ctx.progress["leftovers"] = {"dropped": cleaned, "remaining": left}
            old_copies = [n for n in cleaned + left if SWAPPED_OUT.search(n)]
            if old_copies:
                ctx.progress["leftovers"]["swapped"] = True
            if isinstance(exc, PgRunbooksError):
                if old_copies:
                    # A _ccold index exists only after the swap: the rebuild itself succeeded.
                    exc.message += (
                        f" The failure came after the swap: the rebuilt index is in place as {rel}; the old "
                        f"one was renamed {', '.join(old_copies)}."
                    )
                if cleaned:
                    exc.message += f" The invalid leftover of the failed rebuild was dropped: {', '.join(cleaned)}."
                if left:
                    exc.message += (
                        f" The invalid leftover {', '.join(left)} could not be dropped yet (the same blocker); "
                        f"the next plan_reindex drops it, or run: drop index concurrently {left[0]};"
                    )
            raise
        after = s.fetch_one(INDEX_INFO + " where ic.relname = %s and n.nspname = %s", (info["name"], info["schema"]))
        ok = bool(after and after["valid"] and after["ready"])
        new_left = [r["name"] for r in _leftovers(s, step["table_oid"], info["name"]) if r["oid"] not in before_leftovers]
        after_bytes = after["bytes"] if after else 0
        obj = {"index": rel.qualified, "operation": step["op"], "seconds": run.seconds,
               "size_mb_before": _mb(before["bytes"]), "size_mb_after": _mb(after_bytes),
               "reclaimed_mb": round((before["bytes"] - after_bytes) / 1048576, 3),
               "phases": ", ".join(dict.fromkeys(run.phases))}
        return obj, [
            Verified(f"{rel.qualified}: valid after rebuild", ok, "indisvalid and indisready" if ok else "not valid"),
            Verified(f"{rel.qualified}: no leftover", not new_left, ", ".join(new_left) or "no _ccnew/_ccold index left"),
        ]


def _duplicates(session, index_oid: int, table: Relation) -> str | None:
    """For a plain-column unique index: a sample duplicated key, else None (bounded by :data:`DUPLICATES_TIMEOUT`)."""
    cols = session.fetch(
        "select a.attname as name from pg_catalog.pg_index i cross join lateral unnest(i.indkey[0:i.indnkeyatts - 1])"
        " with ordinality k(attnum, ord) join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum"
        " where i.indexrelid = %s and i.indexprs is null and i.indpred is null order by k.ord",
        (index_oid,),
    )
    if not cols:
        return None
    names = [c["name"] for c in cols]
    q = sql.SQL("select {cols} from {t} where {notnull} group by {cols} having count(*) > 1 limit 1").format(
        cols=sql.SQL(", ").join(sql.Identifier(n) for n in names),
        t=table.ident,
        notnull=sql.SQL(" and ").join(sql.SQL("{} is not null").format(sql.Identifier(n)) for n in names),
    )
    rows = session.fetch(q, statement_timeout=DUPLICATES_TIMEOUT)
    if not rows:
        return None
    return ", ".join(f"{k} = {str(v)[:60]!r}" for k, v in rows[0].items())


def _cleanup(s, table_oid: int, base: str, before: set[int], timeouts: dict[str, str]) -> tuple[list[str], list[str]]:
    """Drop the invalid ``*_ccnew`` index a failed REINDEX CONCURRENTLY left behind.

    Best effort, bounded by the plan's timeouts: when the rebuild failed on a lock, the
    drop usually waits on the same session, so what remains is reported (and picked up
    by the next plan as a leftover). Returns (dropped, remaining).
    """
    if s.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        s.conn.rollback()
    new = [r for r in _leftovers(s, table_oid, base) if r["oid"] not in before]
    dropped: list[str] = []
    remaining: list[str] = []
    for r in new:
        name = qualified(r["schema"], r["name"])
        try:
            with bounded(s, **timeouts):
                s.conn.execute(sql.SQL("drop index concurrently if exists {}").format(sql.Identifier(r["schema"], r["name"])))
            dropped.append(name)
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):  # the same blocker: reported
            remaining.append(name)
    return dropped, remaining


REINDEX = Reindex()
plan_reindex = REINDEX.plan
