"""The ``pgrunbooks`` command: a thin shell over the library.

Each command group lives in ``pgrunbooks.commands.<name>`` and exposes
``register(subparsers)``; this module only assembles them and maps errors to exit codes:
0 ok, 1 findings at or above ``--fail-on``, 2 a runbook or the tool failed, 3 bad usage.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import logging
import signal
import sys

from pgrunbooks import __version__
from pgrunbooks.errors import PgRunbooksError
from pgrunbooks.redact import install_logging_filter, redact
from pgrunbooks.startup import skip_slow_imports

COMMAND_MODULES = ["sandbox", "runbooks", "check", "history"]

EXIT_CODES_HELP = """exit codes:
  0  nothing at or above --fail-on
  1  findings at or above --fail-on
  2  a runbook (or the tool) failed; its report is still written
  3  bad usage: unknown runbook, target or parameter; nothing was run"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2; bad usage is 3 here
        self.print_usage(sys.stderr)
        self.exit(3, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pgrunbooks",
        description="Executable, parameterized runbooks for PostgreSQL (Supabase) maintenance and incidents.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pgrunbooks {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is being done")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"pgrunbooks.commands.{name}")
        module.register(sub)
    return parser


def _dump_stacks_on_sigusr1() -> None:
    """``kill -USR1 PID`` prints where every thread of a stuck run is, on stderr."""
    try:
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (AttributeError, ValueError, OSError):  # no SIGUSR1 (Windows), or stderr is not a file (in-process)
        pass


def main(argv: list[str] | None = None) -> int:
    skip_slow_imports()
    _dump_stacks_on_sigusr1()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    install_logging_filter()
    try:
        return int(args.handler(args) or 0)
    except PgRunbooksError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: one redacted line, not a traceback wall
        if args.verbose:
            raise
        print(f"error: {redact(f'{type(exc).__name__}: {exc}')}\n  hint: rerun with -v for details", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
