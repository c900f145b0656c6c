"""Plotly figures of check measurements, for the runbooks (``charts.show_if(charts.table_sizes(results))``).

Each function takes the :class:`~pgrunbooks.checks.Results` of ``rb.diagnose`` and returns a
figure, or ``None`` when the check did not run or measured nothing (:func:`show_if` then prints
a note instead). plotly is imported lazily: it is slow to import.
"""

from __future__ import annotations

from typing import Any

from pgrunbooks.notebook.display import show

MiB = 1024 * 1024


def _rows(results, check_id: str) -> list[dict[str, Any]]:
    found = results.get(check_id)
    return list(found.rows) if found is not None else []


def _short(text: str | None, n: int = 60) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def connections_by_state(results):
    """Stacked bars: client connections per state, split by application, against the usable limit."""
    import plotly.graph_objects as go

    rows = _rows(results, "connections")
    if not rows:
        return None
    apps = sorted({r["application"] or "(none)" for r in rows})
    states = sorted({r["state"] for r in rows})
    fig = go.Figure()
    for app in apps:
        fig.add_bar(name=app, x=states,
                    y=[sum(r["connections"] for r in rows if r["state"] == s and (r["application"] or "(none)") == app)
                       for s in states])
    usable = rows[0]["usable_connections"]
    fig.update_layout(barmode="stack", title=f"Client connections by state (usable: {usable})",
                      yaxis_title="connections", legend_title="application")
    return fig


def top_statements(results, n: int = 10):
    """Horizontal bars: total execution time of the top statements, labelled with their share."""
    return _statement_bars(
        _rows(results, "top_statements")[:n],
        value=lambda r: r["total_ms"] / 1000,
        label=lambda r: f"{(r['share_of_time'] or 0):.0%} · {r['calls']:,} calls",
        title="Top statements by total execution time", unit="seconds",
    )


def slow_statements(results, n: int = 10):
    """Horizontal bars: mean execution time of the slowest statements."""
    return _statement_bars(
        _rows(results, "slow_statements")[:n],
        value=lambda r: r["mean_ms"],
        label=lambda r: f"{r['calls']:,} calls",
        title="Slowest statements (mean)", unit="ms per call",
    )


def _statement_bars(rows, *, value, label, title: str, unit: str):
    """One bar per statement (the first row on top), named by its text and query id."""
    import plotly.graph_objects as go

    if not rows:
        return None
    rows = list(reversed(rows))
    fig = go.Figure(go.Bar(
        x=[value(r) for r in rows],
        y=[f"{_short(r['query'], 55)} [{r['queryid'][-6:]}]" for r in rows],
        orientation="h",
        text=[label(r) for r in rows],
        textposition="auto",
        hovertext=[_short(r["query"], 400) for r in rows],
    ))
    fig.update_layout(title=title, xaxis_title=unit, height=max(320, 40 * len(rows) + 120), margin=dict(l=360))
    return fig


def table_sizes(results, n: int = 15):
    """Stacked horizontal bars: heap, TOAST and index size of the largest tables (MB)."""
    import plotly.graph_objects as go

    rows = _rows(results, "table_sizes")[:n]
    if not rows:
        return None
    rows = list(reversed(rows))
    names = [r["name"] for r in rows]
    fig = go.Figure()
    for part, label in (("heap_bytes", "heap"), ("toast_bytes", "TOAST"), ("index_bytes", "indexes")):
        fig.add_bar(name=label, y=names, x=[r[part] / MiB for r in rows], orientation="h")
    fig.update_layout(barmode="stack", title="Largest tables", xaxis_title="MB",
                      height=max(320, 28 * len(rows) + 120), margin=dict(l=220))
    return fig


def schema_sizes(results):
    """Bars: disk used per schema (MB)."""
    import plotly.graph_objects as go

    rows = _rows(results, "schema_sizes")
    if not rows:
        return None
    fig = go.Figure(go.Bar(x=[r["schema"] for r in rows], y=[r["total_bytes"] / MiB for r in rows]))
    fig.update_layout(title="Disk used per schema", yaxis_title="MB")
    return fig


def dead_tuples(results, n: int = 15, warning: float | None = None):
    """Bars: dead-tuple share of the tables with the most dead tuples, with the warning line."""
    import plotly.graph_objects as go

    found = results.get("dead_tuples")
    rows = [r for r in _rows(results, "dead_tuples") if r["n_dead_tup"]][:n]
    if not rows:
        return None
    fig = go.Figure(go.Bar(
        x=[r["name"] for r in rows], y=[r["dead_ratio"] or 0 for r in rows],
        text=[f"{r['n_dead_tup']:,} dead" for r in rows], textposition="auto",
    ))
    limit = warning if warning is not None else (found.thresholds.get("warning") if found else None)
    if limit is not None:
        fig.add_hline(y=limit, line_dash="dash", annotation_text=f"warning {limit:.0%}")
    fig.update_layout(title="Dead tuples (share of each table's tuples)", yaxis_tickformat=".0%",
                      yaxis_range=[0, 1])
    return fig


def wraparound(results):
    """Bars: transaction-ID and multixact age of each database as a share of the wraparound limit."""
    import plotly.graph_objects as go

    xid, mxid = _rows(results, "xid_wraparound"), _rows(results, "multixact_wraparound")
    if not xid and not mxid:
        return None
    fig = go.Figure()
    fig.add_bar(name="transaction IDs", x=[r["database"] for r in xid], y=[r["ratio"] for r in xid])
    fig.add_bar(name="multixact IDs", x=[r["database"] for r in mxid], y=[r["ratio"] for r in mxid])
    fig.update_layout(barmode="group", title="Age against the wraparound limit (2^31)", yaxis_tickformat=".2%")
    return fig


def index_waste(results):
    """Bars: bytes held by indexes the checks flag (unused, duplicate, invalid, bloated), by index."""
    import plotly.graph_objects as go

    bars: dict[str, dict[str, float]] = {}
    for check_id, field in (("unused_indexes", "bytes"), ("duplicate_indexes", "bytes"),
                            ("invalid_indexes", "bytes"), ("index_bloat", "bloat_bytes")):
        found = results.get(check_id)
        if found is None:
            continue
        flagged = {f.object for f in found.findings if f.severity.value in ("warning", "critical")}
        for r in found.rows:
            if r.get("name") in flagged and r.get(field):
                bars.setdefault(check_id, {})[r["name"]] = r[field] / MiB
    if not bars:
        return None
    fig = go.Figure()
    for check_id, values in bars.items():
        fig.add_bar(name=check_id, x=list(values.values()), y=list(values), orientation="h")
    fig.update_layout(barmode="stack", title="Space held by flagged indexes", xaxis_title="MB",
                      margin=dict(l=300), height=max(300, 30 * sum(len(v) for v in bars.values()) + 120))
    return fig


def orphans(results):
    """Bars: orphaned rows per relationship (only those with orphans)."""
    import plotly.graph_objects as go

    rows = [r for r in _rows(results, "orphaned_rows") if r.get("orphans")]
    if not rows:
        return None
    fig = go.Figure(go.Bar(
        x=[r["name"] for r in rows], y=[r["orphans"] for r in rows],
        text=[f"→ {r['referenced_table']}" for r in rows], textposition="auto",
    ))
    fig.update_layout(title="Rows pointing at missing parents", yaxis_title="rows")
    return fig


def show_if(fig) -> None:
    """``rb.show(fig)`` when there is a figure, else a one-line note."""
    if fig is None:
        print("(nothing to chart)")
    else:
        show(fig)
