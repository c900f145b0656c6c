"""Committed notebooks are safe to publish and follow the runbook shape.

Limits (documented in docs/authoring.md): a committed notebook is at most 1 MB and no
single output exceeds 200 kB, so the repository page stays readable and plotly.js is
never embedded in a notebook (the HTML report embeds it once instead).
"""

from __future__ import annotations

import json
import re

import pytest

from pgrunbooks.engine.params import notebook_parameters
from pgrunbooks.refresh import NOTEBOOK_DIRS, PROJECT, committed_notebooks

NOTEBOOK_LIMIT = 1_000_000
OUTPUT_LIMIT = 200_000

SECRET_PATTERNS = {
    "password": re.compile(r"password\s*[=:]\s*(?!\*{3})['\"]?[^\s'\"*&,;)]{3,}", re.IGNORECASE),
    "url password": re.compile(r"postgres(?:ql)?://[^:/@\s]+:(?!\*{3})[^@\s]+@"),
    "token": re.compile(r"[?&]token=[0-9a-f]{16,}|\bsk_(live|test)_[A-Za-z0-9]{8,}|eyJ[A-Za-z0-9_-]{10,}\.eyJ"),
}
MACHINE_PATH = re.compile(r"(?<![\w.])(/root/|/home/[a-z_][\w-]*/|/tmp/(?!…)[\w.-]+|/work/[\w.-]+/|/var/folders/)")
# A string literal that looks like hand-written SQL in a runbook code cell (%sql cells are fine).
HANDWRITTEN_SQL = re.compile(
    r"['\"]{1,3}\s*(select\s.+\sfrom\s|insert\s+into\s|update\s+\w+\s+set\s|delete\s+from\s|alter\s+table\s|drop\s+)",
    re.IGNORECASE | re.DOTALL,
)

NOTEBOOKS = committed_notebooks()
IDS = [str(p.relative_to(PROJECT)) for p in NOTEBOOKS]


def _load(path):
    return json.loads(path.read_text())


def _output_texts(nb):
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            yield index, json.dumps(output)


def test_notebooks_are_discovered():
    """Every test below is parametrized over the discovered notebooks: finding none must fail
    here, not let them all pass without looking at anything."""
    folders = {p.relative_to(PROJECT).parts[0] for p in NOTEBOOKS}
    missing = sorted(set(NOTEBOOK_DIRS) - folders)
    assert not missing, f"no committed notebook found under {', '.join(missing)} of {PROJECT}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_small(path):
    assert path.stat().st_size <= NOTEBOOK_LIMIT, f"{path.name} is {path.stat().st_size:,} bytes"
    for index, text in _output_texts(_load(path)):
        assert len(text) <= OUTPUT_LIMIT, f"cell {index} output is {len(text):,} bytes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_holds_no_secret_and_no_machine_path(path):
    text = path.read_text()
    for name, pattern in SECRET_PATTERNS.items():
        match = pattern.search(text)
        assert not match, f"{name} in {path.name}: {match.group(0)!r}"
    match = MACHINE_PATH.search(text)
    assert not match, f"absolute path of the producing machine in {path.name}: {match.group(0)!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_metadata_is_normalised(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_the_runbook_shape(path):
    nb = _load(path)
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown", "start with markdown: when to use this, what it does"
    parameters = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1, "exactly one cell tagged 'parameters'"
    # The comment papermill reads for each assignment (on its line, or on the closing line of a
    # multi-line list) is the parameter's documentation: it shows in error messages.
    declared = notebook_parameters(path)
    assert declared, "the parameters cell assigns no parameter"
    for param in declared.values():
        assert param.help, f"parameter without a comment: {param.name} = {param.source}"
    if path.relative_to(PROJECT).parts[0] == "runbooks":
        meta = nb["metadata"].get("pgrunbooks", {})
        assert {"group", "title", "purpose", "mutates"} <= set(meta), "metadata.pgrunbooks incomplete"
        assert meta["group"] == path.parent.name


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.relative_to(PROJECT).parts[0] == "runbooks"], ids=str)
def test_runbook_cells_hold_no_handwritten_sql(path):
    for cell in _load(path)["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or source.lstrip().startswith(("%sql", "%%sql")):
            continue
        match = HANDWRITTEN_SQL.search(source)
        assert not match, f"SQL belongs in the library, not a runbook cell: {match.group(0)[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_ran_without_errors(path):
    for index, cell in enumerate(_load(path)["cells"]):
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"cell {index} committed with an error output"
