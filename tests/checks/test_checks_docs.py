"""The checks' docs, registry entries and SQL files keep their promises (no database needed)."""

from __future__ import annotations

import json
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


def test_check_list_json_names_the_fixing_action(capsys):
    from pgrunbooks.cli import main

    assert main(["check", "--list", "--format", "json"]) == 0
    listed = {c["id"]: c["fixed_by"] for c in json.loads(capsys.readouterr().out)}
    assert listed == {c.id: c.fixed_by for c in checks.REGISTRY.values()}
    assert listed["dead_tuples"] == "vacuum_analyze" and listed["unused_indexes"] is None


def test_the_checks_package_names_no_runbook(project):
    names = {f"{nb.parent.name}/{nb.stem}" for nb in (project / "runbooks").glob("*/*.ipynb")}
    assert names, "no runbook found"
    for item in resources.files("pgrunbooks.checks").iterdir():
        if item.name.endswith(".py"):
            source = item.read_text()
            assert not [n for n in names if n in source], item.name
    page = docs.render()
    assert not [n for n in names if n in page]


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


def test_a_fragment_is_filled_in_for_the_server_version():
    columns = {v: [line.split("--")[0].strip() for line in checks.load_sql("unused_indexes", v).splitlines()
                   if "as last_idx_scan" in line] for v in (150004, 160000, 180000)}
    assert columns == {150004: ["null::timestamptz as last_idx_scan,"],
                       160000: ["s.last_idx_scan as last_idx_scan,"],
                       180000: ["s.last_idx_scan as last_idx_scan,"]}


def test_every_sql_file_is_listed_under_its_check():
    sql_lines = re.findall(r"^Requires: .*? SQL: (.*)$", docs.render(), flags=re.M)
    listed = sorted(re.findall(r"`([^`]+\.sql)`", " ".join(sql_lines)))
    assert listed == sorted(f.name for f in SQL_DIR.iterdir() if f.name.endswith(".sql"))


def test_no_check_builds_sql_with_string_formatting():
    package = resources.files("pgrunbooks.checks")
    for item in package.iterdir():
        if item.name.endswith(".py"):
            source = item.read_text()
            assert not re.search(r"execute\(\s*f[\"']", source), item.name
            assert not re.search(r"sql\.SQL\(\s*f[\"']", source), item.name
