"""Evidence for incident playbooks: capture it first (:func:`capture`), then rank the causes (:func:`rank`).

```python
from pgrunbooks.evidence import capture, rank

ev = capture(session, seconds=10, samples=500)      # read-only, bounded, works as pg_monitor
causes = rank(ev, "high_load")                      # most likely root cause first
```

``capture`` (:mod:`.capture`) samples ``pg_stat_activity`` and takes before/after snapshots of
pg_stat_statements and pg_stat_database (deltas: what is hot now); :class:`Evidence`
(:mod:`.model`) holds it and serialises it compactly; :mod:`.rank` turns it into
:class:`Cause` objects per playbook; :mod:`.charts` draws it (plotly).
"""

from pgrunbooks.evidence.capture import capture
from pgrunbooks.evidence.model import Cause, Evidence
from pgrunbooks.evidence.rank import PLAYBOOKS, archive_frees, findings, rank, verdict

__all__ = ["PLAYBOOKS", "Cause", "archive_frees", "Evidence", "capture", "findings", "rank", "verdict"]
