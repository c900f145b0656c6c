"""Plotly figures of an :class:`~pgrunbooks.evidence.model.Evidence`: wait events over time, top statements now.

Each returns a figure, or ``None`` when the evidence holds nothing to draw (a quiet server).
plotly is imported lazily: it is slow to import.
"""

from __future__ import annotations

from pgrunbooks.evidence.model import Evidence


def wait_events(ev: Evidence, width: float = 0.5):
    """Stacked areas: average active sessions per wait event (``CPU`` = running) over the window."""
    import plotly.graph_objects as go

    buckets = ev.buckets(width)
    if not buckets:
        return None
    times = sorted({b["t"] for b in buckets})
    waits = sorted({b["wait"] for b in buckets}, key=lambda w: (w != "CPU", w))
    by = {(b["t"], b["wait"]): b["sessions"] for b in buckets}
    fig = go.Figure()
    for w in waits:
        fig.add_scatter(x=times, y=[by.get((t, w), 0) for t in times], name=w, mode="lines", stackgroup="one")
    fig.update_layout(title=f"Active sessions by wait event ({ev.sample_count} samples over {ev.seconds:.1f} s)",
                      xaxis_title="seconds since the capture started", yaxis_title="sessions", legend_title="wait")
    return fig


def top_statements(ev: Evidence, n: int = 10):
    """Horizontal bars: statement time during the window (pg_stat_statements deltas), with calls and mean."""
    import plotly.graph_objects as go

    rows = [r for r in ev.statements if r["total_ms"] > 0][:n]
    if not rows:
        return None
    rows = rows[::-1]  # largest at the top
    labels = [_short(r["query"]) for r in rows]
    fig = go.Figure(go.Bar(
        x=[r["total_ms"] / 1000 for r in rows], y=[f"{r['queryid']}" for r in rows], orientation="h",
        text=[f"{r['calls']:,} calls · {r['mean_ms'] or 0:.1f} ms/call" for r in rows], hovertext=labels,
    ))
    fig.update_layout(title="Top statements now (time spent during the capture)", xaxis_title="seconds",
                      yaxis_title="query id", yaxis_type="category")
    return fig


def _short(text: str | None, n: int = 100) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"
