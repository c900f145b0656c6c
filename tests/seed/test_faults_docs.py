"""docs/faults.md is generated from the catalogue, and the faults' SQL files keep the promises the
catalogue makes: one header saying what each plants and what finds it, lower case, catalogs
schema-qualified, every name and value the entry declares bound (no database needed)."""

from __future__ import annotations

import re

import pytest

from pgrunbooks.seed import FAULTS, RUNTIME_FINDS
from pgrunbooks.seed.faults import docs
from pgrunbooks.seed.faults.model import sql_folder

SQL_FILES = sorted(f.name for f in sql_folder().iterdir() if f.name.endswith(".sql"))


def test_docs_page_is_generated_from_the_catalogue(project):
    committed = (project / "docs" / "faults.md").read_text()
    assert committed == docs.render(), "regenerate: python -m pgrunbooks.seed.faults.docs > docs/faults.md"


def test_faults_are_documented(project):
    text = (project / "docs" / "faults.md").read_text()
    for name, fault in FAULTS.items():
        assert f"`{name}`" in text, name
        for check in fault.finds:
            assert f"`{check}`" in text, (name, check)
    for name, checks in RUNTIME_FINDS.items():
        assert f"`{name}`" in text and all(f"`{c}`" in text for c in checks)


def _fault_of(file_name: str) -> str:
    return file_name.split(".")[0]


def _comments(text: str) -> str:
    return "\n".join(line.split("--", 1)[1] for line in text.splitlines() if "--" in line)


def _body(text: str) -> str:
    body = "\n".join(line.split("--")[0] for line in text.splitlines())
    body = re.sub(r"\$\$.*?\$\$", "$$$$", body, flags=re.S)  # function bodies are SQL too: kept below
    return re.sub(r"'[^']*'", "''", body)  # string literals (regexes, messages) may hold anything


@pytest.mark.parametrize("name", SQL_FILES)
def test_sql_file_belongs_to_a_fault_and_says_what_it_is(name):
    fault = FAULTS.get(_fault_of(name))
    assert fault is not None, f"{name} belongs to no fault"
    assert name in fault.sql_files(), name
    text = sql_folder().joinpath(name).read_text()
    kind = name.split(".")[1] if name.count(".") == 2 else ""
    assert text.startswith(f"-- {fault.name}" + (f" {kind}" if kind else "")), name
    if not kind:
        found_by = re.search(r"^-- Found by: (.*)$", text, re.M)
        assert found_by, f"{name}: no 'Found by:' line"
        assert all(check in found_by.group(1) for check in fault.finds), name


@pytest.mark.parametrize("name", SQL_FILES)
def test_sql_comments_hold_no_placeholder(name):
    """Values are bound on the client for the plant files (one round trip): a placeholder inside a
    comment would be filled in there, where a newline in a value would end the comment."""
    comments = _comments(sql_folder().joinpath(name).read_text())
    assert not re.search(r"%|\{|\}", comments), name


@pytest.mark.parametrize("name", SQL_FILES)
def test_sql_is_lower_case_and_schema_qualified(name):
    text = sql_folder().joinpath(name).read_text()
    function_bodies = re.findall(r"\$\$(.*?)\$\$", text, flags=re.S)
    for body in [_body(text)] + [re.sub(r"'[^']*'", "''", b) for b in function_bodies]:
        assert not re.search(r"\b(SELECT|FROM|WHERE|JOIN|ORDER BY|INSERT|UPDATE|CREATE|ALTER|GRANT|DROP)\b", body), name
        for catalog in re.findall(r"(?<![.\w])(pg_[a-z_]+)\b(?!\s*\()", body):
            assert catalog in {"pg_catalog"}, f"{name}: {catalog} is not schema-qualified"
        for table in re.findall(r"\b(?:from|join|into|update|on|table|references)\s+([a-z_]+)\b(?!\s*\.|\()", body):
            assert table in {"public", "pg_catalog", "auth", "lateral", "true", "generate_series",
                             "unnest", "select", "function", "delete", "commit", "if", "only"}, (name, table)


@pytest.mark.parametrize("fault", FAULTS.values(), ids=list(FAULTS))
def test_every_name_and_value_of_a_fault_reaches_its_sql(fault):
    text = "".join(sql_folder().joinpath(name).read_text() for name in fault.sql_files())
    for key in fault.names:
        assert "{" + key + "}" in text or f"%({key})s" in text or fault.hook is not None, (fault.name, key)
    for key in fault.params:
        assert f"%({key})s" in text, (fault.name, key)
    for placeholder in set(re.findall(r"%\((\w+)\)s", text)) - {"anchor"}:
        assert placeholder in fault.names or placeholder in fault.params, (fault.name, placeholder)
    for placeholder in set(re.findall(r"(?<!\{)\{(\w+)\}(?!\})", text)) if fault.names else ():
        assert placeholder in fault.names, (fault.name, placeholder)
