"""No SQL built by string formatting anywhere in the package (no database needed).

Dynamic SQL goes through ``psycopg.sql`` (``sql.SQL("...").format(sql.Identifier(...))``) and
values are bound parameters. This guard reads every module of ``lib/pgrunbooks`` with ``ast``
and names each place where the query handed to ``execute``/``executemany``/``fetch*``/
``scalar``/``copy``/``stream``/``read_sql`` (its first argument or ``query=``) or to
``sql.SQL`` is

* an f-string, ``"..." % x`` or ``"...".format(...)``, or
* a local name that the same function (or the module, at top level) assigns from one of those.

Only the query is judged, never the parameters, so ``execute("... %s", (x,))`` and
``sql.SQL("... {}").format(...)`` pass: the rule is precise, not an allow-list of files.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "pgrunbooks"

#: methods whose first argument is a query
QUERY_METHODS = {"execute", "executemany", "scalar", "copy", "stream", "read_sql", "read_sql_query", "SQL"}


def _is_formatting(node: ast.AST) -> bool:
    """An f-string, ``"..." % x`` or ``"...".format(...)``."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return isinstance(node.left, (ast.Constant, ast.JoinedStr)) and isinstance(getattr(node.left, "value", ""), str)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)
    return False


def _query_of(call: ast.Call) -> ast.AST | None:
    """The query argument of a call to a query method, else None."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name is None or not (name in QUERY_METHODS or name.startswith("fetch")):
        return None
    if isinstance(func, ast.Name) and name != "SQL":  # plain functions named execute(...) take other arguments
        return None
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg == "query"), None)


def _scopes(tree: ast.Module):
    """The module and each function, each with the nodes that belong to it (not to a nested function)."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)

    def own_nodes(scope: ast.AST):
        stack = list(ast.iter_child_nodes(scope))
        while stack:
            node = stack.pop()
            yield node
            if not isinstance(node, functions):
                stack.extend(ast.iter_child_nodes(node))

    yield tree, list(own_nodes(tree))
    for node in ast.walk(tree):
        if isinstance(node, functions):
            yield node, list(own_nodes(node))


def violations(source: str, filename: str = "<string>") -> list[str]:
    """``file:line: what`` for every query built by string formatting in *source*."""
    found = []
    for _, nodes in _scopes(ast.parse(source, filename)):
        formatted = set()
        for node in nodes:
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if _is_formatting(node.value):
                    formatted |= {t.id for t in targets if isinstance(t, ast.Name)}
        for node in nodes:
            if not isinstance(node, ast.Call):
                continue
            query = _query_of(node)
            if query is None:
                continue
            if _is_formatting(query):
                found.append(f"{filename}:{node.lineno}: query built by string formatting")
            elif isinstance(query, ast.Name) and query.id in formatted:
                found.append(f"{filename}:{node.lineno}: query {query.id!r} was built by string formatting")
    return sorted(set(found), key=lambda v: int(v.split(":")[1]))


@pytest.mark.parametrize(
    "snippet",
    [
        'conn.execute(f"select {x}")',
        'cur.execute("select %s" % x)',
        'cur.execute("select {}".format(x))',
        'sql.SQL(f"select {x}")',
        'SQL(f"drop table {t}")',
        'session.fetch_one(f"select {x}")',
        'session.scalar(query=f"select {x}")',
        'def f(conn, t):\n    q = f"drop table {t}"\n    conn.execute(q)',
        'def f(conn, t):\n    q: str = "drop table %s" % t\n    return conn.fetch(q)',
        'def f(t):\n    q = "select "\n    q += f"{t}"\n    return sql.SQL(q)',
        'def f(s, t):\n    q = "select {}".format(t)\n    return pd.read_sql(q, s.engine)',
    ],
)
def test_the_guard_catches_formatted_sql(snippet):
    assert violations(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'conn.execute("select %s, %(n)s", params)',
        'conn.execute(sql.SQL("drop table {}").format(sql.Identifier(s, t)))',
        'cur.execute(sql.SQL("select {x}").format(x=sql.Literal(3)), (1,))',
        'def f(conn, name):\n    msg = f"dropping {name}"\n    log.info(msg)\n    conn.execute("select 1")',
        'def f(conn, rows):\n    conn.execute("insert into t values (%s)", (f"{rows}",))',
        'def f(conn):\n    q = f"select {1}"\n    def g(conn):\n        q = "select 1"\n        conn.execute(q)',
        'def compose(text):\n    return sql.SQL(text).format(**FRAGMENTS)',
        'execute(ctx, check, cur, f"not a query")',
        'cur.fetchone()',
    ],
)
def test_the_guard_lets_composed_sql_and_bound_values_pass(snippet):
    assert violations(snippet) == [], snippet


def test_no_module_builds_sql_with_string_formatting():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20, "the package was not found"
    found = [v for path in modules for v in violations(path.read_text(), str(path.relative_to(PACKAGE.parent)))]
    assert not found, "compose SQL with psycopg.sql and bind values:\n" + "\n".join(found)
