"""Small formatting helpers for finding titles and details."""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def size(n: float | int | None) -> str:
    """Bytes as ``1.2 GB`` (binary units, like pg_size_pretty)."""
    if n is None:
        return "?"
    n = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def duration(seconds: float | int | None) -> str:
    """Seconds as ``45 s``, ``12 min``, ``3.5 h``, ``12 days``."""
    if seconds is None:
        return "?"
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def one_line(text: str | None, limit: int = 200) -> str:
    """A query on one line, shortened to ``limit`` characters."""
    if not text:
        return ""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural_word or word + 's')}"


def pct(x: float | None, digits: int = 0) -> str:
    return "?" if x is None else f"{x * 100:.{digits}f}%"
