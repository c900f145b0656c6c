"""Re-execute the committed notebooks against a freshly seeded sandbox (``make notebooks``).

The committed outputs are what a reader sees on the repository page and what nbval
compares against in ``make test``; they must come from the deterministic seed
(scale 1, every fault planted) so that the same outputs come back every time.
Afterwards each notebook is normalised: kernel ``python3``, no execution timings,
no absolute paths of the machine that produced it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import psycopg

from pgrunbooks.paths import PACKAGE_DIR, project_root
from pgrunbooks.progress import HEADLESS
from pgrunbooks.startup import skip_slow_imports

PROJECT = project_root(PACKAGE_DIR)  # the checkout whose committed notebooks these are
NOTEBOOK_DIRS = ("runbooks", "notebooks")
SEED_SCALE = 1.0
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def committed_notebooks(root: Path = PROJECT) -> list[Path]:
    """Every notebook a reader sees: ``runbooks/**`` and ``notebooks/**``, sorted."""
    found: list[Path] = []
    for folder in NOTEBOOK_DIRS:
        found += [p for p in (root / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found)


def seed_sandbox(home: Path | None = None, *, scale: float = SEED_SCALE) -> "object":
    """Start the sandbox and (re)create ``victorysync`` with every planted fault; returns its status."""
    from pgrunbooks import seed as seeding
    from pgrunbooks.sandbox import ADMIN_USER, DEFAULT_DATABASE, Sandbox, create_database, drop_database

    status = Sandbox(home).start()
    admin = status.conninfo("postgres", ADMIN_USER)
    drop_database(admin, DEFAULT_DATABASE)
    create_database(admin, DEFAULT_DATABASE)
    with psycopg.connect(status.conninfo(DEFAULT_DATABASE, ADMIN_USER), autocommit=True) as conn:
        seeding.seed(conn, scale=scale, faults="all")
        # Statement statistics are cluster-wide; start the notebooks from the seed's own.
    return status


def normalise(path: Path, root: Path = PROJECT) -> None:
    """Kernel python3, no timings, no machine paths: stable diffs and nothing private."""
    nb = json.loads(path.read_text())
    nb.setdefault("metadata", {})["kernelspec"] = dict(KERNELSPEC)
    nb["metadata"].pop("papermill", None)
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {})
        meta.pop("papermill", None)
        meta.pop("execution", None)
        for output in cell.get("outputs", []):
            _scrub_output(output, root)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _scrub_output(output: dict, root: Path) -> None:
    patterns = [(re.escape(str(root)), "."), (r"/tmp/[A-Za-z0-9_.-]+", "/tmp/…"), (r"/root/[^\s\"'<>]*", "~/…")]

    def clean(text: str) -> str:
        for pattern, replacement in patterns:
            text = re.sub(pattern, replacement, text)
        return text

    if "text" in output:
        output["text"] = _map_text(output["text"], clean)
    if "traceback" in output:
        output["traceback"] = [clean(line) for line in output["traceback"]]
    for mime, value in output.get("data", {}).items():
        if isinstance(value, (str, list)) and (mime.startswith("text/") or mime.endswith("+json") is False):
            output["data"][mime] = _map_text(value, clean)


def _map_text(value, fn):
    return [fn(v) for v in value] if isinstance(value, list) else fn(value)


def refresh(paths: list[Path], *, timeout: int = 600) -> list[tuple[Path, str]]:
    """Execute each notebook in place with its default parameters; returns (path, error) failures."""
    import papermill as pm

    failures = []
    for path in paths:
        print(f"executing {path.relative_to(PROJECT) if path.is_relative_to(PROJECT) else path}", file=sys.stderr)
        try:
            pm.execute_notebook(
                str(path), str(path), kernel_name="python3", cwd=str(path.parent),
                progress_bar=False, execution_timeout=timeout,
            )
        except Exception as exc:  # keep going: report every broken notebook at once
            failures.append((path, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
        normalise(path)
    return failures


def _refresh_on_fresh_sandbox(paths: list[Path]) -> list[tuple[Path, str]]:
    """Execute on a brand-new server, as nbval does in ``make test``.

    Cluster-wide statistics (checkpoints, statement statistics) remember everything a
    long-lived sandbox went through; outputs made there would not be the ones nbval gets.
    """
    import os
    import shutil
    import tempfile

    from pgrunbooks.sandbox import Sandbox

    home = Path(tempfile.mkdtemp(prefix="pgrb-refresh-"))
    home.chmod(0o755)  # the server may run as the unprivileged pgrunbooks user
    previous = os.environ.get("PGRUNBOOKS_HOME")
    try:
        seed_sandbox(home)
        os.environ["PGRUNBOOKS_HOME"] = str(home)  # the kernels' target "local"
        os.environ[HEADLESS] = "1"  # progress as one final line, as in reports
        return refresh(paths)
    finally:
        if previous is None:
            os.environ.pop("PGRUNBOOKS_HOME", None)
        else:
            os.environ["PGRUNBOOKS_HOME"] = previous
        Sandbox(home).stop()
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    skip_slow_imports()
    parser = argparse.ArgumentParser(
        prog="python -m pgrunbooks.refresh",
        description="Seed a fresh sandbox deterministically and re-execute the committed notebooks in place.",
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to refresh (default: all)")
    parser.add_argument("--no-seed", action="store_true", help="reuse the current sandbox ($PGRUNBOOKS_HOME) and its data")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or committed_notebooks()
    if args.no_seed:
        failures = refresh(paths)
    else:
        failures = _refresh_on_fresh_sandbox(paths)
    for path, error in failures:
        print(f"FAILED {path}: {error}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
