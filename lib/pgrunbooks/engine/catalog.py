"""Which runbooks exist: every notebook under the runbooks directory, named ``group/name``."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pgrunbooks.engine.html import report_stem
from pgrunbooks.errors import UsageError
from pgrunbooks.paths import runbooks_dir


@dataclass(frozen=True)
class Runbook:
    """A notebook under the runbooks directory, named ``group/name``."""

    name: str
    path: Path
    group: str
    title: str = ""
    purpose: str = ""
    mutates: bool = False
    metadata: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def stem(self) -> str:
        return report_stem(self.name)

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def load_runbook(path: Path, root: Path) -> Runbook:
    """Read a notebook's ``metadata.pgrunbooks`` (group, title, purpose, mutates)."""
    rel = path.relative_to(root).with_suffix("")
    name = rel.as_posix()
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read runbook {path}: {exc}") from None
    meta = dict((nb.get("metadata") or {}).get("pgrunbooks") or {})
    title = str(meta.get("title") or _first_heading(nb) or rel.name)
    return Runbook(
        name=name,
        path=path,
        group=str(meta.get("group") or (rel.parent.as_posix() if rel.parent.as_posix() != "." else "")),
        title=title,
        purpose=str(meta.get("purpose") or ""),
        mutates=bool(meta.get("mutates", False)),
        metadata=meta,
    )


def _first_heading(nb: dict) -> str | None:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", []))
            for line in source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return None


def discover(root: Path | None = None) -> list[Runbook]:
    """Every runbook under ``root`` (default :func:`~pgrunbooks.paths.runbooks_dir`), sorted by name."""
    root = root or runbooks_dir()
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") or p.startswith("_") for p in parts):
            continue  # .ipynb_checkpoints, _drafts
        found.append(load_runbook(path, root))
    return found


def find_runbook(name: str, root: Path | None = None) -> Runbook:
    """``group/name`` or a unique bare ``name`` -> :class:`Runbook`; unknown -> exit 3 with close matches."""
    root = root or runbooks_dir()
    clean = name.strip().removesuffix(".ipynb").strip("/")
    if not clean or ".." in Path(clean).parts:
        raise UsageError(f"invalid runbook name {name!r}")
    direct = root / f"{clean}.ipynb"
    if "/" in clean and direct.is_file():
        return load_runbook(direct, root)
    everything = discover(root)
    matches = [r for r in everything if r.name == clean or ("/" not in clean and r.short_name == clean)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(
            f"runbook name {name!r} is ambiguous: {', '.join(r.name for r in matches)}",
            hint="use the full group/name",
        )
    names = [r.name for r in everything]
    close = difflib.get_close_matches(clean, names, n=5, cutoff=0.75)
    close += [n for n in difflib.get_close_matches(clean, [r.short_name for r in everything], n=5, cutoff=0.6)]
    close = list(dict.fromkeys(r.name for c in close for r in everything if c in (r.name, r.short_name)))
    hint = f"did you mean: {', '.join(close[:5])}?" if close else "see `pgrunbooks list`"
    raise UsageError(f"unknown runbook {name!r} (in {root})", hint=hint)
