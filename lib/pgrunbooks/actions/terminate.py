"""Cancel, then terminate, sessions chosen by state, duration, user and application.

The guide's ``pg_terminate_backend(pid) … WHERE duration > interval …`` filters on an
output alias (an error), kills without trying a cancel first, and would kill its own
backend, replication and autovacuum. Here:

* durations are measured on ``now() - query_start`` for active sessions and on
  ``now() - state_change`` for idle / idle-in-transaction ones;
* the runbook's own backend is never a target; superusers' sessions, replication
  (walsender) and autovacuum / background workers are excluded unless explicitly
  allowed, and the plan lists them with the reason;
* a target is identified by ``(pid, backend_start)``, so a pid reused by a new
  connection between plan and apply is never signalled;
* ``pg_cancel_backend`` first; ``pg_terminate_backend`` only for targets still stuck
  after ``grace_period`` seconds (or directly with ``mode="terminate"``); then the
  result verifies that every terminated target is gone and every cancelled one stopped.

The plan's ``confirm`` is the list of target pids.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import psycopg
from psycopg import sql

from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.errors import UsageError, VerificationError
from pgrunbooks.names import quote_ident
from pgrunbooks.redact import redact_sql

STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call", "disabled")
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
MODES = ("cancel_then_terminate", "cancel", "terminate")
BACKGROUND_TYPES_NEVER = ("checkpointer", "background writer", "walwriter", "startup", "archiver", "logger",
                          "autovacuum launcher", "logical replication launcher", "io worker", "walsummarizer",
                          "walreceiver", "slotsync worker")

SESSIONS_SQL = """
select a.pid, a.backend_start, a.datname as database, a.usename as "user", a.application_name as application,
       a.client_addr::text as client, a.backend_type, a.state, a.query_start, a.state_change, a.xact_start,
       extract(epoch from case when a.state = 'active' then now() - a.query_start else now() - a.state_change end)::float8
         as duration_s,
       left(a.query, %(chars)s) as query, a.wait_event_type, a.wait_event,
       coalesce(r.rolsuper, false) as superuser,
       coalesce(pg_catalog.pg_has_role(a.usesysid, 'MEMBER'), false)
         or pg_catalog.pg_has_role('pg_signal_backend', 'MEMBER') as may_signal,
       (select rolsuper from pg_catalog.pg_roles where rolname = current_user) as we_are_superuser
from pg_catalog.pg_stat_activity a
left join pg_catalog.pg_roles r on r.oid = a.usesysid
where a.pid <> pg_catalog.pg_backend_pid()
  and (%(states)s::text[] is null or a.state = any(%(states)s::text[]))
  and (%(users)s::text[] is null or a.usename = any(%(users)s::text[]))
  and (%(apps)s::text[] is null or a.application_name like any(%(apps)s::text[]))
  and (%(pids)s::int[] is null or a.pid = any(%(pids)s::int[]))
  and (%(databases)s::text[] is null or a.datname = any(%(databases)s::text[]))
  and case when a.state = 'active' then now() - a.query_start else now() - a.state_change end >= %(min_duration)s::interval
order by duration_s desc nulls last, a.pid
"""

_SIGNAL_SQL = """
select a.pid, pg_catalog.{fn}(a.pid) as signalled
from pg_catalog.pg_stat_activity a
join unnest(%(pids)s::int[], %(starts)s::timestamptz[]) as t(pid, started) on t.pid = a.pid and t.started = a.backend_start
"""

_NOW_SQL = """
select a.pid, a.backend_start, a.state, a.query_start, a.state_change, a.xact_start
from pg_catalog.pg_stat_activity a
join unnest(%(pids)s::int[], %(starts)s::timestamptz[]) as t(pid, started) on t.pid = a.pid and t.started = a.backend_start
"""


_MISSING_ROLES = (
    "select w.name from unnest(%s::text[]) with ordinality w(name, ord)"
    " where not exists (select from pg_catalog.pg_roles r where r.rolname = w.name) order by w.ord"
)
_MISSING_DATABASES = (
    "select w.name from unnest(%s::text[]) with ordinality w(name, ord)"
    " where not exists (select from pg_catalog.pg_database d where d.datname = w.name) order by w.ord"
)


def _require_existing(session, what: str, missing_sql: str, wanted: list[str] | None) -> None:
    """A filter naming a role or database that does not exist is a typo, not "no session matched" (UsageError)."""
    if not wanted:
        return
    missing = [r["name"] for r in session.fetch(missing_sql, (wanted,))]
    if missing:
        raise UsageError(f"no such {what}: {', '.join(map(quote_ident, missing))}", hint=f"name existing {what}s")


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    items = [str(v) for v in value]
    if not items:
        return None
    return items


def _exclusion(row: dict[str, Any], *, own: int, allow_superusers: bool, allow_replication: bool, allow_background: bool) -> str | None:
    if row["pid"] == own:
        return "the runbook's own backend"
    kind = row["backend_type"] or ""
    if kind in BACKGROUND_TYPES_NEVER:
        return f"server process ({kind})"
    if kind == "walsender" and not allow_replication:
        return "replication (walsender); pass allow_replication=True"
    if kind == "autovacuum worker" and not allow_background:
        return "autovacuum worker; pass allow_background=True"
    if kind not in ("client backend", "walsender", "autovacuum worker") and not allow_background:
        return f"{kind or 'background process'}; pass allow_background=True"
    if row["superuser"] and not allow_superusers:
        return "superuser's session; pass allow_superusers=True"
    return None


HOW = {
    "cancel_then_terminate": "cancel, then terminate if still there",
    "cancel": "cancel",
    "terminate": "terminate",
}
MODE_SUMMARY = {
    "cancel_then_terminate": "cancel their query (pg_cancel_backend), wait {grace}s, then terminate "
    "(pg_terminate_backend) those still stuck",
    "cancel": "cancel their query (pg_cancel_backend); connections stay open",
    "terminate": "terminate them (pg_terminate_backend): their connection closes and open transactions roll back",
}
# What apply reports per target; the STILL_* ones fail the verification.
GONE, CHANGED, TERMINATED = "already gone", "no longer matches the plan: left alone", "terminated"
STILL_RUNNING, STILL_PRESENT = "STILL RUNNING after cancel", "STILL PRESENT after terminate"
TARGET_KEYS = ("pid", "backend_start", "state", "query_start", "state_change", "xact_start")


class TerminateSessions(Action):
    """Cancel, then terminate, the sessions chosen by state, duration, user, application and pid."""

    name = "terminate_sessions"
    title = "Cancel / terminate sessions"
    confirm_hint = "the list of target pids"
    outline_columns = ("action", "user", "application", "state")

    # -- plan -----------------------------------------------------------------------------------

    def plan(
        self,
        session,
        *,
        states: Iterable[str] | str | None = None,
        idle_in_transaction: bool = False,
        min_duration: str = "5 minutes",
        users: Iterable[str] | str | None = None,
        applications: Iterable[str] | str | None = None,
        pids: Iterable[int] | None = None,
        databases: Iterable[str] | str | None = "current",
        mode: str = "cancel_then_terminate",
        grace_period: float = 10.0,
        allow_superusers: bool = False,
        allow_replication: bool = False,
        allow_background: bool = False,
        query_chars: int = 1000,
    ) -> Plan:
        """Dry run: the sessions that would be cancelled/terminated, with their query text. Changes nothing.

        Filters combine with AND: ``states`` (e.g. ``["active"]``; ``idle_in_transaction=True``
        adds both idle-in-transaction states), ``min_duration`` (an interval: on
        ``now() - query_start`` for active sessions, ``now() - state_change`` otherwise),
        ``users``, ``applications`` (SQL ``LIKE`` patterns, e.g. ``"victorysync/%"``),
        ``pids``, ``databases`` (``"current"``, a list, or None for all). At least one of
        states / idle_in_transaction / users / applications / pids is required.
        ``mode``: ``cancel_then_terminate`` (default), ``cancel`` or ``terminate``.
        """
        filters = self._filters(session, states, idle_in_transaction, min_duration, users, applications, pids, databases, query_chars)
        grace = self._check_mode(mode, grace_period)
        allow = {"allow_superusers": allow_superusers, "allow_replication": allow_replication, "allow_background": allow_background}
        own = session.backend_pid
        targets, objects, blockers = self._sessions(session, filters, mode, own, **allow)
        warnings = []
        if mode == "cancel" and any(t["state"] in IDLE_IN_TRANSACTION for t in targets):
            warnings.append("cancel has no effect on idle-in-transaction sessions (no query is running): use mode='cancel_then_terminate'")
        pids_out = sorted(t["pid"] for t in targets)
        return self.new_plan(
            session,
            summary=self._summary(filters, len(targets), len(objects), mode, grace),
            confirm=pids_out,
            statements=self._statements(pids_out, mode, grace),
            objects=objects,
            rows=len(targets),
            estimated_seconds=(grace + 5) if targets and mode == "cancel_then_terminate" else (5 if targets else 0),
            undo="-- none: a cancelled statement or terminated session cannot be resumed; its open transaction was rolled "
            "back and the client must retry or reconnect",
            warnings=warnings,
            blockers=blockers,
            notes=[f"never signalled: this runbook's own backend (pid {own})"],
            parameters={
                "states": filters["states"] or [],
                "min_duration": filters["min_duration"],
                "users": filters["users"],
                "applications": filters["apps"],
                "pids": filters["pids"],
                "databases": filters["databases"],
                "mode": mode,
                "grace_period": grace,
                **allow,
                "query_chars": filters["chars"],
            },
            state={"targets": targets, "filters": filters, "own": own},
        )

    @staticmethod
    def _filters(session, states, idle_in_transaction, min_duration, users, applications, pids, databases, query_chars) -> dict[str, Any]:
        """The validated filters, as bound parameters of :data:`SESSIONS_SQL`."""
        state_list = _as_list(states) or []
        bad = [s for s in state_list if s not in STATES]
        if bad:
            raise UsageError(f"unknown session state(s) {bad}", hint=f"use {', '.join(STATES)}")
        if idle_in_transaction:
            state_list += [s for s in IDLE_IN_TRANSACTION if s not in state_list]
        user_list = _as_list(users)
        app_list = _as_list(applications)
        pid_list = None
        if pids is not None:
            try:
                pid_list = sorted({int(p) for p in ([pids] if isinstance(pids, (int, str)) else pids)})
            except (TypeError, ValueError):
                raise UsageError(f"pids must be integers, not {pids!r}") from None
            out_of_range = [p for p in pid_list if not 1 <= p <= 2**31 - 1]
            if out_of_range:
                raise UsageError(f"pids out of range (a backend pid is between 1 and 2147483647): {out_of_range}")
        if not (state_list or user_list or app_list or pid_list):
            raise UsageError(
                "refusing to select every session: give at least one of states, idle_in_transaction, users, applications, pids"
            )
        try:
            session.scalar("select %s::interval", (str(min_duration),))
        except psycopg.errors.DataError:  # invalid_datetime_format and the like: SQLSTATE class 22
            raise UsageError(f"min_duration {min_duration!r} is not an interval", hint="e.g. '5 minutes', '30 seconds', '0'") from None
        database_list = [session.scalar("select current_database()")] if databases == "current" else _as_list(databases)
        _require_existing(session, "role", _MISSING_ROLES, user_list)
        _require_existing(session, "database", _MISSING_DATABASES, database_list)
        return {
            "states": state_list or None,
            "users": user_list,
            "apps": app_list,
            "pids": pid_list,
            "databases": database_list,
            "min_duration": str(min_duration),
            "chars": int(query_chars),
        }

    @staticmethod
    def _check_mode(mode: str, grace_period: Any) -> float:
        """Validate ``mode``; the grace period in seconds (0 to 600)."""
        if mode not in MODES:
            raise UsageError(f"mode must be one of {MODES}, not {mode!r}")
        try:
            grace = float(grace_period)
        except (TypeError, ValueError):
            raise UsageError(f"grace_period must be a number of seconds, not {grace_period!r}") from None
        if not 0 <= grace <= 600:
            raise UsageError("grace_period must be between 0 and 600 seconds")
        return grace

    @staticmethod
    def _sessions(session, filters: dict[str, Any], mode: str, own: int, **allow: bool) -> tuple[list, list, list]:
        """The matching sessions: targets (what apply re-checks), one object row each (targets and excluded), blockers."""
        targets, objects, blockers = [], [], []
        for r in session.fetch(SESSIONS_SQL, filters):
            reason = _exclusion(r, own=own, **allow)
            if reason is None and not (r["may_signal"] or r["we_are_superuser"]):
                reason = "not allowed to signal it (needs pg_signal_backend or membership in its role)"
            if reason is None and r["superuser"] and not r["we_are_superuser"]:
                blockers.append(f"pid {r['pid']} belongs to a superuser: only a superuser may signal it")
            if reason is None:
                targets.append({k: r[k] for k in TARGET_KEYS})
            objects.append(
                {
                    "pid": r["pid"],
                    "user": r["user"],
                    "application": r["application"],
                    "database": r["database"],
                    "client": r["client"],
                    "state": r["state"],
                    "duration_s": round(r["duration_s"], 1) if r["duration_s"] is not None else None,
                    "wait": f"{r['wait_event_type']}:{r['wait_event']}" if r["wait_event_type"] else "",
                    "action": HOW[mode] if reason is None else f"excluded: {reason}",
                    "query": redact_sql(r["query"]),
                }
            )
        return targets, objects, blockers

    @staticmethod
    def _summary(filters: dict[str, Any], n_targets: int, n_matching: int, mode: str, grace: float) -> str:
        described = []
        if filters["states"]:
            described.append("state " + " / ".join(filters["states"]))
        described.append(f"for at least {filters['min_duration']}")
        if filters["users"]:
            described.append("user " + ", ".join(filters["users"]))
        if filters["apps"]:
            described.append("application like " + ", ".join(filters["apps"]))
        if filters["pids"]:
            described.append("pid in " + ", ".join(map(str, filters["pids"])))
        described.append("in database " + ", ".join(filters["databases"]) if filters["databases"] else "in any database")
        if not n_matching:
            return f"No session matches ({'; '.join(described)})."
        how = MODE_SUMMARY[mode].format(grace=f"{grace:g}")
        return (
            f"{n_targets} session(s) match ({'; '.join(described)}): {how}. "
            f"{n_matching - n_targets} matching session(s) excluded."
        )

    @staticmethod
    def _statements(pids: list[int], mode: str, grace: float) -> list[str]:
        if not pids:
            return []
        cancel = f"select pg_cancel_backend(pid) -- for pid in {pids}, matched on (pid, backend_start)"
        terminate = f"select pg_terminate_backend(pid) -- for pid in {pids}" + (
            f" still stuck after {grace:g}s" if mode == "cancel_then_terminate" else ""
        )
        return {"cancel": [cancel], "terminate": [terminate], "cancel_then_terminate": [cancel, terminate]}[mode]

    # -- apply ----------------------------------------------------------------------------------

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        session, params = plan.session, plan.parameters
        own = session.backend_pid
        with ctx.step("re-check targets"):
            outcome, live = self._still_matching(session, plan, own)
        terminate: list[dict[str, Any]] = live if params["mode"] == "terminate" else []
        if params["mode"] != "terminate" and live:
            terminate = self._cancel(session, ctx, live, params, outcome)
        if terminate:
            with ctx.step("terminate"):
                sent = _signal(session, "pg_terminate_backend", terminate)
                ctx.progress["committed"] = (ctx.progress.get("committed", "") + f"; terminate sent to pids {sorted(sent)}").lstrip("; ")
                now = _wait(session, terminate, 10.0, gone=True)
            for t in terminate:
                outcome[t["pid"]] = TERMINATED if t["pid"] not in now else STILL_PRESENT
        with ctx.step("verify"):
            still_own = session.scalar("select pg_backend_pid()") == own
        resolved = Verified(
            "targets resolved",
            not any(v in (STILL_RUNNING, STILL_PRESENT) for v in outcome.values()),
            ", ".join(f"{pid}: {v}" for pid, v in sorted(outcome.items())) or "no target",
        )
        if not resolved.ok:
            raise VerificationError(
                "some targets are still there: " + resolved.detail,
                hint="re-plan; use mode='terminate' for sessions a cancel does not stop",
            )
        by_pid = {o["pid"]: o for o in plan.objects}
        objects = [
            {"pid": pid, "user": by_pid.get(pid, {}).get("user"), "application": by_pid.get(pid, {}).get("application"),
             "state": by_pid.get(pid, {}).get("state"), "outcome": what, "query": by_pid.get(pid, {}).get("query")}
            for pid, what in sorted(outcome.items())
        ]
        n_term = sum(1 for v in outcome.values() if v == TERMINATED)
        n_cancel = sum(1 for v in outcome.values() if v.startswith("cancelled"))
        return self.result(
            ctx,
            outcome="applied" if (n_term or n_cancel) else "nothing_to_do",
            summary=f"{n_cancel} session(s) stopped by cancel, {n_term} terminated, "
            f"{len(outcome) - n_cancel - n_term} already gone or no longer matching.",
            verified=[resolved, Verified("own session intact", still_own, f"pid {own} still connected")],
            objects=objects,
        )

    @staticmethod
    def _still_matching(session, plan: Plan, own: int) -> tuple[dict[int, str], list[dict[str, Any]]]:
        """Targets still there, still the same backend, still matching the plan's filters; outcomes of the others."""
        planned = [t for t in plan.state["targets"] if t["pid"] != own]
        matching = {r["pid"] for r in session.fetch(SESSIONS_SQL, plan.state["filters"])}
        now = _current(session, planned)
        outcome: dict[int, str] = {}
        live = []
        for t in planned:
            if t["pid"] not in now:
                outcome[t["pid"]] = GONE
            elif t["pid"] not in matching or not _stuck(t, now[t["pid"]]):
                outcome[t["pid"]] = CHANGED
            else:
                live.append(t)
        return outcome, live

    @staticmethod
    def _cancel(session, ctx: Context, live: list[dict[str, Any]], params: dict[str, Any], outcome: dict[int, str]) -> list[dict[str, Any]]:
        """Cancel ``live``, wait the grace period; the targets still stuck (to terminate, in cancel_then_terminate)."""
        with ctx.step("cancel"):
            sent = _signal(session, "pg_cancel_backend", live)
            ctx.progress["committed"] = f"cancel sent to pids {sorted(p for p, ok in sent.items() if ok)}"
        with ctx.step("grace period"):
            now = _wait(session, live, params["grace_period"], gone=False)
        stuck = []
        for t in live:
            if t["pid"] not in now:
                outcome[t["pid"]] = "cancelled (session ended)"
            elif not _stuck(t, now[t["pid"]]):
                outcome[t["pid"]] = f"cancelled (now {now[t['pid']]['state']})"
            elif params["mode"] == "cancel_then_terminate":
                stuck.append(t)
            else:
                outcome[t["pid"]] = STILL_RUNNING
        return stuck


def _current(session, targets: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    if not targets:
        return {}
    rows = session.fetch(_NOW_SQL, {"pids": [t["pid"] for t in targets], "starts": [t["backend_start"] for t in targets]})
    return {r["pid"]: r for r in rows}


def _stuck(planned: dict[str, Any], now: dict[str, Any] | None) -> bool:
    """Is the planned target still doing the same thing (same state, same query / transaction)?"""
    if now is None:
        return False
    if now["state"] != planned["state"]:
        return False
    if planned["state"] == "active":
        return now["query_start"] == planned["query_start"]
    if planned["state"] in IDLE_IN_TRANSACTION:
        return now["xact_start"] == planned["xact_start"]
    return now["state_change"] == planned["state_change"]


def _signal(session, fn: str, targets: list[dict[str, Any]]) -> dict[int, bool]:
    if not targets:
        return {}
    q = sql.SQL(_SIGNAL_SQL).format(fn=sql.Identifier(fn))
    rows = session.fetch(q, {"pids": [t["pid"] for t in targets], "starts": [t["backend_start"] for t in targets]})
    return {r["pid"]: bool(r["signalled"]) for r in rows}


def _wait(session, targets: list[dict[str, Any]], seconds: float, *, gone: bool) -> dict[int, dict[str, Any]]:
    """Poll until every target is gone (``gone``) or no longer stuck, or ``seconds`` elapse; returns the last view."""
    deadline = time.monotonic() + seconds
    while True:
        now = _current(session, targets)
        pending = [t for t in targets if (t["pid"] in now if gone else _stuck(t, now.get(t["pid"])))]
        if not pending or time.monotonic() >= deadline:
            return now
        time.sleep(0.1)


TERMINATE_SESSIONS = TerminateSessions()
plan_terminate = TERMINATE_SESSIONS.plan
