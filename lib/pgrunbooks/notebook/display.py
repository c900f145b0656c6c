"""Showing things in a notebook: charts, tables, MIME bundles, and short error messages.

Plotly charts are published with the ``plotly_mimetype`` renderer only: JupyterLab and VS Code
render them natively, committed notebooks stay small (no plotly.js inside), and the HTML
report embeds plotly.js once. pandas, plotly and IPython are imported lazily (only when
already loaded, or inside the functions that need them): every runbook imports this module.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pgrunbooks.engine.html import PLOTLY_MIME, redact_tree
from pgrunbooks.errors import PgRunbooksError, UsageError
from pgrunbooks.findings import ATTACHMENT_MIME
from pgrunbooks.redact import redact

PLOTLY_RENDERER = "plotly_mimetype"


def ipython():
    """The running IPython shell, or ``None`` (IPython is not imported when nothing did)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def publish(bundle: dict[str, Any]) -> None:
    """Display a MIME bundle in IPython; outside IPython print its text part."""
    if ipython() is not None:
        from IPython.display import display

        display(bundle, raw=True)
    else:
        print(bundle.get("text/plain", ""))


def show(fig_or_df: Any, *, max_rows: int = 200) -> None:
    """Display a plotly figure (or a figure dict ``{"data": [...], "layout": {...}}``) or a
    pandas DataFrame (or anything else) consistently.

    Figures get a white template and a sane height and are published as plotly's MIME type
    (no plotly.js in the notebook). DataFrames are shown as an HTML table of at most
    ``max_rows`` rows (the total is stated when truncated), scrollable when wide.
    """
    if _is_plotly_figure(fig_or_df):
        publish(figure_bundle(fig_or_df))
        return
    if isinstance(fig_or_df, dict) and isinstance(fig_or_df.get("data"), list):  # a figure as a plain dict
        fig = dict(fig_or_df)
        fig.setdefault("layout", {}).setdefault("template", {"layout": {"plot_bgcolor": "white"}})
        fig.setdefault("config", {}).update({"displaylogo": False, "responsive": True})
        publish({PLOTLY_MIME: redact_tree(fig), "text/plain": "<chart>"})
        return
    if _is_dataframe(fig_or_df):
        publish(dataframe_bundle(fig_or_df, max_rows=max_rows))
        return
    if ipython() is not None:
        from IPython.display import display

        display(fig_or_df)
    else:
        print(redact(str(fig_or_df)))


def attach(name: str, content: Any) -> None:
    """Hand a JSON document to the run: a headless run writes it beside the report as
    ``<runbook>.<name>`` (e.g. ``evidence.json``) and keeps it out of the saved notebook
    and the HTML; in JupyterLab the cell just says it was attached.

    ``content`` must be JSON-serialisable; it is redacted like every other output.
    """
    if not name or "/" in name or name.startswith(".") or not name.endswith(".json"):
        raise UsageError(f"attachment name {name!r} must be a plain file name ending in .json")
    publish({ATTACHMENT_MIME: {"name": name, "content": redact_tree(content)}, "text/plain": f"(attached {name})"})


def figure_bundle(fig: Any) -> dict[str, Any]:
    """A plotly figure as a MIME bundle (``application/vnd.plotly.v1+json`` + text)."""
    import json

    import plotly.io as pio

    layout = fig.layout
    if pio.templates.default == "plotly" and layout.template == pio.templates["plotly"]:
        fig.update_layout(template="plotly_white")  # the default look, unless the author chose one
    if layout.height is None:
        fig.update_layout(height=380)
    if layout.margin.t is None:
        fig.update_layout(margin=dict(l=40, r=20, t=50, b=40))
    fig_dict = json.loads(pio.to_json(fig, validate=False, remove_uids=True))
    fig_dict.setdefault("config", {}).update({"displaylogo": False, "responsive": True})
    title = ""
    try:
        title = fig.layout.title.text or ""
    except AttributeError:
        pass
    return {PLOTLY_MIME: fig_dict, "text/plain": f"<chart{': ' + title if title else ''}>"}


def dataframe_bundle(df: Any, *, max_rows: int = 200) -> dict[str, Any]:
    """A DataFrame as an HTML table (+ text), truncated to ``max_rows``."""
    total = len(df)
    shown = df.head(max_rows)
    table = shown.to_html(index=False, border=0, classes="pgrb-df", na_rep="", max_cols=60)
    note = f'<p style="color:#6b7280;margin:2px 0">showing {max_rows} of {total} rows</p>' if total > max_rows else ""
    markup = f'<div class="pgrb-dfwrap" style="overflow-x:auto;max-width:100%;max-height:640px">{table}</div>{note}'
    return {"text/html": redact(markup), "text/plain": redact(shown.to_string(max_rows=40, max_cols=20))}


def _is_plotly_figure(obj: Any) -> bool:
    return "plotly" in sys.modules and type(obj).__module__.startswith("plotly") and hasattr(obj, "to_plotly_json")


def _is_dataframe(obj: Any) -> bool:
    return "pandas" in sys.modules and hasattr(obj, "to_html") and hasattr(obj, "head") and hasattr(obj, "columns")


def configure_plotly() -> None:
    """Use the plotly MIME renderer (set before plotly is imported when possible: it is slow)."""
    os.environ.setdefault("PLOTLY_RENDERER", PLOTLY_RENDERER)
    if "plotly.io" in sys.modules:
        import plotly.io as pio

        pio.renderers.default = PLOTLY_RENDERER


def install_error_display() -> None:
    """Show pgrunbooks errors (connection refused, bad target…) as one message, not a traceback wall."""
    shell = ipython()
    if shell is None or getattr(shell, "_pgrb_errors_installed", False):
        return

    def handler(self, etype, value, tb, tb_offset=None):
        # IPython discards the return value in run_code: publish the short form ourselves
        # (ipykernel sends it as the cell's error output, so the run still fails).
        stb = [f"{etype.__name__}: {value}"]
        self._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((PgRunbooksError,), handler)
    shell._pgrb_errors_installed = True
