"""Metric history: snapshots of a target's metrics and pg_stat_statements, every run's findings,
restore drills; deltas and forecasts over them (``store``, ``capture``, ``series``, ``synthetic``,
``business``, ``trends``; ``diff`` and ``runs`` compare suite runs)."""
