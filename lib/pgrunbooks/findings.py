"""The Finding contract: one shape for everything a check or runbook reports."""

from __future__ import annotations

import enum
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

# How a notebook hands its findings to the engine: a display output of this MIME type
# (published by ``pgrunbooks.notebook.record``, collected by ``pgrunbooks.engine.artifacts``).
FINDINGS_MIME = "application/vnd.pgrunbooks.findings+json"
# How a notebook hands a file to the engine (``pgrunbooks.notebook.attach``): a display output
# ``{"name": "evidence.json", "content": <JSON value>}`` that the engine writes beside the report
# as ``<runbook>.<name>`` and removes from the saved notebook and the HTML.
ATTACHMENT_MIME = "application/vnd.pgrunbooks.attachment+json"


class Severity(str, enum.Enum):
    """How bad a finding is. ``skipped`` and ``error`` say the check could not judge."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    SKIPPED = "skipped"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """Order used for ``--fail-on``: ok < info/skipped < warning < error < critical."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: "str | Severity") -> "Severity":
        try:
            return cls(value.value if isinstance(value, Severity) else str(value).lower())
        except ValueError:
            from pgrunbooks.errors import UsageError

            raise UsageError(
                f"unknown severity {value!r}", hint=f"use one of: {', '.join(s.value for s in cls)}"
            ) from None

    def __str__(self) -> str:
        return self.value


_RANK = {
    Severity.OK: 0,
    Severity.SKIPPED: 1,
    Severity.INFO: 1,
    Severity.WARNING: 2,
    Severity.ERROR: 3,
    Severity.CRITICAL: 4,
}

# Severities that reports count, in the order they are shown.
SEVERITY_ORDER = [Severity.CRITICAL, Severity.ERROR, Severity.WARNING, Severity.INFO, Severity.SKIPPED, Severity.OK]


@dataclass(frozen=True)
class Finding:
    """One result: what was checked, on which object, how bad, and what to do about it."""

    check_id: str
    severity: Severity
    title: str
    #: what it is about, as SQL names it: ``schema.name`` quoted like ``quote_ident()`` (``public."CallLog"``;
    #: see :mod:`pgrunbooks.names`), ``schema.table.column``, ``role:name``, ``pid:123``, ``queryid:…``
    object: str = ""
    value: Any = None
    threshold: Any = None
    detail: str = ""
    remediation: str = ""
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))

    @property
    def key(self) -> str:
        """Stable key to suppress this finding from params (``suppress: [key, …]``): ``check_id:object``,
        compared as text, so a quoted name is written quoted (``unused_indexes:public."CallLog_idx"``)."""
        return f"{self.check_id}:{self.object}" if self.object else self.check_id

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        d["key"] = self.key
        return json.loads(json.dumps(d, default=str))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Finding":
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**fields)


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Counts per severity, every severity present (zeros included), in report order."""
    counts = Counter(f.severity for f in findings)
    return {s.value: counts.get(s, 0) for s in SEVERITY_ORDER}


def worst(findings: Iterable[Finding]) -> Severity:
    """The most severe finding's severity (``ok`` when there are none)."""
    return max((f.severity for f in findings), key=lambda s: s.rank, default=Severity.OK)


def at_or_above(findings: Iterable[Finding], level: "Severity | str") -> list[Finding]:
    """Findings whose severity ranks at or above ``level``."""
    level = Severity.parse(level)
    return [f for f in findings if f.severity.rank >= level.rank and f.severity is not Severity.SKIPPED]


def suppress(findings: Iterable[Finding], keys: Iterable[str]) -> list[Finding]:
    """Drop findings whose key (or check id) is listed in ``keys``."""
    keys = set(keys or ())
    return [f for f in findings if f.key not in keys and f.check_id not in keys]
