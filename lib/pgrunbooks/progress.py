"""Progress of a long action (archive batches, VACUUM/REINDEX phases) without report noise.

``tqdm.auto`` in a kernel without ipywidgets warns "IProgress not found" (with the path of
tqdm's file) into the notebook, and a text bar leaves carriage-return frames in the report.
:func:`progress_bar` gives a tqdm widget where one can render (an IPython kernel with
ipywidgets: JupyterLab, where a person watches), and otherwise (papermill reports, nbval,
scripts) a :class:`FinalLine` that prints nothing until it
closes and then one line: what was done, in how long.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


#: In the environment of a kernel nobody watches (the engine's, ``make notebooks``, nbval):
#: progress is one final line there, never a widget.
HEADLESS = "PGRUNBOOKS_HEADLESS"


class FinalLine:
    """The part of tqdm's interface the actions use; prints one summary line at :meth:`close`."""

    def __init__(self, total: float | None = None, desc: str = "", unit: str = "it", unit_scale: bool = False, **_: Any):
        # Other tqdm options (smoothing, mininterval…) shape a live bar; a final line has none.
        self.total, self.desc, self.unit = total, desc, unit
        self.n: float = 0
        self.postfix = ""
        self._started = time.monotonic()
        self._closed = False

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        done = f"{self.n:,.0f}" + (f" of {self.total:,.0f}" if self.total else "")
        tail = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc}: {done} {self.unit} in {time.monotonic() - self._started:.1f} s{tail}", file=sys.stdout)

    def __enter__(self) -> "FinalLine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _widgets_available() -> bool:
    """An IPython kernel with ipywidgets that a person watches (JupyterLab), not a headless run."""
    if os.environ.get(HEADLESS) == "1":
        return False
    shell = sys.modules.get("IPython")
    if shell is None or shell.get_ipython() is None or "IPKernelApp" not in shell.get_ipython().config:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def progress_bar(total: float | None = None, desc: str = "", unit: str = "it", **options: Any):
    """A progress bar for ``total`` ``unit``s: a tqdm widget in JupyterLab, else one final line."""
    if _widgets_available():
        from tqdm.notebook import tqdm

        return tqdm(total=total, desc=desc, unit=unit, **options)
    return FinalLine(total=total, desc=desc, unit=unit, **options)
