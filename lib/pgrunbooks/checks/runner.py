"""Run registry checks on a session: requirements, one read-only transaction per check, findings.

Rules every run follows:

* a check whose server version, extension or privilege requirement is not met yields one
  ``skipped`` finding that says why and how to enable it; so does a privilege error the
  requirements did not predict (SQLSTATE 42501) or an extension that is installed but not
  loaded (55000);
* any other database error yields one ``error`` finding (SQLSTATE and message) and the run
  goes on with the next check; a bug in an evaluator yields an ``error`` finding too;
* each check runs in its own transaction (:meth:`Session.transaction`) that is read-only,
  has the check's ``statement_timeout``, a short ``lock_timeout``, and
  ``search_path = pg_catalog`` (so expressions, ``regclass`` and ``regprocedure`` print
  schema-qualified and quoted: no user schema is on the path);
* a check that finds nothing returns exactly one ``ok`` finding saying what it checked, so
  reports show what was looked at.

Exposed schemas: the schemas the Data API (PostgREST) serves, :attr:`Context.exposed_schemas`.
By default they are read from the database, as PostgREST reads them: ``pgrst.db_schemas`` set on
the ``authenticator`` role (``alter role authenticator set pgrst.db_schemas = 'public, api'``, as
Supabase configures it; a setting for this database wins over one for every database), else on the
database or the session (``current_setting('pgrst.db_schemas', true)``), else ``["public"]``. A
caller overrides them with ``run_checks(..., exposed_schemas=["public", "api"])`` (the CLI's
``--exposed-schemas``, a runbook's ``exposed_schemas`` parameter). Every check query receives them
as the bound parameter ``%(exposed_schemas)s`` (cast it: ``%(exposed_schemas)s::text[]``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import psycopg
from psycopg import sql

from pgrunbooks.checks import thresholds as _thresholds
from pgrunbooks.checks.registry import REGISTRY, Check, select
from pgrunbooks.errors import UsageError
from pgrunbooks.findings import Finding, Severity, suppress as _suppress
from pgrunbooks.names import quote_ident
from pgrunbooks.redact import redact

#: lock_timeout of every check transaction: a check never queues behind DDL for long.
CHECK_LOCK_TIMEOUT = "2s"
#: application_name patterns of our own sessions (never flagged by activity checks).
OWN_APPLICATIONS = ["pgrunbooks/%"]
#: marker appended to every check query, so statement checks can leave our own queries out
#: (pg_stat_statements keeps trailing comments, not leading ones).
QUERY_MARKER = "/* pgrunbooks:check */"
#: exposed schemas when the database does not set pgrst.db_schemas (PostgREST's own default)
DEFAULT_EXPOSED_SCHEMAS = ["public"]

Progress = Callable[["CheckResult", int, int], None]
Tracer = Callable[[str, psycopg.Cursor, Any, Any], None]


@dataclass
class Context:
    """What a run knows about the server and the connected role (read once per run)."""

    session: Any
    server_version: int
    current_user: str
    database: str
    backend_pid: int
    is_superuser: bool
    #: extension name -> (schema, version, usage privilege on the schema)
    extensions: dict[str, tuple[str, str, bool]]
    #: roles whose privileges the current role has (pg_has_role … 'usage'; all of them for superusers)
    roles: frozenset[str]
    #: the schemas the Data API serves (see the module docstring), in pgrst.db_schemas order
    exposed_schemas: list[str] = field(default_factory=lambda: list(DEFAULT_EXPOSED_SCHEMAS))
    #: per-run memo for checks that share a lookup (pg_stat_statements' columns…)
    cache: dict[str, Any] = field(default_factory=dict)
    #: called before every check query with (check id, cursor, query, params): bench/checks.py
    #: EXPLAINs each query in place (same transaction, role and settings) through it
    tracer: Tracer | None = None

    @classmethod
    def load(cls, session) -> "Context":
        query = """
            select current_user::text as current_user,
                   current_database()::text as database,
                   pg_catalog.pg_backend_pid() as backend_pid,
                   current_setting('server_version_num')::int as server_version,
                   coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user), false)
                     as is_superuser,
                   coalesce((select pg_catalog.jsonb_object_agg(e.extname, pg_catalog.jsonb_build_array(n.nspname, e.extversion,
                                                 pg_catalog.has_schema_privilege(n.oid, 'usage')))
                             from pg_catalog.pg_extension e
                             join pg_catalog.pg_namespace n on n.oid = e.extnamespace), '{}') as extensions,
                   array(select r.rolname::text from pg_catalog.pg_roles r
                         where pg_catalog.pg_has_role(current_user, r.oid, 'usage')
                         order by r.rolname) as roles,
                   coalesce(
                     -- what PostgREST's own session (role authenticator) sees: its role setting for
                     -- this database, then for every database, then the database's own setting
                     (select pg_catalog.substr(cfg, pg_catalog.length('pgrst.db_schemas=') + 1)
                      from pg_catalog.pg_db_role_setting s
                      join pg_catalog.pg_roles r on r.oid = s.setrole and r.rolname = 'authenticator'
                      cross join lateral pg_catalog.unnest(s.setconfig) cfg
                      where s.setdatabase in (0, (select d.oid from pg_catalog.pg_database d
                                                  where d.datname = current_database()))
                        and pg_catalog.starts_with(cfg, 'pgrst.db_schemas=')
                      order by s.setdatabase desc limit 1),
                     nullif(pg_catalog.current_setting('pgrst.db_schemas', true), '')) as db_schemas
        """ + QUERY_MARKER
        row = session.fetch(query)[0]
        return cls(
            session=session,
            server_version=row["server_version"],
            current_user=row["current_user"],
            database=row["database"],
            backend_pid=row["backend_pid"],
            is_superuser=row["is_superuser"],
            extensions={k: (v[0], v[1], bool(v[2])) for k, v in row["extensions"].items()},
            roles=frozenset(row["roles"]),
            exposed_schemas=parse_schemas(row["db_schemas"]) or list(DEFAULT_EXPOSED_SCHEMAS),
        )

    def has_role(self, role: str) -> bool:
        return self.is_superuser or role in self.roles

    def extension_schema(self, name: str) -> str | None:
        found = self.extensions.get(name)
        return found[0] if found else None


def parse_schemas(value: str | Iterable[str] | None) -> list[str]:
    """Schema names from a ``pgrst.db_schemas``-style list (``"public, api"``) or a sequence of names:
    surrounding blanks dropped, duplicates and empty items left out, order kept."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"exposed schemas must be schema names, got {item!r}",
                             hint="for example exposed_schemas=['public', 'api'] or --exposed-schemas public,api")
        name = item.strip()
        if name and name not in out:
            out.append(name)
    return out


@dataclass
class CheckResult:
    """One check's outcome: its findings and the measurement rows they were made from."""

    check: Check
    findings: list[Finding]
    rows: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def status(self) -> Severity:
        """The worst severity among the findings (``ok`` when none)."""
        from pgrunbooks.findings import worst

        return worst(self.findings)

    def frame(self):
        """The measurement rows as a pandas DataFrame (columns in query order)."""
        import pandas as pd

        return pd.DataFrame(self.rows)


class Results(list):
    """The :class:`CheckResult` of every check run, in registry order."""

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self for f in r.findings]

    def get(self, check_id: str) -> CheckResult | None:
        return next((r for r in self if r.check.id == check_id), None)

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            found = self.get(key)
            if found is None:
                raise KeyError(key)
            return found
        return super().__getitem__(key)

    def frame(self, check_id: str):
        """Measurement rows of ``check_id`` as a DataFrame (empty when it did not run)."""
        import pandas as pd

        found = self.get(check_id)
        return found.frame() if found else pd.DataFrame()

    @property
    def elapsed_s(self) -> float:
        return sum(r.elapsed_s for r in self)


def run_checks(
    session,
    *,
    ids: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    suppress: Iterable[str] | None = None,
    progress: Progress | None = None,
    exposed_schemas: str | Iterable[str] | None = None,
) -> list[Finding]:
    """Run the selected checks (all by default) and return their findings.

    ``thresholds`` overrides defaults per check (``{"dead_tuples": {"warning": 0.1}}``);
    ``suppress`` drops findings by key (``check_id:object``) or by check id;
    ``exposed_schemas`` replaces the schemas read from ``pgrst.db_schemas`` (module docstring).
    Bad ids, categories, thresholds or schema lists raise :class:`~pgrunbooks.errors.UsageError`
    before any query.
    """
    return run_results(
        session, ids=ids, categories=categories, thresholds=thresholds, suppress=suppress, progress=progress,
        exposed_schemas=exposed_schemas,
    ).findings


def run_results(
    session,
    *,
    ids: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    suppress: Iterable[str] | None = None,
    progress: Progress | None = None,
    tracer: Tracer | None = None,
    exposed_schemas: str | Iterable[str] | None = None,
) -> Results:
    """Like :func:`run_checks`, but returns each check's findings *and* measurement rows
    (:class:`Results`; ``results.frame("table_sizes")`` is a DataFrame for charts).

    ``tracer(check_id, cursor, query, params)`` is called before each check query (bench, debugging)."""
    checks = select(ids, categories)
    overrides = _thresholds.validate(thresholds, REGISTRY)
    keys = list(suppress or ())
    exposed = None
    if exposed_schemas is not None:
        exposed = parse_schemas(exposed_schemas)
        if not exposed:
            raise UsageError("exposed schemas: the list is empty",
                             hint="name at least one schema (public), or leave it out to read pgrst.db_schemas")
    ctx = Context.load(session)
    ctx.tracer = tracer
    if exposed is not None:
        ctx.exposed_schemas = exposed
    results = Results()
    for index, check in enumerate(checks, 1):
        result = run_one(check, ctx, overrides)
        if keys:
            kept = _suppress(result.findings, keys)
            if not kept:  # keep a trace that the check ran: reports show what was looked at
                kept = [ok(check, f"{len(result.findings)} finding(s) suppressed by params",
                           data={"suppressed": [f.key for f in result.findings]})]
            result.findings = kept
        results.append(result)
        if progress is not None:
            progress(result, index, len(checks))
    return results


def run_one(check: Check, ctx: Context, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> CheckResult:
    """Run one check: requirements, measurements, evaluation; never raises for database trouble."""
    params = _thresholds.resolve(check, overrides)
    if "schemas" in params and "schemas" not in ((overrides or {}).get(check.id) or {}):
        # The API-facing checks look where the Data API looks (pgrst.db_schemas) unless told otherwise.
        params["schemas"] = list(ctx.exposed_schemas)
    started = time.monotonic()
    reason = unmet_requirement(check, ctx)
    if reason is not None:
        return CheckResult(check, [skipped(check, *reason)], [], time.monotonic() - started, params)
    rows: list[dict[str, Any]] = []
    try:
        if check.collect is not None:
            rows = check.collect(check, ctx, params)
        else:
            rows = fetch(ctx, check, check.sql(ctx.server_version), params)
        findings = check.evaluate(check, rows, params, ctx)
        if not findings:
            findings = [ok(check, "nothing found")]
    except SkipCheck as exc:
        findings = [skipped(check, exc.reason, exc.fix)]
    except psycopg.errors.InsufficientPrivilege as exc:
        findings = [skipped(check, f"permission denied: {_message(exc)}", _privilege_fix(check, ctx))]
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        findings = [skipped(check, _message(exc), "load the extension: add it to shared_preload_libraries and restart")]
    except psycopg.errors.QueryCanceled as exc:
        findings = [
            error(check, f"cancelled by statement_timeout ({check.statement_timeout}): {_message(exc)}",
                  "run it on its own with a longer timeout, or look for what makes the catalog slow")
        ]
    except psycopg.errors.LockNotAvailable as exc:
        findings = [
            error(check, f"a lock it needs is held by another session: {_message(exc)}",
                  "see the blocking_locks check; run it again when the lock is released")
        ]
    except psycopg.Error as exc:
        findings = [error(check, _message(exc), "report it with the server version and this message")]
    except UsageError:  # the caller's input (a threshold naming nothing): exit 3, not a finding
        raise
    except Exception as exc:  # an evaluator bug must not end the run
        findings = [error(check, f"{type(exc).__name__}: {exc}", "report it: this is a bug in pgrunbooks")]
    return CheckResult(check, findings, rows, time.monotonic() - started, params)


class SkipCheck(Exception):
    """Raised by a collector when a precondition only visible at run time is missing."""

    def __init__(self, reason: str, fix: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


def unmet_requirement(check: Check, ctx: Context) -> tuple[str, str] | None:
    """``(reason, fix)`` when the check cannot run here, else ``None``."""
    if ctx.server_version < check.min_version:
        return (
            f"needs PostgreSQL {check.min_version // 10000} or later (server is {ctx.server_version // 10000})",
            "upgrade the server, or leave this check out",
        )
    for ext in check.extensions:
        if ext not in ctx.extensions:
            fix = f"create extension {ext} with schema extensions;"
            if ext == "pg_stat_statements":
                fix += " (it must also be listed in shared_preload_libraries; Supabase preloads it)"
            return (f"extension {ext} is not installed in database {ctx.database}", fix)
        schema, _, usable = ctx.extensions[ext]
        if not usable:
            return (
                f"role {ctx.current_user} may not use schema {schema}, where extension {ext} lives",
                f"grant usage on schema {quote_ident(schema)} to {quote_ident(ctx.current_user)};",
            )
    if check.roles and not any(ctx.has_role(r) for r in check.roles):
        return (
            f"role {ctx.current_user} lacks the privileges of {' or '.join(check.roles)}",
            _privilege_fix(check, ctx),
        )
    return None


def _privilege_fix(check: Check, ctx: Context) -> str:
    role = quote_ident(ctx.current_user)
    if check.roles:
        return f"grant pg_monitor to {role};  -- pg_monitor includes {', '.join(check.roles)}"
    return f"grant pg_monitor to {role}; and select on the tables it reads"


def fetch(ctx: Context, check: Check, text: str, params: Mapping[str, Any], *, identifiers=None) -> list[dict]:
    """Run one query of ``check`` in its own read-only transaction and return its rows
    (``params`` plus ``exposed_schemas``, bound)."""
    with transaction(ctx, check) as cur:
        execute(ctx, check, cur, compose(ctx, check, text, identifiers),
                {"exposed_schemas": list(ctx.exposed_schemas), **params})
        return cur.fetchall() if cur.description else []


def execute(ctx: Context, check: Check, cur: psycopg.Cursor, query: Any, params: Any = None) -> psycopg.Cursor:
    """Execute one measurement query of ``check`` (through the run's tracer, when there is one)."""
    if ctx.tracer is not None:
        ctx.tracer(check.id, cur, query, params)
    return cur.execute(query, params)


def compose(ctx: Context, check: Check, text: str, identifiers=None) -> sql.Composable:
    """The query as a composable: marker + text, with ``{name}`` placeholders filled when the
    check declares identifiers (``sql.Identifier`` values only; values stay bound parameters)."""
    names = dict(check.identifiers(ctx)) if check.identifiers else {}
    names.update(identifiers or {})
    body = sql.SQL(text).format(**names) if names else sql.SQL(text)
    return body + sql.SQL("\n" + QUERY_MARKER)


@contextlib.contextmanager
def transaction(ctx: Context, check: Check, *, search_path: str | None = "pg_catalog") -> Iterator[psycopg.Cursor]:
    """The check's transaction: read-only (even on a read-write session, since a mutating
    runbook may run checks too), ``statement_timeout`` of the check, a short
    ``lock_timeout``, and ``search_path`` (``pg_catalog`` by default: expressions print
    schema-qualified and no user object can shadow a catalog function)."""
    with ctx.session.transaction(statement_timeout=check.statement_timeout, lock_timeout=CHECK_LOCK_TIMEOUT) as cur:
        cur.execute("select set_config('transaction_read_only', 'on', true)")
        if search_path is not None:
            cur.execute("select set_config('search_path', %s, true)", (search_path,))
        yield cur


def _message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag and diag.message_primary else str(exc)).strip()
    state = getattr(exc, "sqlstate", None)
    return redact(f"{text} (SQLSTATE {state})" if state else text)


# ----------------------------------------------------------------------------- findings
def ok(check: Check, detail: str, *, title: str | None = None, value: Any = None, data=None) -> Finding:
    """The single finding of a check that found nothing to report."""
    return Finding(
        check.id, Severity.OK, title or f"{check.title}: {detail}", "", value, None, detail, "", dict(data or {})
    )


def skipped(check: Check, reason: str, fix: str = "") -> Finding:
    return Finding(
        check.id, Severity.SKIPPED, f"{check.title}: skipped", "", None, None, reason,
        fix or "", {"requirements": check.requirements},
    )


def error(check: Check, message: str, hint: str = "") -> Finding:
    return Finding(check.id, Severity.ERROR, f"{check.title}: check failed", "", None, None, message, hint)


def finding(
    check: Check,
    severity: Severity | str,
    title: str,
    *,
    object: str = "",
    value: Any = None,
    threshold: Any = None,
    detail: str = "",
    remediation: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Finding:
    """A finding of ``check`` (remediation defaults to the registry's text)."""
    return Finding(
        check.id,
        severity,
        title,
        object,
        _jsonable(value),
        _jsonable(threshold),
        detail,
        check.remediation if remediation is None else remediation,
        {k: _jsonable(v) for k, v in (data or {}).items()},
    )


def _jsonable(value: Any) -> Any:
    import datetime
    import decimal
    import uuid

    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def grade(value: float | None, warning: float | None, critical: float | None, *, higher_is_worse: bool = True) -> Severity:
    """``critical`` / ``warning`` / ``ok`` for ``value`` against thresholds (``None`` switches one off)."""
    if value is None:
        return Severity.OK

    def beyond(limit):
        return limit is not None and (value >= limit if higher_is_worse else value <= limit)

    if beyond(critical):
        return Severity.CRITICAL
    if beyond(warning):
        return Severity.WARNING
    return Severity.OK


def rows_of(results: Sequence[CheckResult], check_id: str) -> list[dict[str, Any]]:
    found = next((r for r in results if r.check.id == check_id), None)
    return found.rows if found else []
