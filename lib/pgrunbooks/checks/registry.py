"""The checks registry: one :class:`Check` entry per diagnostic, plus its SQL file.

An entry says what a check looks at (``category``), what it needs (server version,
extensions, predefined roles), its default ``thresholds`` (bound as ``%(name)s``
parameters of its SQL and read again by its evaluator), and the remediation a human
reviews. Its measurements come from ``sql/<id>.sql``; its evaluator turns the rows into
:class:`~pgrunbooks.findings.Finding` objects. An entry may name the action that fixes what it
finds (``fixed_by="vacuum_analyze"``: the verb, never a runbook; see docs/actions.md).

Remediation: a finding's ``remediation`` is either SQL that fixes it, pasteable into psql as
it stands (statements; every explanation a ``--`` comment; the undo, when there is one, an
``-- undo: …;`` comment), or prose when no statement can (a pool size, a disk, a query to
rewrite). ``tests/checks/test_remediation.py`` executes every SQL remediation on a database
with the fault and checks the finding is gone.

SQL variants: ``sql/<id>.pgNN.sql`` replaces ``sql/<id>.sql`` on servers whose major
version is NN or later (the highest applicable NN wins). Extra queries a check runs
(``<id>.<part>.sql``) follow the same rule, and so do **fragments**: ``{name}`` in a check's
SQL is replaced by the text of ``<id>.<name>.sql`` (or its variant for the server), so a query
that differs between versions in one column keeps one file and a one-line fragment per
version (``unused_indexes.last_idx_scan.pg16.sql``). A ``{name}`` without a fragment file is
left for the identifiers the runner composes in (``{pgss}``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pgrunbooks.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from pgrunbooks.checks.runner import Context
    from pgrunbooks.findings import Finding

#: Categories in report order, with a one-line description for docs and ``--help``.
CATEGORIES: dict[str, str] = {
    "activity": "sessions, connections and locks right now",
    "statements": "query statistics from pg_stat_statements",
    "space": "database, schema and table sizes, growth",
    "maintenance": "vacuum, analyze, wraparound, sequences",
    "indexes": "unused, duplicate, invalid and missing indexes, cache hits",
    "bloat": "estimated table and index bloat",
    "security": "row level security, policies, roles, grants, foreign keys",
    "exposure": "what the Data API serves from the exposed schemas (Supabase advisor lints)",
    "consistency": "orphaned rows",
    "replication": "replication slots, the WAL they retain, and WAL archiving",
    "tenant": "tenant isolation tested through the API roles",
}

Evaluator = Callable[["Check", list[dict[str, Any]], Mapping[str, Any], "Context"], "list[Finding]"]
Collector = Callable[["Check", "Context", Mapping[str, Any]], list[dict[str, Any]]]

_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Check:
    """One registry entry. See the module docstring."""

    id: str
    title: str
    category: str
    description: str
    remediation: str
    evaluate: Evaluator = field(repr=False, compare=False)
    #: default thresholds; callers override them per check (``{"dead_tuples": {"warning": 0.1}}``)
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    #: ``server_version_num`` below which the check is skipped
    min_version: int = 150000
    #: extensions that must be installed in the database (looked up in pg_extension, any schema)
    extensions: tuple[str, ...] = ()
    #: predefined roles whose privileges the connected role needs (any one of them suffices)
    roles: tuple[str, ...] = ()
    #: the action that fixes what the check finds (its verb: ``vacuum_analyze``, ``reindex``…)
    fixed_by: str | None = None
    #: why it matters (docs)
    why: str = ""
    #: custom measurement step instead of running ``sql/<id>.sql`` once
    collect: Collector | None = field(default=None, repr=False, compare=False)
    #: extra composable names for the SQL text (``{pgss}``…), computed per run
    identifiers: Callable[["Context"], Mapping[str, Any]] | None = field(default=None, repr=False, compare=False)
    #: statement timeout of the check's transaction
    statement_timeout: str = "10s"
    #: how the check reads data, for the docs ("catalog", "statistics", "index probes"…)
    reads: str = "catalogs and statistics views"

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"bad check id {self.id!r}")
        if self.category not in CATEGORIES:
            raise ValueError(f"{self.id}: unknown category {self.category!r}")
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))

    @property
    def requirements(self) -> list[str]:
        """Human-readable requirements (docs, ``--format json``)."""
        out = [f"PostgreSQL {self.min_version // 10000}+"]
        out += [f"extension {e}" for e in self.extensions]
        if self.roles:
            out.append("privileges of " + " or ".join(self.roles))
        return out

    @property
    def action_hint(self) -> str:
        """The closing comment of a SQL remediation: the action that does the same with a plan."""
        if self.fixed_by is None:
            return ""
        return (f"\n-- The {self.fixed_by} action does this with a dry run to review and an audit record "
                "(`pgrunbooks list` shows its runbook).")

    def sql(self, server_version: int, part: str | None = None) -> str:
        """The SQL text for ``server_version`` (``part`` names an extra query, ``<id>.<part>.sql``)."""
        return load_sql(self.id if part is None else f"{self.id}.{part}", server_version)


#: Every check by id, in report order (category order, then definition order).
REGISTRY: dict[str, Check] = {}


def register(check: Check) -> Check:
    """Add ``check`` to :data:`REGISTRY` (ids are unique) and keep category order."""
    if check.id in REGISTRY:
        raise ValueError(f"duplicate check id {check.id!r}")
    load_sql(check.id, 10**6)  # fail at import when the SQL file is missing
    REGISTRY[check.id] = check
    ordered = sorted(REGISTRY.values(), key=lambda c: list(CATEGORIES).index(c.category))
    REGISTRY.clear()
    REGISTRY.update((c.id, c) for c in ordered)
    return check


def select(ids=None, categories=None) -> list[Check]:
    """Checks by id and/or category (both filters apply); unknown names raise :class:`UsageError`."""
    ids = list(ids or [])
    categories = list(categories or [])
    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        raise UsageError(
            f"unknown check {', '.join(map(repr, unknown))}",
            hint="list them with `pgrunbooks check --list`; known ids: " + ", ".join(REGISTRY),
        )
    bad = [c for c in categories if c not in CATEGORIES]
    if bad:
        raise UsageError(
            f"unknown category {', '.join(map(repr, bad))}", hint="use one of: " + ", ".join(CATEGORIES)
        )
    return [
        c
        for c in REGISTRY.values()
        if (not ids or c.id in ids) and (not categories or c.category in categories)
    ]


@functools.cache
def _sql_files() -> dict[str, str]:
    folder = resources.files("pgrunbooks.checks").joinpath("sql")
    return {f.name: f.read_text(encoding="utf-8") for f in folder.iterdir() if f.name.endswith(".sql")}


_VARIANT = re.compile(r"^(?P<stem>.+)\.pg(?P<major>\d+)\.sql$")
_FRAGMENT = re.compile(r"\{(?P<name>[a-z][a-z0-9_]*)\}")


def load_sql(stem: str, server_version: int) -> str:
    """Text of ``sql/<stem>.sql``, or of its ``.pgNN`` variant for this server version, with its
    fragments filled in for the same version (see the module docstring)."""
    check_id = stem.split(".", 1)[0]

    def fragment(m: re.Match) -> str:
        part = f"{check_id}.{m['name']}"
        if not _versions(part):
            return m[0]  # not a fragment: an identifier the runner composes
        text = _variant(part, server_version)
        return "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()

    return _FRAGMENT.sub(fragment, _variant(stem, server_version))


def _versions(stem: str) -> dict[str, int]:
    """``stem``'s file names and the major version each applies from (0: every version)."""
    out = {}
    for name in _sql_files():
        m = _VARIANT.match(name)
        if name == f"{stem}.sql":
            out[name] = 0
        elif m and m["stem"] == stem:
            out[name] = int(m["major"])
    return out


def _variant(stem: str, server_version: int) -> str:
    applicable = {name: major for name, major in _versions(stem).items() if major <= server_version // 10000}
    if not applicable:
        raise LookupError(f"no SQL file for {stem!r} (PostgreSQL {server_version // 10000}) in pgrunbooks/checks/sql")
    return _sql_files()[max(applicable, key=applicable.get)]


def sql_files(check_id: str) -> tuple[list[str], list[str]]:
    """File names of a check's SQL (docs): its query with its version variants, then its other
    queries and fragments (``<id>.<part>.sql`` and their variants)."""
    versions = _versions(check_id)
    main = sorted(versions, key=versions.get)
    rest = sorted(n for n in _sql_files() if n.startswith(check_id + ".") and n not in main)
    return main, rest
