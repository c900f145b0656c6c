"""Where things are: the one function that finds the pgrunbooks project, and its folders.

A project is a folder holding this project's ``pyproject.toml``, a ``runbooks/`` folder (a
DBA's own repository of runbooks) or a ``.pgrunbooks`` folder (a sandbox).
:func:`project_root` finds the nearest one above the working directory. papermill runs a
notebook from the notebook's own folder, so a runbook's kernel finds the same project as the
command that started it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pgrunbooks.errors import UsageError

ENV_RUNBOOKS = "PGRUNBOOKS_RUNBOOKS"
ENV_PARAMS = "PGRUNBOOKS_PARAMS"
PACKAGE_DIR = Path(__file__).resolve().parent


def project_root(start: Path | None = None) -> Path | None:
    """The nearest project at or above ``start`` (default: the working directory), or ``None``.

    ``project_root(PACKAGE_DIR)`` is the checkout this package is installed from (an
    editable install)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "runbooks").is_dir() or (directory / ".pgrunbooks").is_dir() or _is_this_project(directory):
            return directory
    return None


def _is_this_project(directory: Path) -> bool:
    pyproject = directory / "pyproject.toml"
    return pyproject.is_file() and 'name = "pgrunbooks"' in pyproject.read_text(errors="ignore")


def _runbooks_project() -> Path | None:
    """The project whose ``runbooks/`` the engine runs: the working directory's, else (from a
    folder outside any project) the checkout this package is installed from."""
    for root in (project_root(), project_root(PACKAGE_DIR)):
        if root is not None and (root / "runbooks").is_dir():
            return root
    return None


def runbooks_dir() -> Path:
    """``$PGRUNBOOKS_RUNBOOKS``, else ``<project>/runbooks``."""
    env = os.environ.get(ENV_RUNBOOKS)
    if env:
        path = Path(env).expanduser().resolve()
        if not path.is_dir():
            raise UsageError(f"{ENV_RUNBOOKS}={env} is not a directory")
        return path
    root = _runbooks_project()
    if root is None:
        raise UsageError(
            "cannot find the runbooks directory",
            hint=f"run from the pgrunbooks checkout or set {ENV_RUNBOOKS}=/path/to/runbooks",
        )
    return root / "runbooks"


def params_dir() -> Path:
    """``$PGRUNBOOKS_PARAMS``, else ``<project>/params`` (next to ``runbooks/``)."""
    env = os.environ.get(ENV_PARAMS)
    if env:
        return Path(env).expanduser().resolve()
    root = _runbooks_project()
    if root is None:
        raise UsageError("cannot find the params directory", hint=f"set {ENV_PARAMS}=/path/to/params")
    return root / "params"


def audit_dir() -> Path:
    """``<project>/audit``, else ``./audit`` (``$PGRUNBOOKS_AUDIT_LOG`` overrides the file itself)."""
    return (project_root() or Path.cwd()) / "audit"
