"""Progress in a headless report: one final line, no tqdm warning, no machine path."""

from __future__ import annotations

import re

import nbformat
from nbclient import NotebookClient

CELL = """\
from pgrunbooks.progress import progress_bar
bar = progress_bar(total=1200, desc="calls → call_archives", unit="rows", unit_scale=True, mininterval=0.5)
for _ in range(12):
    bar.update(100)
bar.close()
"""


def _outputs(source: str, tmp_path) -> list[dict]:
    """``source`` run in a kernel the engine starts (as every headless run's kernel is)."""
    from pgrunbooks.engine.kernels import start_kernel

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    kernel = start_kernel(tmp_path, "python3")
    try:
        NotebookClient(nb, km=kernel.km, kernel_name="python3", timeout=120).execute()
    finally:
        kernel.stop()
        kernel.remove_files()
    return nb.cells[0].outputs


def test_headless_progress_is_one_final_line(first_pg, tmp_path):
    outputs = _outputs(CELL, tmp_path)
    text = "".join(o.get("text", "") for o in outputs)
    assert [o.get("name") for o in outputs] == ["stdout"], outputs  # nothing on stderr
    assert re.fullmatch(r"calls → call_archives: 1,200 of 1,200 rows in \d+\.\d s\n", text), text
    assert "IProgress" not in text and "site-packages" not in text and "\r" not in text



def test_a_kernel_a_person_watches_shows_a_progress_widget(first_pg, monkeypatch):
    """JupyterLab's kernel (not started by the engine): the tqdm widget, not a final line."""
    from pgrunbooks.progress import HEADLESS

    monkeypatch.delenv(HEADLESS, raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(CELL))
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = nb.cells[0].outputs
    assert any("application/vnd.jupyter.widget-view+json" in (o.get("data") or {}) for o in outputs), outputs
    assert "IProgress" not in "".join(o.get("text", "") for o in outputs)
