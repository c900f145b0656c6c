"""The checks' docs and SQL files keep their promises (no database needed)."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from pgrunbooks import checks
from pgrunbooks.checks import docs

SQL_DIR = resources.files("pgrunbooks.checks").joinpath("sql")
MAIN_SQL = sorted(f.name for f in SQL_DIR.iterdir() if re.fullmatch(r"[a-z_]+(\.pg\d+)?\.sql", f.name))


def test_docs_page_is_generated_from_the_registry(project):
    committed = (project / "docs" / "checks.md").read_text()
    assert committed == docs.render(), "regenerate: python -m pgrunbooks.checks.docs > docs/checks.md"


def test_every_check_is_documented_with_what_why_and_fix():
    page = docs.render()
    for check in checks.REGISTRY.values():
        assert f"\n### {check.id}\n" in page
        assert check.description and check.why and check.remediation, check.id


@pytest.mark.parametrize("name", MAIN_SQL)
def test_sql_file_has_a_header_with_purpose_privileges_and_caveats(name):
    text = SQL_DIR.joinpath(name).read_text()
    check_id = name.split(".")[0]
    assert check_id in checks.REGISTRY, f"{name} belongs to no check"
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("--"))
    assert text.startswith(f"-- {check_id}"), name
    assert "Privileges:" in header and "Caveats:" in header, name


@pytest.mark.parametrize("name", MAIN_SQL)
def test_sql_is_lower_case_and_schema_qualified(name):
    body = "\n".join(line.split("--")[0] for line in SQL_DIR.joinpath(name).read_text().splitlines())
    body = re.sub(r"'[^']*'", "''", body)  # string literals (regexes) may hold anything
    assert not re.search(r"\b(SELECT|FROM|WHERE|JOIN|ORDER BY)\b", body), name
    for catalog in re.findall(r"(?<![.\w])(pg_[a-z_]+)\b(?!\s*\()", body):
        if catalog in {"pg_catalog", "pg_toast", "pg_temp_"}:
            continue
        pytest.fail(f"{name}: {catalog} is not schema-qualified")


def test_sql_of_every_check_exists_for_every_supported_version():
    for check in checks.REGISTRY.values():
        for version in (150000, 160000, 170000, 180000):
            assert checks.load_sql(check.id, version)


def test_no_check_builds_sql_with_string_formatting():
    package = resources.files("pgrunbooks.checks")
    for item in package.iterdir():
        if item.name.endswith(".py"):
            source = item.read_text()
            assert not re.search(r"execute\(\s*f[\"']", source), item.name
            assert not re.search(r"sql\.SQL\(\s*f[\"']", source), item.name
