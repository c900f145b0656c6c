"""Plotly figures of the monthly runbooks (shown with ``rb.show``; plotly is imported on first use)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pgrunbooks.history.forecast import DiskForecast, LinearFit

_MB = 1024 * 1024
_SEVERITY_COLOURS = {"critical": "#b91c1c", "error": "#7c3aed", "warning": "#d97706", "info": "#2563eb",
                     "skipped": "#6b7280"}


def _go():
    import plotly.graph_objects as go

    return go


def monthly_bars(rows: list[dict[str, Any]], columns: dict[str, str], title: str, *, stacked: bool = False,
                 line: tuple[str, str] | None = None):
    """Bars per month for ``columns`` ({column: label}), optionally a line (column, label) on a second axis."""
    go = _go()
    months = [r["month"] for r in rows]
    fig = go.Figure([go.Bar(name=label, x=months, y=[r[c] for r in rows]) for c, label in columns.items()])
    if line:
        fig.add_trace(go.Scatter(name=line[1], x=months, y=[r[line[0]] for r in rows], yaxis="y2", mode="lines+markers"))
        fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "title": line[1], "showgrid": False})
    fig.update_layout(title=title, barmode="stack" if stacked else "group", xaxis_title="month",
                      legend={"orientation": "h"})
    return fig


def top_organizations(orgs: list[dict[str, Any]], limit: int = 10):
    """The biggest payers of the month: revenue bars, calls on hover."""
    go = _go()
    top = orgs[:limit][::-1]
    fig = go.Figure(go.Bar(x=[float(o["revenue_paid"]) for o in top], y=[o["name"] for o in top], orientation="h",
                           customdata=[[o["calls"], o["call_minutes"], o["sms_in"] + o["sms_out"]] for o in top],
                           hovertemplate="%{y}: %{x:,.2f} paid<br>%{customdata[0]} calls, %{customdata[1]} min, "
                                         "%{customdata[2]} SMS<extra></extra>"))
    fig.update_layout(title=f"Top {len(top)} organizations by revenue paid", xaxis_title="revenue paid")
    return fig


def database_growth(frame: pd.DataFrame, fit: LinearFit | None, origin, result: DiskForecast | None,
                    *, column: str = "cluster_bytes", horizon_days: int = 90):
    """Daily size (MB), the fitted trend and its prediction band ``horizon_days`` ahead."""
    go = _go()
    fig = go.Figure(go.Scatter(name="size", x=frame["taken_at"], y=frame[column] / _MB, mode="lines"))
    if fit is not None:
        start = 2 * fit.x_mean - fit.x_last  # the trend window's start (its points are evenly spread)
        xs = [start + day for day in range(0, int(fit.x_last - start + horizon_days) + 1)]
        when = [origin + pd.Timedelta(days=x) for x in xs]
        low, high = zip(*(fit.interval(x, result.level if result else 0.95) for x in xs))
        fig.add_trace(go.Scatter(name="band high", x=when, y=[v / _MB for v in high], mode="lines",
                                 line={"width": 0}, showlegend=False))
        fig.add_trace(go.Scatter(name="prediction interval", x=when, y=[v / _MB for v in low], mode="lines",
                                 line={"width": 0}, fill="tonexty", fillcolor="rgba(37,99,235,0.15)"))
        fig.add_trace(go.Scatter(name="trend", x=when, y=[fit.value(x) / _MB for x in xs], mode="lines",
                                 line={"dash": "dash"}))
    fig.update_layout(title="Size (MB), trend and forecast", yaxis_title="MB", legend={"orientation": "h"})
    return fig


def table_growth(frame: pd.DataFrame, relations: list[str]):
    """Monthly size (MB) of the given relations."""
    go = _go()
    fig = go.Figure()
    for relation in relations:
        part = frame[frame["relation"] == relation]
        fig.add_trace(go.Scatter(name=relation, x=part["month"], y=part["total_bytes"] / _MB, mode="lines+markers"))
    fig.update_layout(title="Table sizes per month (MB, tables + indexes + TOAST)", yaxis_title="MB",
                      legend={"orientation": "h"})
    return fig


def statements_months(frame: pd.DataFrame, month: str, previous: str):
    """Total time (s) of the top statements this month against last month."""
    go = _go()
    labels = [f"…{q[-6:]}" for q in frame["queryid"]]
    fig = go.Figure([
        go.Bar(name=previous, x=labels, y=frame["last_month_total_s"], hovertext=frame["query"]),
        go.Bar(name=month, x=labels, y=frame["total_s"], hovertext=frame["query"]),
    ])
    fig.update_layout(title="Top statements by total time (s): this month against last", barmode="group",
                      xaxis_title="queryid (end)")
    return fig


def findings_weeks(frame: pd.DataFrame):
    """Findings per week, stacked by severity."""
    go = _go()
    fig = go.Figure()
    for severity, colour in _SEVERITY_COLOURS.items():
        part = frame[frame["severity"] == severity]
        if len(part):
            fig.add_trace(go.Bar(name=severity, x=part["week"], y=part["findings"], marker_color=colour))
    fig.update_layout(title="Findings per week (distinct keys, suite runs)", barmode="stack", xaxis_title="week")
    return fig
