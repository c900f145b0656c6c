"""The archive's apply: re-check the plan, move each pair in batches, verify the run, vacuum.

:func:`execute` is :meth:`Archive.execute <pgrunbooks.actions.archive.Archive>`. Each batch is
one statement in one transaction (:func:`~pgrunbooks.actions.archive.statements.move_statement`)
with ``SET LOCAL`` timeouts; :class:`PairMover` walks the slices, retries a batch that
reached a concurrently written dependent, and keeps the figures the verification and the
audit record need.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

import psycopg
from psycopg import sql

from pgrunbooks.actions import catalog
from pgrunbooks.actions.archive.pair import ARCHIVED_AT, Pair
from pgrunbooks.actions.archive.statements import (
    CASCADE_CHECK,
    DURABLE_COMMIT,
    OPTIMISTIC_LOCK_TIMEOUT,
    content_hash,
    count_params,
    count_sql,
    dependent_oids,
    move_statement,
    undo_sql,
)
from pgrunbooks.actions.autocommit import autocommit_session, bounded
from pgrunbooks.actions.base import ActionResult, Context, Plan, Verified
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.actions.confirm import drift_allowance
from pgrunbooks.errors import CascadeDetected, PgRunbooksError, PreconditionError, VerificationError

MAX_RETRIES = 3


def recheck(session, plan: Plan) -> None:
    """The world must still be the one the plan described (else :class:`PreconditionError`)."""
    for p, obj in zip(plan.state["pairs"], plan.objects):
        for rel in (p.source, p.archive):
            catalog.ensure_unchanged(session, rel)
        if [c["name"] for c in catalog.columns(session, p.source)] != p.columns:
            raise PreconditionError(f"the columns of {p.source} changed since the plan", hint="make a new plan")
        if len(catalog.referencing_columns(session, p.source)) != len(p.fks):
            raise PreconditionError(f"foreign keys (or columns) referencing {p.source} changed since the plan", hint="make a new plan")
        rows = int(session.scalar(count_sql(p, guarded=bool(p.fks)), count_params(p)))
        planned = obj["rows_to_move"]
        # Live tables drift a little (a late webhook writes an old timestamp); more than that
        # means the plan no longer describes the data.
        allowed = drift_allowance(plan.parameters.get("max_drift"), planned)
        if abs(rows - planned) > allowed:
            raise PreconditionError(
                f"{p.source} now has {rows:,} rows to archive, the plan counted {planned:,} "
                f"(more than max_drift={allowed:,} apart)",
                hint="someone changed the data since the plan: make a new plan and review it",
            )


# Two archives of the same table at once would both count, move and verify "their" rows:
# each run holds a session-level advisory lock per source table (released at the end, or
# by the server when the connection dies) and a second run refuses while it is held.
RUN_LOCK_KEY = "pgrunbooks.archive"


@contextlib.contextmanager
def exclusive_run(session, plan: Plan) -> Iterator[None]:
    """Hold the archive's advisory lock on every source of ``plan``, or refuse (:class:`PreconditionError`)."""
    taken: list[int] = []
    try:
        for p in plan.state["pairs"]:
            if not session.scalar(
                "select pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext(%s), %s::oid::int4)", (RUN_LOCK_KEY, p.source.oid)
            ):
                holder = session.scalar(
                    "select string_agg(l.pid::text, ', ') from pg_catalog.pg_locks l where l.locktype = 'advisory'"
                    " and l.granted and l.database = (select oid from pg_catalog.pg_database where datname = current_database())"
                    " and l.classid::int8 = (pg_catalog.hashtext(%s)::int8 & 4294967295)"
                    " and l.objid::int8 = (%s::oid::int8) and l.objsubid = 2",
                    (RUN_LOCK_KEY, p.source.oid),
                )
                raise PreconditionError(
                    f"another archive of {p.source} is running (backend pid {holder or '?'}); refusing to run two at once",
                    hint="wait for it to finish (its audit record says when), then make a new plan",
                )
            taken.append(p.source.oid)
        yield
    except BaseException:
        # Ctrl-C or a failure is on its way up: releasing must not replace it (a cancel psycopg sent
        # for the interrupt can still land on the unlock). If it cannot release, ending the session
        # does: the server drops a session's advisory locks with it.
        try:
            _unlock(session, taken)
        except Exception:  # noqa: BLE001 - the error in flight is the one to report
            session.conn.close()
        raise
    else:
        _unlock(session, taken)


def _unlock(session, taken: list[int]) -> None:
    # A broken connection has released them already (the server ends the session).
    if taken and not session.conn.closed:
        if session.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            session.conn.rollback()
        session.fetch(
            "select pg_catalog.pg_advisory_unlock(pg_catalog.hashtext(%s), o::int4) from unnest(%s::oid[]) o",
            (RUN_LOCK_KEY, taken),
        )


def _progress_bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from pgrunbooks.progress import progress_bar

    return progress_bar(total=total, desc=desc, unit="rows", unit_scale=True, smoothing=0.1, mininterval=0.5)


class PairMover:
    """Moves one pair's rows in batches; ``stats`` is what it did (for the result, the audit and the verification).

    *Slices*: physical order walks heap page ranges from page 0 to the last page holding a
    row older than the cutoff, sized from the observed density of candidates so a batch
    stays near ``batch_size`` rows (and never spans more pages than twice ``batch_size``
    rows of the table would fill); key order walks the primary key in ``batch_size`` steps.
    *Locks*: batches first delete without locking their candidates; once a held row makes
    one give up (within :data:`OPTIMISTIC_LOCK_TIMEOUT`), the rest of the pair skips locked rows.
    """

    def __init__(self, session, plan: Plan, ctx: Context, p: Pair, planned: int):
        self.session, self.ctx, self.p, self.params = session, ctx, p, plan.parameters
        self.batch_size = self.params["batch_size"]
        self.archived_at = session.scalar("select statement_timestamp()")
        self.dep_oids = dependent_oids(p)
        self.statements = {
            (first, skip): move_statement(p, p.order, first=first, hash_fn=p.hash_fn, skip_locked=skip)
            for first in (True, False)
            for skip in (True, False)
        }
        self.optimistic = True  # until a held row is met: then skip locked for the rest of the pair
        # Never wait longer optimistically than the operator allows at all.
        shorter = session.scalar(
            "select %(t)s::interval > interval '0' and %(t)s::interval < %(o)s::interval",
            {"t": str(self.params["lock_timeout"]), "o": OPTIMISTIC_LOCK_TIMEOUT},
        )
        self.optimistic_lock_timeout = self.params["lock_timeout"] if shorter else OPTIMISTIC_LOCK_TIMEOUT
        self.stats: dict[str, Any] = {
            "source": p.source.qualified, "archive": p.archive.qualified, "archived_at": self.archived_at,
            "order": p.order, "planned": planned, "moved": 0, "batches": 0, "retries": 0, "max_batch_s": 0.0,
            "source_hash": 0, "archive_hash": 0, "stopped": None,
        }
        self.batch_s: list[float] = []
        self.committing: dict[str, Any] | None = None  # a batch between its last statement and its COMMIT's answer
        self.page, self.after = 0, None
        self.last_page, self.max_pages, self.pages, self.density = self._physical_bounds(planned)

    def _physical_bounds(self, planned: int) -> tuple[int, int, int, float]:
        """(last page with a candidate, most pages per slice, pages of the first slice, candidates per page)."""
        p = self.p
        last_page = -1
        if p.order == "physical":
            row = self.session.fetch(
                sql.SQL("select max(s.ctid)::text as last from {} s where s.{} < %s").format(p.source.ident, sql.Identifier(p.column)),
                (p.cutoff,),
                statement_timeout=self.params["verify_timeout"],
            )[0]
            last_page = int(row["last"].strip("()").split(",")[0]) if row["last"] is not None else -1
        max_pages = max(1, int(2 * self.batch_size / max(p.rows_per_page, 1.0)))
        density = max(planned / max(1, last_page + 1), 0.01) if last_page >= 0 else p.rows_per_page
        return last_page, max_pages, max(1, min(max_pages, int(self.batch_size / density))), density

    def run(self, deadline: float | None) -> dict[str, Any]:
        """Batches until the pair is done or ``deadline`` (monotonic) passes; returns ``stats``."""
        bar = _progress_bar(self.ctx.progress_bar, self.stats["planned"], f"{self.p.source.name} → {self.p.archive.name}")
        started = time.monotonic()
        try:
            while not (self.p.order == "physical" and self.page > self.last_page):
                if deadline is not None and time.monotonic() >= deadline:
                    self.stats["stopped"] = "max_runtime"
                    break
                res, elapsed = self._batch(self._slice_args())
                self._record(res, elapsed, bar)
                self.committing = None
                if not self._advance(int(res["selected"]), res):
                    break
                if self.params["pause"] and int(res["selected"]):
                    time.sleep(float(self.params["pause"]))
        except KeyboardInterrupt:
            try:
                self._stop_interrupted(bar)
            except Exception as exc:  # the count after Ctrl-C must not turn the interrupt into a failure
                self.committing = None
                self.stats["stopped"] = "interrupted"
                self.stats["moved_uncertain"] = f"not re-read from the archive: {type(exc).__name__}"
            raise  # no further batch: the audit records the run as interrupted, with what was committed
        finally:
            if bar is not None:
                bar.close()
        stats = self.stats
        stats["seconds"] = round(time.monotonic() - started, 3)
        stats["rows_per_s"] = round(stats["moved"] / stats["seconds"]) if stats["seconds"] > 0 else None
        times = sorted(self.batch_s)
        stats["p95_batch_s"] = round(times[min(len(times) - 1, int(len(times) * 0.95))], 4) if times else 0.0
        return stats

    def _stop_interrupted(self, bar) -> None:
        """After Ctrl-C: roll back the batch in flight and count, from the archive, what committed.

        psycopg answers an interrupt by cancelling the statement and waiting for the server;
        a COMMIT cannot be cancelled, so a batch interrupted there is committed, one interrupted
        just before it is not, and the interrupt may also land while a committed batch is being
        counted here. So the committed figure is read back from the archive (this run's
        ``archived_at``): the audit's count is exact wherever the interrupt fell.
        """
        if self.session.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.session.conn.rollback()
        if self.committing is not None or self.stats["batches"]:
            self.stats["moved"] = int(self.session.fetch(
                sql.SQL("select count(*) as n from {} a where a.{} = %s").format(self.p.archive.ident, sql.Identifier(ARCHIVED_AT)),
                (self.archived_at,),
                statement_timeout=self.params["verify_timeout"],
            )[0]["n"])
            self._publish_progress()
        self.committing = None
        self.stats["stopped"] = "interrupted"

    def _slice_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"cutoff": self.p.cutoff, "archived_at": self.archived_at}
        if self.p.order == "physical":
            args.update(lo=f"({self.page},0)", hi=f"({self.page + self.pages},0)")
        else:
            args.update(after=self.after, limit=self.batch_size)
        return args

    def _batch(self, args: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """The slice until it commits (again after a switch to skip locked, after a cascade); its last attempt's seconds."""
        cascades = 0
        while True:
            t0 = time.monotonic()
            try:
                return self._one_transaction(args), time.monotonic() - t0
            except psycopg.errors.LockNotAvailable:
                if not self.optimistic:
                    raise
                # A row (or the table) is held: this slice again, skipping held rows and
                # waiting for the table no longer than lock_timeout.
                self.optimistic = False
                self.stats["skip_locked_from_batch"] = self.stats["batches"] + 1
            except (CascadeDetected, psycopg.errors.ForeignKeyViolation):
                # A dependent row appeared between the batch's snapshot and its locks: the
                # whole batch was rolled back; the retry's snapshot sees it and skips its parent.
                self.stats["retries"] += 1
                cascades += 1
                if cascades > MAX_RETRIES:
                    raise VerificationError(
                        f"{self.p.source}: a batch kept reaching dependent rows written concurrently; rolled back",
                        hint="re-run when the application is quieter",
                    ) from None

    def _one_transaction(self, args: dict[str, Any]) -> dict[str, Any]:
        """One batch in one transaction: move, compare counts and hashes, check nothing cascaded."""
        p = self.p
        lock_timeout = self.optimistic_lock_timeout if self.optimistic else self.params["lock_timeout"]
        with self.session.transaction(statement_timeout=self.params["statement_timeout"], lock_timeout=lock_timeout) as cur:
            cur.execute(DURABLE_COMMIT)
            cur.execute(self.statements[(self.after is None, not self.optimistic)], args, prepare=False)
            res = cur.fetchone()
            hash_differs = res["archive_hash"] is not None and res["source_hash"] != res["archive_hash"]
            if res["deleted"] != res["inserted"] or hash_differs:
                raise VerificationError(
                    f"a batch of {p.source}: deleted {res['deleted']} rows, inserted {res['inserted']}, "
                    f"content hashes {res['source_hash']} vs {res['archive_hash']}; the batch was rolled back",
                    hint="a trigger or rule on the archive table changes rows: check it before re-running",
                )
            if self.dep_oids:
                cur.execute(CASCADE_CHECK, (self.dep_oids,), prepare=False)
                if cur.fetchone()["touched"] != res["dependents_before"]:
                    raise CascadeDetected(f"a batch of {p.source} reached a dependent row written meanwhile; rolled back")
            self.committing = res  # the batch is complete: leaving the block commits it (run() counts it)
        return res

    def _record(self, res: dict[str, Any], elapsed: float, bar) -> None:
        if not int(res["selected"]):
            return
        stats = self.stats
        stats["batches"] += 1
        stats["moved"] += int(res["deleted"])
        stats["source_hash"] += int(res["source_hash"])
        if res["archive_hash"] is not None:
            stats["archive_hash"] += int(res["archive_hash"])
        stats["max_batch_s"] = max(stats["max_batch_s"], round(elapsed, 4))
        self.batch_s.append(elapsed)
        self._publish_progress()
        if bar is not None:
            bar.update(int(res["deleted"]))

    def _publish_progress(self) -> None:
        """What the audit record says was committed, should the run stop now."""
        progress = self.ctx.progress
        progress.setdefault("pairs", {})[self.p.source.qualified] = {k: self.stats[k] for k in ("moved", "batches", "archived_at")}
        progress["committed"] = "; ".join(
            f"{v['moved']:,} rows of {k} archived with archived_at = {v['archived_at']}" for k, v in progress["pairs"].items()
        )

    def _advance(self, selected: int, res: dict[str, Any]) -> bool:
        """Move to the next slice; False when a key walk has reached its end."""
        if self.p.order == "physical":
            self.page += self.pages
            self.density = 0.7 * self.density + 0.3 * (selected / self.pages)
            self.pages = max(1, min(self.max_pages, 2 * self.pages, int(self.batch_size / max(self.density, 0.01))))
            return True
        if selected < self.batch_size:
            return False
        self.after = res["last_key"]
        return True


def verify_pair(session, plan: Plan, p: Pair, stats: dict[str, Any]) -> list[Verified]:
    """Re-read what this run committed: count, content hash, disjointness, cutoff."""
    q = sql.SQL(
        "select count(*) as n, {h} as h, count(*) filter (where a.{col} >= %(cutoff)s) as too_new,"
        " count(*) filter (where exists (select from {src} s where s.{key} = a.{key})) as in_both"
        " from {arc} a where a.{aa} = %(archived_at)s"
    ).format(
        h=content_hash("a", p.columns, p.hash_fn),
        col=sql.Identifier(p.column),
        src=p.source.ident,
        key=sql.Identifier(p.key),
        arc=p.archive.ident,
        aa=sql.Identifier(ARCHIVED_AT),
    )
    row = session.fetch(q, {"cutoff": p.cutoff, "archived_at": stats["archived_at"]}, statement_timeout=plan.parameters["verify_timeout"])[0]
    stats["remaining_older_than_cutoff"] = int(session.scalar(count_sql(p, guarded=False), {"cutoff": p.cutoff}))
    name = p.source.qualified
    moved = stats["moved"]
    return [
        Verified(
            f"{name}: counts conserved",
            int(row["n"]) == moved,
            f"{moved:,} rows deleted from {name}, {moved:,} inserted, {int(row['n']):,} found in {p.archive.qualified} for this run",
        ),
        Verified(
            f"{name}: content hash",
            int(row["h"]) == stats["source_hash"] and (not p.archive_triggers or stats["archive_hash"] == stats["source_hash"]),
            f"hash of deleted rows {stats['source_hash']} = hash of archived rows re-read {int(row['h'])}",
        ),
        Verified(f"{name}: id sets disjoint", int(row["in_both"]) == 0, f"{int(row['in_both'])} archived {p.key}s still present in {name}"),
        Verified(
            f"{name}: cutoff respected", int(row["too_new"]) == 0, f"{int(row['too_new'])} archived rows with {p.column} at or after the cutoff"
        ),
    ]


def vacuum_source(plan: Plan, rel: Relation) -> float:
    """``VACUUM (ANALYZE)`` on a dedicated autocommit connection with session-level timeouts; its seconds."""
    params = plan.parameters
    started = time.monotonic()
    with autocommit_session(plan.session) as s:
        with bounded(s, statement_timeout=params["vacuum_timeout"], lock_timeout=params["lock_timeout"]):
            s.conn.execute(sql.SQL("vacuum (analyze) {}").format(rel.ident))
    return round(time.monotonic() - started, 3)


def execute(action, plan: Plan, ctx: Context) -> ActionResult:
    """Re-check, move every pair (stopping at ``max_runtime``), verify, vacuum; the result.

    The whole run holds :func:`exclusive_run`: a second archive of the same table refuses.
    """
    with exclusive_run(plan.session, plan):
        return _move_and_verify(action, plan, ctx)


def _move_and_verify(action, plan: Plan, ctx: Context) -> ActionResult:
    session, params = plan.session, plan.parameters
    with ctx.step("re-check preconditions"):
        recheck(session, plan)
    deadline = time.monotonic() + float(params["max_runtime"]) if params.get("max_runtime") else None
    results: list[tuple[Pair, dict[str, Any]]] = []
    verified: list[Verified] = []
    undo: list[str] = []
    for p, obj in zip(plan.state["pairs"], plan.objects):
        with ctx.step(f"move {p.source.qualified}"):
            stats = PairMover(session, plan, ctx, p, obj["rows_to_move"]).run(deadline)
        with ctx.step(f"verify {p.source.qualified}"):
            verified += verify_pair(session, plan, p, stats)
        results.append((p, stats))
        if stats["moved"]:
            undo.append(undo_sql(p, stats["archived_at"]).as_string(session.conn))
        if stats["stopped"]:
            break
    failed = [v for v in verified if not v.ok]
    if failed:  # before the vacuum: nothing more is done to a run that did not verify
        raise VerificationError(
            "post-conditions failed after the move: " + "; ".join(f"{v.name} ({v.detail})" for v in failed),
            hint="the committed batches are in the archive; investigate before re-running (undo SQL is in the audit record)",
        )
    warnings = _vacuum_sources(plan, ctx, results) if params.get("vacuum") else []
    moved = sum(s["moved"] for _, s in results)
    stopped = any(s["stopped"] for _, s in results) or len(results) < len(plan.state["pairs"])
    if stopped:
        warnings.append("stopped at max_runtime: committed batches are complete and verified; re-run to continue")
    for _, s in results:
        if s.get("remaining_older_than_cutoff"):
            warnings.append(
                f"{s['remaining_older_than_cutoff']:,} rows of {s['source']} older than the cutoff remain "
                "(locked by others, referenced by dependents, written during the run, or not reached): re-run to continue"
            )
    summary = f"Moved {moved:,} rows (planned {plan.rows:,}) in " + ", ".join(
        f"{s['source']}: {s['moved']:,} rows / {s['batches']} batches, longest batch {s['max_batch_s']:.3f}s" for _, s in results
    ) + "."
    return action.result(
        ctx,
        outcome="partial" if stopped else ("applied" if moved else "nothing_to_do"),
        summary=summary,
        verified=verified,
        objects=[_result_row(s) for _, s in results],
        undo="\n\n".join(undo) or None,
        warnings=warnings,
    )


def _vacuum_sources(plan: Plan, ctx: Context, results: list[tuple[Pair, dict[str, Any]]]) -> list[str]:
    """Vacuum each source that lost rows; a vacuum that fails is a warning (the archive is complete and verified)."""
    warnings = []
    for p, stats in results:
        if not stats["moved"]:
            continue
        try:
            with ctx.step(f"vacuum (analyze) {p.source.qualified}"):
                stats["vacuum_s"] = vacuum_source(plan, p.source)
        except PgRunbooksError as exc:  # translated by SQLSTATE in ctx.step; the vacuum can be re-run alone
            warnings.append(
                f"VACUUM (ANALYZE) {p.source} did not complete ({exc.message}); the archive is complete — run "
                "runbooks/weekly/vacuum_analyze for it later"
            )
    return warnings


def _result_row(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": s["source"],
        "archive": s["archive"],
        "moved": s["moved"],
        "planned": s["planned"],
        "batches": s["batches"],
        "rows_per_s": s["rows_per_s"],
        "p95_batch_s": s["p95_batch_s"],
        "longest_batch_s": s["max_batch_s"],
        "remaining_older_than_cutoff": s.get("remaining_older_than_cutoff"),
        "archived_at": s["archived_at"].isoformat() if s["archived_at"] else None,
        "stopped": s["stopped"],
        # the batch from which rows held by others were skipped (None: none was met)
        "skip_locked_from_batch": s.get("skip_locked_from_batch"),
    }
