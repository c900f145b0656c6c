"""Process-wide settings for the processes pgrunbooks itself starts (the CLI, the refresher).

Library code never calls this: a DBA's own kernel keeps whatever its imports do.
"""

from __future__ import annotations

import sys


def skip_slow_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax``.

    nbformat (under papermill and the reports) imports jsonschema, whose format checkers import
    ``rfc3987_syntax`` when it is installed (jupyter-events' ``format-nongpl`` extra brings it
    in). Version 1.1.0 compiles 38 lark grammars at import: 2-3 s of CPU in every process, for
    the ``iri`` formats that no notebook schema uses (python-jsonschema/jsonschema#1392, #1521).
    Marked missing, jsonschema simply leaves those two formats unchecked.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
