"""Names that need quoting, end to end: every check that can see a table, index, policy, sequence,
function, role or database whose name needs quoting finds it, names it the way PostgreSQL's
``quote_ident()`` does, lets its key suppress exactly that finding, and prints remediation SQL that
runs on it (and fixes it, where the remediation is the fix).

One private clone of the clean database (its own name needs quoting too) gets, for each check, a
schema whose name needs quoting, holding objects named like each of :data:`NAMES` and planted
with ``psycopg.sql.Identifier``. The expected names come from the server (``quote_ident``), not
from the code under test. The registry runs once on it before anything is changed; each
remediation test then changes only the objects of its own check.
"""

from __future__ import annotations

import re
import time
import uuid

import psycopg
import pytest
from clihelpers import sql_statements, undo_statements
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgrunbooks import checks
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity
from pgrunbooks.names import qualified, quote_ident
from pgrunbooks.sandbox import ADMIN_USER

FLAGGED = {Severity.WARNING, Severity.CRITICAL}

#: names PostgreSQL allows that a plain ``schema || '.' || name`` gets wrong
NAMES = ["CallLog", "call log", 'a"b', "select", "user", "données", "a.b", "ok: true", "x--y;z"]


def schema_of(check_id: str) -> str:
    """The schema holding a check's planted objects: mixed case, a space, a double quote, a dot, non-ASCII."""
    return f'{check_id} "Odd".Schéma'


# ------------------------------------------------------------------------------------------ the helper
ODD_WORDS = NAMES + ["", "plain", "_x1", "1abc", "a$b", "Select", "naïve", "x-y", "with space", 'q"', "."]


def test_quote_ident_agrees_with_postgresql(pg):
    """``names.quote_ident`` prints what ``quote_ident()`` prints, for every keyword of the server and
    odd names. Older servers leave bare a few words newer ones reserve: quoting those is the only
    difference allowed, and only below the newest version we test."""
    with pg.connect("postgres") as conn:
        words = [r[0] for r in conn.execute("select word from pg_catalog.pg_get_keywords() order by word")]
        printed = dict(conn.execute(
            "select w, pg_catalog.quote_ident(w) from unnest(%s::text[]) w", (words + ODD_WORDS,)).fetchall())
    different = {w: (quote_ident(w), pg_out) for w, pg_out in printed.items() if quote_ident(w) != pg_out}
    if pg.major >= 18:
        assert not different
    else:
        assert all(pg_out == w and ours == f'"{w}"' for w, (ours, pg_out) in different.items()), different


def test_qualified_names_parse_back_to_their_parts(pg):
    parts = [[s, n] for s in (schema_of("x"), "public") for n in ODD_WORDS if n and n != "."]
    with pg.connect("postgres") as conn:
        for pair in parts:
            assert conn.execute("select pg_catalog.parse_ident(%s)", (qualified(*pair),)).fetchone()[0] == pair


def test_no_check_query_concatenates_names():
    """Names are composed with format('%I.%I', …) or regclass/regprocedure, never with || '.' ||."""
    from pgrunbooks.checks.registry import _sql_files

    concat = re.compile(r"\|\|\s*'\.'\s*\|\|")
    offenders = [name for name, text in _sql_files().items() if concat.search(text)]
    assert not offenders


# ---------------------------------------------------------------------------------- planting
def _q(conn, *parts: str) -> str:
    """The server's own spelling of a dotted name (each part through quote_ident())."""
    return conn.execute(
        "select pg_catalog.array_to_string(array(select pg_catalog.quote_ident(p)"
        " from unnest(%s::text[]) with ordinality u(p, i) order by i), '.')", (list(parts),)).fetchone()[0]


def _rows(conn, table, count: int, columns: str = "id", expr: str = "g") -> None:
    conn.execute(sql.SQL("insert into {} ({}) select {} from pg_catalog.generate_series(1, %s) g").format(
        table, sql.SQL(columns), sql.SQL(expr)), (count,))


def _x(conn, query: str, *names: sql.Composable) -> None:
    conn.execute(sql.SQL(query).format(*names))


def _table(conn, table, columns: str = "id int", rows: int = 0, *, autovacuum: bool = True, rls: bool = False,
           grant: str | None = None) -> None:
    """``create table`` with ``rows`` ids, autovacuum off, row level security on, select granted to a role."""
    options = sql.SQL("" if autovacuum else " with (autovacuum_enabled = false)")
    conn.execute(sql.SQL("create table {} ({}){}").format(table, sql.SQL(columns), options))
    if rows:
        _rows(conn, table, rows)
    if rls:
        _x(conn, "alter table {} enable row level security", table)
    if grant:
        _x(conn, "grant select on {} to {}", table, sql.Identifier(grant))


def _each(plant):
    """A planter called once per name of :data:`NAMES`: ``plant(conn, schema, n, i)`` returns the
    parts of the object the check must report (default: the schema and ``n``)."""
    def planter(conn, schema: str) -> list[str]:
        return [_q(conn, *(plant(conn, schema, n, i) or (schema, n))) for i, n in enumerate(NAMES)]
    return planter


@_each
def _unused_index(conn, schema, n, i):
    table = sql.Identifier(schema, "t")
    if i == 0:
        _x(conn, "create table {} (id int primary key, v int)", table)
    _x(conn, "create index {} on {} (v)", sql.Identifier(n), table)


@_each
def _duplicate_index(conn, schema, n, i):
    table = sql.Identifier(schema, f"t{i}")
    _x(conn, "create table {} (a int, b int)", table)
    _x(conn, "create index {} on {} (a, b)", sql.Identifier(f"cover{i}"), table)
    _x(conn, "create index {} on {} (a)", sql.Identifier(n), table)  # a prefix of cover<i>


@_each
def _invalid_index(conn, schema, n, i):
    table = sql.Identifier(schema, f"t{i}")
    _x(conn, "create table {} (v int)", table)
    _x(conn, "insert into {} values (1), (1)", table)
    try:
        _x(conn, "create unique index concurrently {} on {} (v)", sql.Identifier(n), table)
    except psycopg.errors.UniqueViolation:
        return None  # the failed build leaves the index behind, invalid
    raise AssertionError(f"{n} was built valid")


@_each
def _fk_without_index(conn, schema, n, i):
    parent = sql.Identifier(schema, "parent")
    if i == 0:
        _x(conn, "create table {} (id int primary key)", parent)
    _x(conn, "create table {} (id int primary key, {} int references {})", sql.Identifier(schema, n),
       sql.Identifier(n), parent)
    constraint = conn.execute("select conname::text from pg_catalog.pg_constraint where conrelid = %s::regclass"
                              " and contype = 'f'", (_q(conn, schema, n),)).fetchone()[0]
    return schema, n, constraint


@_each
def _dead_tuples(conn, schema, n, i):
    table = sql.Identifier(schema, n)
    # filled at fillfactor 40, then updated in place (HOT) without filling a page, so no reader prunes them
    _x(conn, "create table {} (id int primary key, v int) with (autovacuum_enabled = false, fillfactor = 40)", table)
    _rows(conn, table, 3000, "id, v", "g, g")
    _x(conn, "alter table {} reset (fillfactor)", table)
    _x(conn, "update {} set v = v + 1 where id % 10 <> 0", table)


def _inserted(count: int):
    @_each
    def plant(conn, schema, n, i):
        _table(conn, sql.Identifier(schema, n), rows=count, autovacuum=False)
    return plant


@_each
def _stale_statistics(conn, schema, n, i):
    table = sql.Identifier(schema, n)
    _table(conn, table, "id int, v int", 2000, autovacuum=False)
    _x(conn, "analyze {}", table)
    _x(conn, "update {} set v = 1", table)


@_each
def _seq_scans(conn, schema, n, i):
    table = sql.Identifier(schema, n)
    _table(conn, table, rows=200)
    for _ in range(10):
        _x(conn, "select count(*) from {}", table)


@_each
def _sequence(conn, schema, n, i):
    sequence, table = sql.Identifier(schema, n), sql.Identifier(schema, f"{n}_t")
    _x(conn, "create sequence {} as integer", sequence)
    _x(conn, "create table {} ({} integer not null)", table, sql.Identifier(n))
    _x(conn, "alter sequence {} owned by {}", sequence, sql.Identifier(schema, f"{n}_t", n))
    conn.execute("select pg_catalog.setval(%s::regclass, 2080000000)", (_q(conn, schema, n),))


def _definer(conn, schema: str) -> list[str]:
    amount = sql.Identifier(schema, "Amount €")
    _x(conn, "create domain {} as numeric", amount)
    out = []
    for n in NAMES:
        _x(conn, "create function {}(integer, {}) returns integer language sql security definer as 'select $1'",
           sql.Identifier(schema, n), amount)
        with conn.transaction():
            conn.execute("set local search_path = pg_catalog")  # as the checks run: regprocedure qualifies
            signature = conn.execute("select %s::regprocedure::text",
                                     (f"{_q(conn, schema, n)}(integer, {_q(conn, schema, 'Amount €')})",)).fetchone()[0]
        assert signature.startswith(_q(conn, schema, n) + "(")
        out.append(signature)
    return out


@_each
def _rls_disabled(conn, schema, n, i):
    _table(conn, sql.Identifier(schema, n), "id int primary key, org_id uuid", grant="authenticated")


@_each
def _rls_no_policy(conn, schema, n, i):
    _table(conn, sql.Identifier(schema, n), "id int primary key", rls=True, grant="anon")


def _policy(using: str):
    @_each
    def plant(conn, schema, n, i):
        table = sql.Identifier(schema, "t")
        if i == 0:
            _table(conn, table, "id int primary key, org_id uuid", rls=True)
        _x(conn, "create policy {} on {} for select to authenticated using (" + using + ")", sql.Identifier(n), table)
        return schema, "t", n
    return plant


@_each
def _anon_grant(conn, schema, n, i):
    table = sql.Identifier(schema, n)
    _table(conn, table, "id int primary key", rls=True, grant="anon")
    _x(conn, "create policy {} on {} for select to anon using (true)", sql.Identifier(n), table)


def _missing_fk(conn, schema: str) -> list[str]:
    # refs."<n>_id" bigint, and a table <n> with a bigint primary key: the column's name points at it
    for n in NAMES:
        _x(conn, "create table {} (id bigint primary key)", sql.Identifier(schema, n))
    _x(conn, "create table {} (id bigint primary key, {})", sql.Identifier(schema, "refs"),
       sql.SQL(", ").join(sql.SQL("{} bigint").format(sql.Identifier(f"{n}_id")) for n in NAMES))
    return [_q(conn, schema, "refs", f"{n}_id") for n in NAMES]


def _orphans(conn, schema: str) -> list[str]:
    children, refs = sql.Identifier(schema, "children"), [sql.Identifier(f"{n}_ref") for n in NAMES]
    for n in NAMES:
        _x(conn, "create table {} (id int primary key)", sql.Identifier(schema, n))
        _x(conn, "insert into {} values (1)", sql.Identifier(schema, n))
    _x(conn, "create table {} (id int primary key, {})", children, sql.SQL(", ").join(
        sql.SQL("{} int references {}").format(r, sql.Identifier(schema, n)) for r, n in zip(refs, NAMES)))
    with conn.transaction():  # a restore with the triggers off: row 2 points at parents that do not exist
        conn.execute("set local session_replication_role = replica")
        conn.execute(sql.SQL("insert into {} (id, {}) values (1, {}), (2, {})").format(
            children, sql.SQL(", ").join(refs), sql.SQL(", ").join([sql.Literal(1)] * len(NAMES)),
            sql.SQL(", ").join([sql.Literal(2)] * len(NAMES))))
    return [_q(conn, schema, "children", f"{n}_ref") for n in NAMES]


@_each
def _leaky_tenant_table(conn, schema, n, i):
    table = sql.Identifier(schema, n)
    if i == 0:
        _x(conn, "grant usage on schema {} to authenticated, anon", sql.Identifier(schema))
    _table(conn, table, "id int primary key, org_id uuid not null", rls=True, grant="authenticated")
    _x(conn, "create index on {} (org_id)", table)
    _x(conn, "create policy {} on {} for select to authenticated using (true)", sql.Identifier(n), table)
    _x(conn, "insert into {} (id, org_id) select row_number() over (order by o.id, g), o.id"
             " from (select id from public.organizations order by id limit 25) o,"
             " pg_catalog.generate_series(1, 3) g", table)


def _bloated(index: bool):
    @_each
    def plant(conn, schema, n, i):
        table = sql.Identifier(schema, f"t{i}" if index else n)
        _x(conn, "create table {} (id int, pad text)", table)
        if index:
            _x(conn, "create index {} on {} (id)", sql.Identifier(n), table)
        _rows(conn, table, 5000, "id, pad", "g, pg_catalog.repeat('x', 100)")
        _x(conn, "delete from {} where id % 5 <> 0", table)  # 80% gone, from every page
        _x(conn, "vacuum (analyze) {}", table)
    return plant


@_each
def _small_table(conn, schema, n, i):
    _table(conn, sql.Identifier(schema, n), rows=10)


def _one_table_schema(conn, schema: str) -> list[str]:
    _table(conn, sql.Identifier(schema, "t"), rows=10)
    return [_q(conn, schema)]


@_each
def _no_primary_key(conn, schema, n, i):
    _table(conn, sql.Identifier(schema, n), "id int", rows=3)  # an id column that is no key


@_each
def _policy_without_rls(conn, schema, n, i):
    table = sql.Identifier(schema, n)
    _table(conn, table, "id int primary key", grant="authenticated")
    _x(conn, "create policy {} on {} for select to authenticated using (id > 0)", sql.Identifier(n), table)


@_each
def _user_metadata_policy(conn, schema, n, i):
    table = sql.Identifier(schema, "t")
    if i == 0:
        _table(conn, table, "id int primary key, org text", rls=True)
    _x(conn, "create policy {} on {} as restrictive for select to authenticated"
             " using (org = ((select auth.jwt()) -> 'user_metadata' ->> 'org'))", sql.Identifier(n), table)
    return schema, "t", n


def _over_rls_table(kind: str):
    """A view (or materialized view) of each name over an RLS table, selectable by authenticated."""
    @_each
    def plant(conn, schema, n, i):
        base = sql.Identifier(schema, "base")
        if i == 0:
            _table(conn, base, "id int primary key", rows=3, rls=True)
        _x(conn, "create " + kind + " {} as select id from {}", sql.Identifier(schema, n), base)
        _x(conn, "grant select on {} to authenticated", sql.Identifier(schema, n))
    return plant


@_each
def _auth_users_view(conn, schema, n, i):
    _x(conn, "create view {} as select id, email from auth.users", sql.Identifier(schema, n))
    _x(conn, "grant select on {} to authenticated", sql.Identifier(schema, n))


#: exposure checks read the run's exposed schemas, not a threshold: each planter's schema is one
EXPOSURE = {
    "tables_without_primary_key": _no_primary_key,
    "policies_without_rls": _policy_without_rls,
    "policy_user_metadata": _user_metadata_policy,
    "security_definer_views": _over_rls_table("view"),
    "materialized_views_exposed": _over_rls_table("materialized view"),
    "auth_users_exposed": _auth_users_view,
}
EXPOSED_SCHEMAS = ["public", *map(schema_of, EXPOSURE)]

#: check id -> its planter, the thresholds that point it at its schema (or make it fire at this size)
PLANTED = {
    "unused_indexes": (_unused_index, {}),
    "duplicate_indexes": (_duplicate_index, {}),
    "invalid_indexes": (_invalid_index, {}),
    "fk_without_index": (_fk_without_index, {}),
    "dead_tuples": (_dead_tuples, {}),
    "vacuum_age": (_inserted(1500), {}),
    "stale_statistics": (_stale_statistics, {}),
    "never_analyzed": (_inserted(100), {}),
    "seq_scan_heavy_tables": (_seq_scans, {"min_rows": 100, "min_seq_scans": 5}),
    "sequence_exhaustion": (_sequence, {}),
    "security_definer_search_path": (_definer, {}),
    "rls_disabled": (_rls_disabled, {"schemas": [schema_of("rls_disabled")]}),
    "rls_no_policy": (_rls_no_policy, {"schemas": [schema_of("rls_no_policy")]}),
    "policy_always_true": (_policy("true"), {"schemas": [schema_of("policy_always_true")]}),
    "policy_initplan": (_policy("org_id = auth.uid()"), {"schemas": [schema_of("policy_initplan")]}),
    "anon_grants": (_anon_grant, {"schemas": [schema_of("anon_grants")]}),
    "missing_foreign_keys": (_missing_fk, {"schemas": [schema_of("missing_foreign_keys")]}),
    "orphaned_rows": (_orphans, {"schemas": [schema_of("orphaned_rows")]}),
    "tenant_isolation": (_leaky_tenant_table, {"schemas": ["public", schema_of("tenant_isolation")]}),
    "table_bloat": (_bloated(index=False), {"min_bytes": 0}),
    "index_bloat": (_bloated(index=True), {"min_bytes": 0}),
    "table_sizes": (_small_table, {"warning": 1, "limit": 100000}),
    "schema_sizes": (_one_table_schema, {"warning": 1}),
    **{check_id: (plant, {}) for check_id, plant in EXPOSURE.items()},
}


#: checks that name the database (the clone's name needs quoting): tripwire thresholds
DATABASE = {"database_size": {"warning": 1}, "xid_wraparound": {"warning": 1e-9}}
THRESHOLDS = {cid: t for cid, t in {**{c: p[1] for c, p in PLANTED.items()}, **DATABASE}.items() if t}


def _conninfo(pg, db: str) -> str:
    return make_conninfo(pg.admin_conninfo(), dbname=db)


def _run(pg, db: str, ids, **kwargs) -> dict[str, list]:
    with connect(_conninfo(pg, db), runbook="test/names") as session:
        results = checks.run_results(session, ids=list(ids), thresholds=THRESHOLDS,
                                     exposed_schemas=EXPOSED_SCHEMAS, **kwargs)
    return {r.check.id: r.findings for r in results}


@pytest.fixture(scope="module")
def odd(pg, clean_template):
    """The clone with the planted objects, what each check must find there, and two runs of the
    registry made before any test changes it: plain, and with one key per check suppressed."""
    db = f'Odd"DB.données_{uuid.uuid4().hex[:8]}'
    pg.create_database(db, template=clean_template)
    try:
        with psycopg.connect(_conninfo(pg, db), autocommit=True) as conn:
            expected = {}
            for cid, (plant, _) in PLANTED.items():
                conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema_of(cid))))
                expected[cid] = plant(conn, schema_of(cid))
            expected.update(dict.fromkeys(DATABASE, [_q(conn, db)]))
        time.sleep(0.6)  # the planting backend's statistics are flushed as it exits
        ids = list(expected)
        found = _run(pg, db, ids)
        suppressed_keys = {cid: f"{cid}:{objects[-1]}" for cid, objects in expected.items()}
        suppressed = _run(pg, db, ids, suppress=list(suppressed_keys.values()))
        yield {"db": db, "expected": expected, "found": found, "suppressed": suppressed, "keys": suppressed_keys}
    finally:
        pg.drop_database(db)


def _flagged(findings) -> dict[str, object]:
    return {f.object: f for f in findings if f.severity in FLAGGED}


# --------------------------------------------------------------------- found, named, suppressed
@pytest.mark.parametrize("check_id", sorted({**PLANTED, **DATABASE}))
def test_odd_names_are_found_and_quoted_like_postgresql(odd, check_id):
    flagged = _flagged(odd["found"][check_id])
    missing = [o for o in odd["expected"][check_id] if o not in flagged]
    assert not missing, f"{check_id} did not flag {missing}; flagged {sorted(flagged)}"


@pytest.mark.parametrize("check_id", sorted({**PLANTED, **DATABASE}))
def test_suppression_key_drops_exactly_that_finding(odd, check_id):
    # compared on the planted objects: the first run's probes scan indexes elsewhere (tenant tables)
    planted = {f"{check_id}:{o}" for o in odd["expected"][check_id]}
    key = odd["keys"][check_id]
    before = {f.key for f in odd["found"][check_id] if f.severity in FLAGGED} & planted
    after = {f.key for f in odd["suppressed"][check_id] if f.severity in FLAGGED} & planted
    assert before == planted and key in before
    assert after == before - {key}


def test_tenant_leak_names_the_quoted_policy(odd):
    flagged = _flagged(odd["found"]["tenant_isolation"])
    schema = schema_of("tenant_isolation")
    for n in NAMES:
        leak = flagged[qualified(schema, n)]
        assert f"(policy {quote_ident(n)})" in leak.title
        # its table's only SELECT policy: narrowed to the member's organizations, not dropped
        assert f"alter policy {quote_ident(n)} on {qualified(schema, n)} using (" in leak.remediation


# ------------------------------------------------------------------------------- remediation SQL
def test_printed_sql_splits_where_psql_would_with_odd_names():
    """The statement splitter the remediation tests rely on keeps ``;`` and ``--`` inside quoted names."""
    text = ('alter table s."x--y;z" enable row level security;\n-- a comment; with a semicolon\n'
            "create policy \"it's\" on s.\"x--y;z\" using (x = 'a;b');\n-- undo: drop policy \"it's\" on s.\"x--y;z\";")
    assert sql_statements(text) == ['alter table s."x--y;z" enable row level security',
                                    "create policy \"it's\" on s.\"x--y;z\" using (x = 'a;b')"]
    assert undo_statements(text) == ['drop policy "it\'s" on s."x--y;z"']


def _prepare(conn, check_id: str) -> None:
    """What the remediation's comment says to do first (for invalid_indexes: remove the duplicates)."""
    if check_id == "invalid_indexes":
        for i in range(len(NAMES)):
            conn.execute(sql.SQL("delete from {}").format(sql.Identifier(schema_of(check_id), f"t{i}")))


#: checks whose remediation SQL is the fix: run it, the finding is gone (and the undo brings it back)
FIXED_BY_REMEDIATION = [
    "unused_indexes", "duplicate_indexes", "invalid_indexes", "fk_without_index", "dead_tuples", "vacuum_age",
    "stale_statistics", "never_analyzed", "sequence_exhaustion", "security_definer_search_path", "rls_disabled",
    "rls_no_policy", "policy_always_true", "policy_initplan", "anon_grants", "missing_foreign_keys",
    "orphaned_rows", "tenant_isolation", "table_bloat", "index_bloat", *EXPOSURE,
]
#: ... of which these print an undo that brings the finding back
UNDONE = {"unused_indexes", "duplicate_indexes", "security_definer_views"}
#: checks whose remediation names no object (prose, or the registry's text)
NO_OBJECT_SQL = ["seq_scan_heavy_tables", "table_sizes", "schema_sizes", *DATABASE]


def _execute(pg, db: str, statements: list[str]) -> None:
    with psycopg.connect(_conninfo(pg, db), autocommit=True) as conn:  # like psql: vacuum and concurrently run
        for statement in statements:
            conn.execute(statement)


def _remediate(pg, odd, check_id: str) -> None:
    """Run the remediation of each planted finding, as printed."""
    flagged = _flagged(odd["found"][check_id])
    with psycopg.connect(_conninfo(pg, odd["db"]), autocommit=True) as conn:
        _prepare(conn, check_id)
    for obj in odd["expected"][check_id]:
        todo = sql_statements(flagged[obj].remediation)
        assert todo, f"{check_id}: no SQL in the remediation of {obj}: {flagged[obj].remediation}"
        _execute(pg, odd["db"], todo)


@pytest.mark.parametrize("check_id", FIXED_BY_REMEDIATION)
def test_remediation_fixes_odd_named_objects(pg, odd, check_id):
    planted = set(odd["expected"][check_id])
    _remediate(pg, odd, check_id)
    still = planted & set(_flagged(_run(pg, odd["db"], [check_id])[check_id]))
    assert not still, f"{check_id} still flags {still} after its remediation"
    flagged = _flagged(odd["found"][check_id])
    undo = [s for o in sorted(planted) for s in undo_statements(flagged[o].remediation)]
    assert bool(undo) == (check_id in UNDONE)
    if undo:
        _execute(pg, odd["db"], undo)
        back = set(_flagged(_run(pg, odd["db"], [check_id])[check_id]))
        assert planted <= back, f"{check_id}: the undo did not bring back {planted - back}"


def test_every_planted_check_has_its_remediation_tested(odd):
    assert set(FIXED_BY_REMEDIATION) | set(NO_OBJECT_SQL) == set(PLANTED) | set(DATABASE)
    for check_id in NO_OBJECT_SQL:  # once a remediation names the object, it belongs in FIXED_BY_REMEDIATION
        flagged = _flagged(odd["found"][check_id])
        assert not [o for o in odd["expected"][check_id] if o in flagged[o].remediation], check_id


# ------------------------------------------------------------------------------------- a role
def test_odd_superuser_is_flagged_quoted_and_its_remediation_works(pg, clean_db):
    role = 'Legacy "Admin".données'
    with pg.connect(clean_db) as admin:
        admin.execute(sql.SQL("create role {} superuser login").format(sql.Identifier(role)))
        try:
            expected = "role:" + admin.execute("select pg_catalog.quote_ident(%s)", (role,)).fetchone()[0]
            with connect(pg.conninfo(clean_db, user=ADMIN_USER), runbook="test/names") as s:
                found = [f for f in checks.run_checks(s, ids=["privileged_roles"]) if f.severity in FLAGGED]
                kept = checks.run_checks(s, ids=["privileged_roles"], suppress=[f"privileged_roles:{expected}"])
            assert [f.object for f in found] == [expected]
            assert [f.severity for f in kept] == [Severity.OK] and "suppressed" in kept[0].detail
            for statement in sql_statements(found[0].remediation):
                admin.execute(statement)
            with connect(pg.conninfo(clean_db, user=ADMIN_USER), runbook="test/names") as s:
                after = checks.run_checks(s, ids=["privileged_roles"])
            assert [f.severity for f in after] == [Severity.OK]
        finally:
            admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
