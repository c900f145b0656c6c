"""Connections exhausted: who holds the slots, for how long, and what pgbouncer sees.

:func:`rank` turns a capture's ``connections`` (client backends by role, application and state,
against ``max_connections`` minus the reserved slots; see :mod:`pgrunbooks.evidence.capture`)
and, optionally, pgbouncer's own view (:func:`pooler_view`: ``SHOW POOLS`` / ``SHOW CLIENTS`` /
``SHOW CONFIG`` through its admin console) into causes, the most likely first:

* ``connection_flood`` — the usable slots nearly gone, named by the role and application that
  hold most of them (an app pool that grew without a pooler in front);
* ``pooler_clients_waiting`` — clients queued in pgbouncer for a server connection (the pool is
  too small for the work, or its connections are held by long transactions), with the max wait;
* ``idle_in_transaction`` — sessions idle inside a transaction for longer than a threshold:
  they hold a slot (and locks, and a snapshot) while doing nothing;
* ``idle_sessions`` — sessions idle longer than a threshold (a pool that never shrinks);
* ``pool_size_rule`` — a pooler whose pool size breaks Supabase's rule: at most 40 % of
  ``max_connections`` when the Data API (PostgREST) is used heavily, 80 % otherwise, to leave
  room for Auth and the other services
  (https://supabase.com/docs/guides/database/connection-management).

Nothing here writes; the playbook's action cell ends idle sessions through
:mod:`pgrunbooks.actions.terminate`.
"""

from __future__ import annotations

from typing import Any, Iterable

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgrunbooks import pooler as pooler_lib
from pgrunbooks.evidence.model import Cause
from pgrunbooks.findings import Finding, Severity
from pgrunbooks.targets import resolve

PLAYBOOK = "connections_exhausted"
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
#: Supabase's pool-size rule, as shares of max_connections
POOL_SHARE_POSTGREST_HEAVY = 0.4
POOL_SHARE_OTHERWISE = 0.8


def pooler_conninfo(pooler: str | None) -> str | None:
    """The admin console's conninfo for the playbook's ``pooler`` target (``service:``, ``env:VAR``
    or a DSN without password; the database is always ``pgbouncer``), or None. Resolved without
    connecting: a bad target is a :class:`~pgrunbooks.errors.TargetError` (exit 3)."""
    if not pooler:
        return None
    return make_conninfo(resolve(pooler).conninfo, dbname="pgbouncer")


def pooler_view(conninfo: str | None) -> dict[str, Any] | None:
    """pgbouncer's own view through its admin console (``conninfo`` from :func:`pooler_conninfo`),
    or None without a pooler."""
    if not conninfo:
        return None
    view = pooler_lib.admin(conninfo)
    config = {r["key"]: r["value"] for r in pooler_lib.show(conninfo, "config")}
    view["config"] = {k: config.get(k) for k in ("pool_mode", "default_pool_size", "max_client_conn",
                                                 "reserve_pool_size", "max_db_connections")}
    view["where"] = {k: conninfo_to_dict(conninfo).get(k) for k in ("host", "port")}
    return view


def usage(connections: dict[str, Any]) -> list[dict[str, Any]]:
    """The capture's connections per role, application and state (most sessions first)."""
    return sorted(connections.get("by", []), key=lambda r: (-r["sessions"], r["role"] or "", r["application"], r["state"]))


def rank(evidence, *, pooler: dict[str, Any] | None = None, idle_in_transaction_s: float = 60.0,
         idle_s: float = 600.0, warn_used_ratio: float = 0.8, critical_headroom: int = 5,
         idle_sessions_warn: int = 20, postgrest_heavy: bool = True) -> list[Cause]:
    """The causes of a connection shortage in ``evidence`` (and ``pooler``, from :func:`pooler_view`),
    most likely first. Empty when nothing is wrong."""
    c = evidence.connections
    rows = usage(c)
    causes = [*_flood(c, rows, warn_used_ratio, critical_headroom), *_waiting(pooler),
              *_idle_in_transaction(rows, idle_in_transaction_s), *_idle(rows, idle_s, idle_sessions_warn),
              *_pool_rule(c, pooler, postgrest_heavy)]
    return sorted(causes, key=lambda cause: -cause.score)


def findings(causes: Iterable[Cause], evidence, *, pooler: dict[str, Any] | None = None) -> list[Finding]:
    """The causes as findings (``connections_exhausted.<kind>``), or one ``ok`` finding saying what was looked at."""
    out = [cause.finding(PLAYBOOK) for cause in causes]
    if out:
        return out
    c = evidence.connections
    seen = f"; pgbouncer: {_waiting_count(pooler)} clients waiting" if pooler else ""
    return [Finding(f"{PLAYBOOK}.headroom", Severity.OK,
                    f"connections: {c.get('used')} of {c.get('usable')} usable slots in use, headroom {c.get('headroom')}",
                    "", c.get("headroom"), None,
                    f"max_connections {c.get('max_connections')} minus {c.get('superuser_reserved')} superuser-reserved "
                    f"and {c.get('reserved')} reserved slots; no session idle in a transaction or idle too long{seen}.",
                    "")]


# ----------------------------------------------------------------------------- the causes


def _group(r: dict[str, Any]) -> str:
    return f"{r['role'] or '?'}:{r['application'] or '(no application_name)'}"


def _flood(c, rows, warn_used_ratio, critical_headroom) -> list[Cause]:
    usable, used, headroom = c.get("usable"), c.get("used") or 0, c.get("headroom")
    if not usable or used / usable < warn_used_ratio:
        return []
    by_group: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = by_group.setdefault(_group(r), {"role": r["role"], "application": r["application"], "sessions": 0,
                                            "idle": 0})
        g["sessions"] += r["sessions"]
        g["idle"] += r["sessions"] if r["state"] == "idle" else 0
    top = sorted(by_group.values(), key=lambda g: (-g["sessions"], g["role"] or "", g["application"]))
    first = top[0]
    critical = headroom is not None and headroom <= critical_headroom
    listing = "; ".join(f"{g['role']}/{g['application'] or '-'}: {g['sessions']} ({g['idle']} idle)" for g in top[:3])
    return [Cause(
        kind="connection_flood",
        title=f"{used} of {usable} usable connections in use (headroom {headroom}): "
              f"{first['application'] or 'no application_name'} as {first['role']} holds {first['sessions']}",
        object=f"application:{first['application']}",
        score=min(100.0, 60.0 + 40.0 * used / usable),
        detail=f"max_connections {c.get('max_connections')} minus {c.get('superuser_reserved')} superuser-reserved and "
               f"{c.get('reserved')} reserved slots leaves {usable}; {used} client backends are connected. By role and "
               f"application: {listing}. New connections fail with 'remaining connection slots are reserved' (53300) "
               "once the headroom is 0.",
        action="terminate_sessions",
        severity="critical" if critical else "warning",
        data={"application": first["application"], "role": first["role"], "sessions": first["sessions"],
              "idle": first["idle"], "used": used, "usable": usable, "headroom": headroom},
    )]


def _waiting_count(pooler) -> int:
    return sum(int(p.get("cl_waiting") or 0) for p in (pooler or {}).get("pools", []) if p.get("database") != "pgbouncer")


def _max_wait_s(p: dict[str, Any]) -> float:
    return float(p.get("maxwait") or 0) + float(p.get("maxwait_us") or 0) / 1e6


def _waiting(pooler) -> list[Cause]:
    if not pooler:
        return []
    pools = [p for p in pooler.get("pools", []) if p.get("database") != "pgbouncer" and int(p.get("cl_waiting") or 0)]
    if not pools:
        return []
    worst = max(pools, key=_max_wait_s)
    waiting = _waiting_count(pooler)
    max_wait = max(_max_wait_s(p) for p in pools)
    clients = [cl for cl in pooler.get("clients", []) if cl.get("state") == "waiting"]
    size = (pooler.get("config") or {}).get("default_pool_size")
    return [Cause(
        kind="pooler_clients_waiting",
        title=f"{waiting} client(s) waiting in pgbouncer for a server connection (max wait {max_wait:.1f}s)",
        object=f"pool:{worst['database']}/{worst['user']}",
        score=90.0 if max_wait >= 1 else 80.0,
        detail=f"pool {worst['database']}/{worst['user']} ({worst.get('pool_mode')}): {worst.get('cl_active')} active and "
               f"{worst.get('cl_waiting')} waiting clients, {worst.get('sv_active')} server connections busy, "
               f"{worst.get('sv_idle')} idle (default_pool_size {size}). Every server connection is taken: by long "
               "transactions (see idle in transaction below) or by more concurrent work than the pool holds. "
               f"{len(clients)} waiting client(s) listed by SHOW CLIENTS.",
        action="terminate_sessions",
        severity="critical" if max_wait >= 5 else "warning",
        data={"waiting": waiting, "max_wait_s": round(max_wait, 3), "database": worst["database"], "user": worst["user"],
              "sv_active": worst.get("sv_active"), "default_pool_size": size},
    )]


def _idle_in_transaction(rows, threshold_s) -> list[Cause]:
    held = [r for r in rows if r["state"] in IDLE_IN_TRANSACTION and (r.get("oldest_state_s") or 0) >= threshold_s]
    if not held:
        return []
    sessions = sum(r["sessions"] for r in held)
    oldest = max(held, key=lambda r: r.get("oldest_state_s") or 0)
    age = oldest.get("oldest_state_s") or 0
    return [Cause(
        kind="idle_in_transaction",
        title=f"{sessions} session(s) idle in a transaction, the oldest for {age:.0f}s "
              f"({oldest['application'] or 'no application_name'} as {oldest['role']})",
        object=f"application:{oldest['application']}",
        score=min(88.0, 60.0 + age / 60.0),
        detail="Each holds a connection slot (and a pooler's server connection), its locks and its snapshot while "
               "doing nothing: the application opened a transaction and did not commit. By role and application: "
               + "; ".join(f"{r['role']}/{r['application'] or '-'}: {r['sessions']}, oldest {r.get('oldest_state_s') or 0:.0f}s"
                           for r in held[:5]) + ".",
        action="terminate_sessions",
        severity="critical" if age >= 300 else "warning",
        data={"sessions": sessions, "oldest_s": round(age, 1), "application": oldest["application"], "role": oldest["role"]},
    )]


def _idle(rows, threshold_s, warn_count) -> list[Cause]:
    idle = [r for r in rows if r["state"] == "idle" and (r.get("oldest_state_s") or 0) >= threshold_s]
    sessions = sum(r["sessions"] for r in idle)
    if not idle:
        return []
    top = idle[0]
    return [Cause(
        kind="idle_sessions",
        title=f"{sessions} idle session(s) connected longer than {threshold_s:.0f}s idle "
              f"(most: {top['application'] or 'no application_name'} as {top['role']})",
        object=f"application:{top['application']}",
        score=40.0 + min(20.0, sessions / 5),
        detail="Idle connections hold slots a pooler could share: "
               + "; ".join(f"{r['role']}/{r['application'] or '-'}: {r['sessions']}" for r in idle[:5]) + ".",
        action="terminate_sessions",
        severity="warning" if sessions >= warn_count else "info",
        data={"sessions": sessions, "application": top["application"], "role": top["role"]},
    )]


def _pool_rule(c, pooler, postgrest_heavy) -> list[Cause]:
    if not pooler or not c.get("max_connections"):
        return []
    size = (pooler.get("config") or {}).get("default_pool_size")
    try:
        size = int(size)
    except (TypeError, ValueError):
        return []
    share = POOL_SHARE_POSTGREST_HEAVY if postgrest_heavy else POOL_SHARE_OTHERWISE
    limit = int(c["max_connections"] * share)
    if size <= limit:
        return []
    return [Cause(
        kind="pool_size_rule",
        title=f"pgbouncer's default_pool_size {size} is above {share:.0%} of max_connections ({limit})",
        object="pooler:default_pool_size",
        score=35.0,
        detail="Supabase's rule: with heavy use of the Data API (PostgREST) keep the pool at most 40 % of "
               "max_connections, otherwise 80 %, so Auth, Storage and the other services keep room "
               "(https://supabase.com/docs/guides/database/connection-management). Each pool (database, user) can "
               "open that many server connections.",
        severity="warning",
        data={"default_pool_size": size, "limit": limit, "share": share},
    )]


# ----------------------------------------------------------------------------- tables


def pools_frame(view: dict[str, Any]):
    """pgbouncer's pools (SHOW POOLS), its own admin pool left out."""
    import pandas as pd

    columns = ("database", "user", "pool_mode", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used",
               "maxwait", "maxwait_us")
    return pd.DataFrame([{c: p.get(c) for c in columns} for p in view.get("pools", []) if p.get("database") != "pgbouncer"],
                        columns=list(columns))


def waiting_frame(view: dict[str, Any]):
    """The clients waiting for a server connection (SHOW CLIENTS, state waiting), longest wait first."""
    import pandas as pd

    columns = ("database", "user", "application_name", "addr", "state", "wait", "wait_us", "connect_time")
    rows = [{c: cl.get(c) for c in columns} for cl in view.get("clients", []) if cl.get("state") == "waiting"]
    rows.sort(key=lambda r: -(float(r["wait"] or 0) + float(r["wait_us"] or 0) / 1e6))
    return pd.DataFrame(rows, columns=list(columns))


def pool_rule(connections: dict[str, Any], *, postgrest_heavy: bool = True) -> str:
    """Supabase's pool-size rule for this server, in words (the largest pool size it allows)."""
    limit = connections.get("max_connections")
    if not limit:
        return "Supabase's pool-size rule: unknown max_connections"
    share = POOL_SHARE_POSTGREST_HEAVY if postgrest_heavy else POOL_SHARE_OTHERWISE
    return (f"Supabase's pool-size rule: at most {int(limit * share)} server connections per pool here ({share:.0%} of "
            f"max_connections {limit}, {'heavy' if postgrest_heavy else 'light'} Data API use; "
            f"{int(limit * POOL_SHARE_POSTGREST_HEAVY)} / {int(limit * POOL_SHARE_OTHERWISE)} for heavy / light) — "
            "https://supabase.com/docs/guides/database/connection-management")
