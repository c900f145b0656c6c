"""Merge organization B (``from_org``) into A (``into_org``): every row of B becomes A's, in one transaction.

The plan discovers every tenant column from the catalog (:mod:`.merge_discovery`), counts B's rows
per column and the rows hanging under them, and computes every collision on a unique key that
contains a tenant column (:mod:`.merge_rules`); a collision without a rule refuses the plan.

The apply is **one transaction** under ``SET LOCAL lock_timeout`` and ``statement_timeout``:

1. lock both organization rows ``for update``, in id order (two merges never deadlock). An insert
   into a table with a foreign key to ``organizations`` takes ``for key share`` on its parent, so
   writers to A or B wait; tables whose tenant column has **no** foreign key are locked
   ``in share row exclusive mode`` for the same reason (a row lock would not stop them);
2. re-count and re-compute the collisions (:class:`ConcurrentChangeError` if they changed);
3. delete each collision's loser (kept in full for the undo), then one ``UPDATE`` per column;
4. verify: no row references B, A's rows = before + moved, B's rows - dropped = moved;
5. delete B, or keep it as a tombstone (renamed, status canceled).

A writer that waited on those locks runs after the commit. With a foreign key its insert into B
fails (B is gone); without one it would land on B, so after the commit the action waits for the
writers it held back (bounded by ``lock_timeout``) and sweeps their rows to A in a second short
transaction (``late rows`` in the result). The result's ``undo`` (also in the audit record) is
SQL that splits B back out exactly: B's row, the moved keys per table, the dropped rows in full.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from typing import Any

from psycopg import sql

from pgrunbooks.actions import catalog, text
from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.actions.data import merge_discovery as disc
from pgrunbooks.actions.data.merge_discovery import TenantColumn, count_rows, typed_keys
from pgrunbooks.actions.data import merge_rules as rules
from pgrunbooks.actions.data.common import resolve_organization
from pgrunbooks.engine.constraints import interval_seconds
from pgrunbooks.errors import ConcurrentChangeError, PreconditionError, UsageError, VerificationError


# A literal longer than this is elided when a result is shown (the full undo is in result.undo and the audit record).
SHOWN_LITERAL = 160
_LONG_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def _elide(undo: str | None) -> str | None:
    def short(m: re.Match) -> str:
        body = m.group(1)
        if len(body) <= SHOWN_LITERAL:
            return m.group(0)
        return f"'{body[:60]}…' /* {len(body):,} characters: the full SQL is in result.undo and the audit record */"

    return _LONG_LITERAL.sub(short, undo) if undo else undo


@dataclasses.dataclass
class MergeResult(ActionResult):
    """An :class:`ActionResult` shown with its undo's long literals (the moved keys) elided; ``undo`` keeps them all."""

    @classmethod
    def of(cls, result: ActionResult) -> "MergeResult":
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})

    def _shown(self) -> ActionResult:
        return ActionResult(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"undo": _elide(self.undo)})

    def __str__(self) -> str:
        return text.result_text(self._shown())

    def _repr_markdown_(self) -> str:
        return text.result_markdown(self._shown())


class MergeOrganizations(Action):
    """Move every row of one organization into another, resolve unique collisions, delete or tombstone the first."""

    name = "merge_organizations"
    title = "Merge organizations"
    confirm_hint = "the slug of the organization merged away (from_org)"
    outline_columns = ("operation", "table", "column", "detail")

    def plan(self, session, from_org: Any = None, into_org: Any = None, *, on_collision: dict[str, str] | None = None,
             tombstone: bool = False, statement_timeout: str = "60s", lock_timeout: str = "5s") -> Plan:
        """Dry run: resolve both organizations, discover the tenant columns, count, compute collisions. Changes nothing.

        ``from_org`` / ``into_org``: a slug or an id each. ``on_collision``: ``{index or
        table: rule}`` (rules in :data:`merge_rules.RULES`; default ``org_users`` →
        ``keep_higher_role``, else ``fail``). ``tombstone``: keep B (renamed, status
        canceled) instead of deleting it. The plan's ``confirm`` is B's slug.
        """
        check_parameters(from_org=from_org, into_org=into_org, tombstone=tombstone,
                         statement_timeout=statement_timeout, lock_timeout=lock_timeout)
        declared = rules.normalise_rules(on_collision)
        b, a = resolve_organization(session, from_org), resolve_organization(session, into_org)
        if a.id == b.id:
            raise UsageError(f"from_org and into_org are the same organization ({b.slug}): nothing to merge")
        orgs = disc.organizations(session)
        blockers: list[str] = []
        columns = disc.tenant_columns(session, orgs, blockers)
        hanging = disc.hanging_rows(session, columns)
        keys = rules.unique_keys(session, columns, declared)
        blockers += disc.access_blockers(session, columns, orgs)
        warnings = [f"on_collision names {k!r}, which is no unique key or moved table here" for k in
                    rules.unused_rules(declared, keys, columns)]
        with session.transaction() as cur:
            counts = {c.label: (disc.count_rows(cur, c, str(b.id)), disc.count_rows(cur, c, str(a.id))) for c in columns}
            pairs = {k.name: rules.collisions(cur, k, str(b.id), str(a.id)) if k.computable else [] for k in keys}
            for k in keys:
                blockers += rules.key_problems(cur, k, pairs[k.name])
            blockers += rules.dependents_of_losers(cur, session, keys, pairs)
            children = {h: disc.count_hanging(cur, h, str(b.id)) for h in hanging}
        total = sum(n for n, _ in counts.values())
        dropped = sum(len(rules.losers(k, pairs[k.name])) for k in keys)
        return self.new_plan(
            session,
            summary=(f"Merge {b.slug} into {a.slug}: move {total:,} rows in {len(columns)} column(s), drop {dropped:,} "
                     f"colliding row(s) by rule, then {'tombstone' if tombstone else 'delete'} {b.slug}."),
            confirm=b.slug,
            statements=plan_statements(session, columns, [c for c in columns if not c.has_fk], tombstone),
            objects=plan_objects(columns, keys, hanging, counts, pairs, children), rows=total, estimated_seconds=round(total / 50_000 + 0.5, 1),
            undo="-- the undo SQL, with the moved keys and the dropped rows, is in the result and the audit record",
            warnings=warnings, blockers=blockers, notes=plan_notes(columns, tombstone),
            parameters={"from_org": from_org, "into_org": into_org, "on_collision": on_collision or {},
                        "tombstone": tombstone, "statement_timeout": statement_timeout, "lock_timeout": lock_timeout},
            state={"from": b, "into": a, "orgs": orgs, "columns": columns, "keys": keys, "counts": counts,
                   "pairs": {k: [(p["from_key"], p["into_key"]) for p in v] for k, v in pairs.items()}},
        )

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        """Re-check, lock, resolve, move, verify, delete or tombstone B; then sweep late rows. One transaction."""
        st, s, p = plan.state, plan.session, plan.parameters
        b, a, columns = str(st["from"].id), str(st["into"].id), st["columns"]
        with ctx.step("re-check the catalog"):
            now = disc.tenant_columns(s, st["orgs"])
            if [c.signature() for c in now] != [c.signature() for c in columns]:
                raise PreconditionError("the tenant columns changed since the plan (a table, column or foreign key)")
        fkless = [c for c in columns if not c.has_fk]
        with ctx.step("merge"), s.transaction(statement_timeout=p["statement_timeout"], lock_timeout=p["lock_timeout"]) as cur:
            with ctx.step("lock"):
                cur.execute("select o.id::text as id, to_jsonb(o) as row from public.organizations o"
                            " where o.id = any(%s::uuid[]) order by o.id for update", ([a, b],))
                locked = {r["id"]: r["row"] for r in cur.fetchall()}
                if set(locked) != {a, b}:
                    raise PreconditionError("an organization of the plan no longer exists", hint="make a new plan")
                for rel in sorted({c.table for c in fkless}, key=lambda r: r.oid):
                    cur.execute(sql.SQL("lock table only {} in share row exclusive mode").format(rel.ident))
            with ctx.step("re-check counts and collisions"):
                before = {c.label: (disc.count_rows(cur, c, b), disc.count_rows(cur, c, a)) for c in columns}
                pairs = {k.name: rules.collisions(cur, k, b, a) for k in st["keys"] if k.computable}
                if {k: [(x["from_key"], x["into_key"]) for x in v] for k, v in pairs.items()} != st["pairs"]:
                    raise ConcurrentChangeError("the collisions changed since the plan (rows of A or B were written)",
                                                hint="make a new plan and review its collisions")
            with ctx.step("resolve collisions"):
                dropped = rules.drop_losers(cur, st["keys"], pairs)
            with ctx.step("move rows"):
                moved = {c.label: move(cur, c, b, a) for c in columns}
            with ctx.step("verify"):
                verified = self._verify(cur, columns, before, moved, dropped, b, a)
            with ctx.step("delete or tombstone B"):
                verified.append(retire(cur, st["orgs"], b, st["into"].slug, p["tombstone"]))
            waiters = held_back(cur)
        # Committed: from here on a failure must still leave the undo in the audit record (its progress).
        ctx.progress["committed"] = f"{st['from'].slug} merged into {st['into'].slug}"
        with ctx.step("undo script"):
            ctx.progress["undo"] = undo_sql(s, st["orgs"], columns, locked[b], moved, {}, dropped, p["tombstone"])
        with ctx.step("sweep late rows"):
            late = sweep(s, columns if p["tombstone"] else fkless, b, a, waiters, p["lock_timeout"])
            if late:  # the swept rows go back to B with the others
                ctx.progress["undo"] = undo_sql(s, st["orgs"], columns, locked[b], moved, late, dropped, p["tombstone"])
            verified.append(nothing_references(s, columns, b))
        undo = ctx.progress["undo"]
        objects = [{"table": c.table.qualified, "column": c.column, "rows_before": before[c.label][0],
                    "moved": len(moved[c.label]) + len(late.get(c.label, [])),
                    "late_rows": len(late.get(c.label, [])),
                    "dropped": sum(1 for d in dropped if d["table"] == c.table.qualified)} for c in columns]
        total = sum(o["moved"] for o in objects)
        warnings = [f"{n} row(s) of {k} were written to {st['from'].slug} while the merge ran and were swept to "
                    f"{st['into'].slug} afterwards" for k, rows in late.items() if (n := len(rows))]
        return MergeResult.of(self.result(
            ctx, outcome="applied", verified=verified, objects=objects, undo=undo, warnings=warnings,
            summary=(f"Merged {st['from'].slug} into {st['into'].slug}: {total:,} rows moved, {len(dropped):,} "
                     f"colliding row(s) dropped, {st['from'].slug} {'tombstoned' if p['tombstone'] else 'deleted'}."),
            failure_hint="the transaction was rolled back: nothing changed",
        ))

    @staticmethod
    def _verify(cur, columns, before, moved, dropped, b: str, a: str) -> list[Verified]:
        """Inside the transaction: nothing references B, and per column the rows add up (a failure rolls back)."""
        out = []
        for c in columns:
            n_b, n_a = before[c.label]
            lost_b = sum(1 for d in dropped if d["table"] == c.table.qualified and d["side"] == "from")
            lost_a = sum(1 for d in dropped if d["table"] == c.table.qualified and d["side"] == "into")
            after_b, after_a = disc.count_rows(cur, c, b), disc.count_rows(cur, c, a)
            ok = after_b == 0 and len(moved[c.label]) == n_b - lost_b and after_a == n_a - lost_a + len(moved[c.label])
            detail = (f"B {n_b:,} -> {after_b:,}; A {n_a:,} -> {after_a:,} (moved {len(moved[c.label]):,}, dropped "
                      f"{lost_b + lost_a:,} by rule)")
            if not ok:
                raise VerificationError(f"{c.label}: rows do not add up ({detail}); the transaction was rolled back")
            out.append(Verified(f"{c.label}: nothing references B, rows conserved", ok, detail))
        return out


# ---------------------------------------------------------------------------------------------
# The statements (on the merge transaction's cursor unless said otherwise)

# Longest wait after the commit for the writers the merge's locks held back (their rows are swept).
MAX_SWEEP_WAIT_S = 10.0


def plan_statements(session, columns: list[TenantColumn], fkless: list[TenantColumn], tombstone: bool) -> list[str]:
    """The statements the apply runs, for the plan (``%(from)s`` / ``%(into)s`` are B's and A's ids)."""
    out = [sql.SQL("select … from public.organizations where id in (%(into)s, %(from)s) order by id for update")]
    out += [sql.SQL("lock table only {} in share row exclusive mode").format(r.ident)
            for r in sorted({c.table for c in fkless}, key=lambda r: r.oid)]
    out.append(sql.SQL("-- per unique key with collisions: delete the rule's losers … returning to_jsonb(row)"))
    out += [sql.SQL("update {t} set {c} = %(into)s where {c} = %(from)s returning {pk}").format(
        t=c.table.ident, c=sql.Identifier(c.column), pk=sql.Identifier(c.key[0] if c.key else "ctid")) for c in columns]
    out.append(sql.SQL("update public.organizations set name = …, subscription_status = 'canceled' where id = %(from)s"
                       if tombstone else "delete from public.organizations where id = %(from)s"))
    return [q.as_string(session.conn) for q in out]


def move(cur, c: TenantColumn, b: str, a: str) -> list[str]:
    """One set-based ``UPDATE`` of ``c`` from B to A; returns the moved primary keys (as text)."""
    cur.execute(sql.SQL("with m as (update {t} set {c} = %s where {c} = %s returning {pk})"
                        " select coalesce(array_agg({pk}::text), '{{}}') as keys from m").format(
        t=c.table.ident, c=sql.Identifier(c.column), pk=sql.Identifier(c.key[0])), (a, b))
    return list(cur.fetchone()["keys"])


def tombstone_columns(cur, orgs: Relation) -> set[str]:
    cur.execute("select array_agg(attname::text) as names from pg_catalog.pg_attribute"
                " where attrelid = %s and attnum > 0 and not attisdropped", (orgs.oid,))
    return set(cur.fetchone()["names"] or [])


def retire(cur, orgs: Relation, b: str, into_slug: str, tombstone: bool) -> Verified:
    """Delete B, or keep it as a tombstone (name suffixed, status canceled, deleted_at set where those columns exist)."""
    if not tombstone:
        cur.execute(sql.SQL("delete from {} where id = %s").format(orgs.ident), (b,))
        cur.execute(sql.SQL("select count(*) as n from {} where id = %s").format(orgs.ident), (b,))
        gone = cur.fetchone()["n"] == 0
        return Verified("B deleted", gone, "no row of organizations has B's id" if gone else "B is still there")
    have = tombstone_columns(cur, orgs)
    sets, params = [sql.SQL("name = name || %s")], [f" (merged into {into_slug})"]
    for col, expr in (("subscription_status", "'canceled'"), ("status", "'canceled'"), ("deleted_at", "now()"),
                      ("updated_at", "now()")):
        if col in have:
            sets.append(sql.SQL("{} = " + expr).format(sql.Identifier(col)))
    cur.execute(sql.SQL("update {} set {} where id = %s").format(orgs.ident, sql.SQL(", ").join(sets)), (*params, b))
    return Verified("B kept as a tombstone", cur.rowcount == 1, f"renamed; {', '.join(sorted(have & {'subscription_status', 'status', 'deleted_at'})) or 'no status column'} set")


def held_back(cur) -> list[int]:
    """Backends waiting on this transaction's locks right now: writers that will run after the commit."""
    cur.execute("select coalesce(array_agg(a.pid order by a.pid), '{}') as pids from pg_catalog.pg_stat_activity a"
                " where pg_catalog.pg_backend_pid() = any(pg_catalog.pg_blocking_pids(a.pid))")
    return list(cur.fetchone()["pids"])


def sweep(session, columns: list[TenantColumn], b: str, a: str, waiters: list[int], lock_timeout: str) -> dict[str, list[str]]:
    """After the commit: wait for the held-back writers to finish (bounded), then move what they wrote to B."""
    limit = min(MAX_SWEEP_WAIT_S, float(session.scalar("select extract(epoch from %s::interval)", (lock_timeout,)) or 0) * 2)
    deadline = time.monotonic() + limit
    while waiters and time.monotonic() < deadline:
        busy = session.scalar("select count(*) from pg_catalog.pg_stat_activity where pid = any(%s)"
                              " and state is distinct from 'idle'", (waiters,))
        if not busy:
            break
        time.sleep(0.02)
    late: dict[str, list[str]] = {}
    if not columns:
        return late
    with session.transaction(lock_timeout=lock_timeout) as cur:
        for c in columns:
            keys = move(cur, c, b, a)
            if keys:
                late[c.label] = keys
    return late


def nothing_references(session, columns: list[TenantColumn], b: str) -> Verified:
    """After everything: no row of any discovered tenant column holds B's id."""
    with session.transaction() as cur:
        left = {c.label: n for c in columns if (n := count_rows(cur, c, b))}
    return Verified("no row references B after the merge", not left,
                    "none" if not left else ", ".join(f"{k}: {v}" for k, v in left.items()))


def _insert_json(session, rel: Relation, rows_json: str, *, single: bool) -> sql.Composed:
    cols = [c for c in catalog.columns(session, rel) if not c["generated"]]
    names = sql.SQL(", ").join(sql.Identifier(c["name"]) for c in cols)
    overriding = sql.SQL(" overriding system value") if any(c["identity"] == "a" for c in cols) else sql.SQL("")
    fn = sql.SQL("pg_catalog.jsonb_populate_record" if single else "pg_catalog.jsonb_populate_recordset")
    return sql.SQL("insert into {t} ({names}){ov} select {names} from {fn}(null::{t}, {rows}::jsonb);").format(
        t=rel.ident, names=names, ov=overriding, fn=fn, rows=sql.Literal(rows_json))


def undo_sql(session, orgs: Relation, columns: list[TenantColumn], b_row: dict[str, Any], moved: dict[str, list[str]],
             late: dict[str, list[str]], dropped: list[dict[str, Any]], tombstone: bool) -> str:
    """SQL that splits B back out exactly: B's row, the moved keys per column back to B, the dropped rows re-inserted."""
    b = b_row["id"]
    parts: list[sql.Composable] = [sql.SQL("begin;\nset local lock_timeout = '5s';")]
    parts.append(sql.SQL("-- 1. the organization row of B as it was before the merge"))
    if tombstone:
        cols = [c["name"] for c in catalog.columns(session, orgs) if not c["generated"] and c["name"] != "id"]
        parts.append(sql.SQL("update {t} o set ({cols}) = (select {cols} from pg_catalog.jsonb_populate_record(null::{t},"
                             " {row}::jsonb)) where o.id = {id};").format(
            t=orgs.ident, cols=sql.SQL(", ").join(map(sql.Identifier, cols)), row=sql.Literal(json.dumps(b_row)),
            id=sql.Literal(b)))
    else:
        parts.append(_insert_json(session, orgs, json.dumps(b_row), single=True))
    parts.append(sql.SQL("-- 2. the moved rows, by primary key, back to B"))
    for c in columns:
        keys = moved.get(c.label, []) + late.get(c.label, [])
        if keys:
            parts.append(sql.SQL("update {t} set {c} = {b} where {pk} = any({keys});").format(
                t=c.table.ident, c=sql.Identifier(c.column), b=sql.Literal(b), pk=sql.Identifier(c.key[0]),
                keys=typed_keys(c.table, c.key[0], sql.Literal(keys))))
    if dropped:
        parts.append(sql.SQL("-- 3. the rows the collision rules deleted, in full"))
        by_table: dict[str, list[dict[str, Any]]] = {}
        for d in dropped:
            by_table.setdefault(d["table"], []).append(d["row"])
        rels = {c.table.qualified: c.table for c in columns}
        for table, rows in by_table.items():
            parts.append(_insert_json(session, rels[table], json.dumps(rows), single=False))
    parts.append(sql.SQL("commit;"))
    return sql.SQL("\n").join(parts).as_string(session.conn)


def check_parameters(*, from_org: Any, into_org: Any, tombstone: Any, statement_timeout: Any, lock_timeout: Any) -> None:
    """Raise :class:`UsageError` (exit 3) for a value out of shape, before anything is read."""
    for name, value in (("from_org", from_org), ("into_org", into_org)):
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise UsageError(f"{name} must be an organization's slug or id, not {value!r}")
    if not isinstance(tombstone, bool):
        raise UsageError(f"tombstone must be True or False, not {tombstone!r}")
    for name, value in (("statement_timeout", statement_timeout), ("lock_timeout", lock_timeout)):
        try:
            interval_seconds(value, "ms")
        except (ValueError, KeyError):
            raise UsageError(f"{name} must be a duration such as '5s' or '1min', not {value!r}") from None


def plan_objects(columns, keys, hanging, counts, pairs, children) -> list[dict[str, Any]]:
    """The plan's rows: a ``move`` per tenant column, the ``collisions`` per unique key, what ``follows its parent``."""
    objects = [{"operation": "move", "table": c.table.qualified, "column": c.column, "detail": c.reference,
                "rows_to_move": counts[c.label][0], "rows_in_into": counts[c.label][1]} for c in columns]
    objects += [{"operation": f"collisions: {k.rule}", "table": k.column.table.qualified, "column": k.column.column,
                 "detail": k.name, "rows_to_move": len(pairs[k.name]), "rows_in_into": None} for k in keys]
    objects += [{"operation": "follows its parent", "table": h.child.qualified, "column": ", ".join(h.child_columns),
                 "detail": f"-> {h.parent.table.qualified}" + (" (and its own tenant column)" if h.own_tenant_column else ""),
                 "rows_to_move": children[h], "rows_in_into": None} for h in hanging]
    return objects


def plan_notes(columns: list[TenantColumn], tombstone: bool) -> list[str]:
    return [
        f"{len(columns)} tenant column(s) found in the catalog ({sum(c.has_fk for c in columns)} by foreign key, "
        f"{sum(not c.has_fk for c in columns)} without one); tables designed without foreign keys (archives) are "
        "left out, as the missing_foreign_keys check leaves them out.",
        "Rows hanging under moved rows (\"follows its parent\") reference their parent's key, which does not "
        "change: they stay attached to it and move with it.",
        "One transaction: both organization rows locked for update (in id order); tables without a foreign key "
        "to organizations locked in share row exclusive mode (writes to them wait for the merge, bounded by "
        "lock_timeout); writers they held back are swept to A after the commit.",
        f"B is {'kept as a tombstone (renamed, status canceled)' if tombstone else 'deleted'} at the end.",
    ]


MERGE_ORGANIZATIONS = MergeOrganizations()
plan_merge_organizations = MERGE_ORGANIZATIONS.plan

