"""Drop an inactive replication slot that pins WAL: :data:`DROP_SLOT`, ``plan_drop_slot``.

A slot nobody consumes keeps every WAL segment from its ``restart_lsn`` on: ``pg_wal`` grows
until the disk fills (on Supabase: read-only at 95 %). Dropping it lets the next checkpoint
recycle those segments. It cannot be undone: a new slot starts from the current WAL position,
so whatever consumed the old one (a standby, a CDC pipeline, a logical subscriber) must be
re-synchronised. ``confirm`` is the slot's exact name; an active slot (a consumer connected)
is refused, in the plan and again just before the drop.
"""

from __future__ import annotations

from typing import Any

from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.errors import ConcurrentChangeError, UsageError
from pgrunbooks.names import quote_ident

SLOT_SQL = (
    "select s.slot_name::text as slot, s.slot_type::text as slot_type, s.database::text as database, s.temporary,"
    " s.active, s.active_pid, s.wal_status::text as wal_status, s.restart_lsn::text as restart_lsn,"
    " pg_catalog.pg_wal_lsn_diff(case when pg_catalog.pg_is_in_recovery() then pg_catalog.pg_last_wal_receive_lsn()"
    " else pg_catalog.pg_current_wal_lsn() end, s.restart_lsn)::bigint as retained_bytes"
    " from pg_catalog.pg_replication_slots s where s.slot_name = %s"
)
#: may this role drop a slot? (superuser or the REPLICATION attribute)
MAY_DROP_SQL = "select r.rolsuper or r.rolreplication as may from pg_catalog.pg_roles r where r.rolname = current_user"
DROP_SQL = "select pg_catalog.pg_drop_replication_slot(%s)"
UNDO = ("-- none: a dropped slot cannot be restored. A new slot (pg_create_physical_replication_slot / "
        "pg_create_logical_replication_slot) starts from the current WAL position: its consumer must be "
        "re-synchronised (a standby re-cloned or fed from the WAL archive, a logical subscriber re-copies its tables).")


class DropSlot(Action):
    """Drop one inactive replication slot, confirmed by its exact name."""

    name = "drop_slot"
    title = "Drop an inactive replication slot"
    confirm_hint = "the slot's exact name"
    outline_columns = ("slot", "type", "action")

    def plan(self, session, slot: Any = None, *, statement_timeout: str = "30s", lock_timeout: str = "5s") -> Plan:
        """A dry run: the slot, the WAL it retains, why it may (not) be dropped. Changes nothing."""
        if not isinstance(slot, str) or not slot.strip():
            raise UsageError(f"slot must be the name of a replication slot, not {slot!r}")
        row = session.fetch_one(SLOT_SQL, (slot,))
        if row is None:
            names = [r["slot_name"] for r in session.fetch("select slot_name::text from pg_catalog.pg_replication_slots order by 1")]
            raise UsageError(f"no such replication slot: {quote_ident(slot)}",
                             hint="existing slots: " + (", ".join(names) if names else "none"))
        blockers = self._blockers(session, row)
        retained_mb = round((row["retained_bytes"] or 0) / 1048576, 1)
        return self.new_plan(
            session,
            summary=(f"Drop the {row['slot_type']} replication slot {slot}: it retains {retained_mb:g} MB of WAL "
                     f"(wal_status {row['wal_status']}), released at the next checkpoint."),
            confirm=slot,
            statements=["select pg_catalog.pg_drop_replication_slot(" + _literal(slot) + ")  -- the name is bound as a parameter"],
            objects=[{"slot": slot, "type": row["slot_type"], "database": row["database"], "active": row["active"],
                      "wal_status": row["wal_status"], "retained_mb": retained_mb, "restart_lsn": row["restart_lsn"],
                      "action": "drop" if not blockers else "refused"}],
            rows=1,
            estimated_seconds=1,
            undo=UNDO,
            blockers=blockers,
            notes=["the WAL it retained is removed by the next checkpoint (or CHECKPOINT), not at once"],
            parameters={"slot": slot, "statement_timeout": statement_timeout, "lock_timeout": lock_timeout},
            state={"slot": row},
        )

    @staticmethod
    def _blockers(session, row: dict[str, Any]) -> list[str]:
        out = []
        if row["active"]:
            out.append(f"slot {row['slot']} is active: a consumer (pid {row['active_pid']}) is connected to it; "
                       "stop or repoint the consumer first, never drop a slot in use")
        if row["temporary"]:
            out.append(f"slot {row['slot']} is temporary: it goes away with the session that created it")
        if not session.scalar(MAY_DROP_SQL):
            out.append("this role may not drop replication slots: it needs the REPLICATION attribute or superuser")
        return out

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        session, params, planned = plan.session, plan.parameters, plan.state["slot"]
        slot = params["slot"]
        timeouts = {"statement_timeout": params["statement_timeout"], "lock_timeout": params["lock_timeout"]}
        with ctx.step("re-check the slot"), session.transaction(**timeouts) as cur:
            cur.execute(SLOT_SQL, (slot,))
            now = cur.fetchone()
        if now is None:
            return self.result(ctx, outcome="nothing_to_do", summary=f"slot {slot} is already gone.",
                               verified=[Verified("slot gone", True, f"{slot} not in pg_replication_slots")], undo=UNDO)
        if now["active"] or now["slot_type"] != planned["slot_type"] or now["database"] != planned["database"]:
            raise ConcurrentChangeError(
                f"slot {slot} changed since the plan: " + (f"now active (pid {now['active_pid']})" if now["active"]
                                                           else f"now a {now['slot_type']} slot on {now['database']}"),
                hint="make a new plan")
        with ctx.step("drop the slot"), session.transaction(**timeouts) as cur:
            cur.execute(DROP_SQL, (slot,))
        ctx.progress["committed"] = f"slot {slot} dropped"
        with ctx.step("verify"):
            gone = session.fetch_one(SLOT_SQL, (slot,)) is None
        return self.result(
            ctx,
            outcome="applied",
            summary=f"Dropped replication slot {slot}; {round((now['retained_bytes'] or 0) / 1048576, 1):g} MB of WAL "
                    "can be recycled at the next checkpoint.",
            verified=[Verified("slot gone", gone, f"{slot} {'not ' if gone else 'still '}in pg_replication_slots")],
            objects=[{"slot": slot, "type": now["slot_type"], "outcome": "dropped" if gone else "still present",
                      "retained_mb": round((now["retained_bytes"] or 0) / 1048576, 1)}],
            undo=UNDO,
            failure_hint="look for a consumer that re-created it (same name) and stop it first",
        )


def _literal(text: str) -> str:
    """``text`` as a SQL string literal, for the plan's display only (the drop binds it)."""
    return "'" + text.replace("'", "''") + "'"


DROP_SLOT = DropSlot()
plan_drop_slot = DROP_SLOT.plan
