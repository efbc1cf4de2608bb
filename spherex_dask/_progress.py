# SPDX-License-Identifier: BSD-3-Clause
"""Progress bars that suit where they are shown: a widget in Jupyter, text in a terminal,
plain lines in a log file."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any, TextIO

__all__ = ["LOG_INTERVAL", "progress_bar"]

#: Seconds between two progress lines written to a file that is not a terminal (a batch log).
LOG_INTERVAL = 60.0

#: The bar's format in a log: no bar, which only a terminal redraws in place.
LOG_FORMAT = (
    "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)


def progress_bar(*args: Any, **kwargs: Any) -> Any:
    """A ``tqdm`` bar: the notebook widget when ipywidgets is installed, else the text bar.

    ``tqdm.auto`` picks the widget in any Jupyter kernel and, without ipywidgets, warns
    ``IProgress not found`` and prints nothing useful; the text bar renders fine there.
    When the bar's file (standard error by default) is not a terminal, as in a batch job's
    log, the bar is written as one plain line every :data:`LOG_INTERVAL` seconds and at the
    end, instead of being redrawn with carriage returns many times a second.
    """
    in_notebook = _in_notebook()
    if in_notebook and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(*args, **kwargs)
    from tqdm.std import tqdm

    file = kwargs.get("file") or sys.stderr
    if not in_notebook and not _is_terminal(file):
        kwargs["file"] = _LineWriter(file)
        kwargs.setdefault("mininterval", LOG_INTERVAL)
        kwargs.setdefault("maxinterval", max(LOG_INTERVAL, kwargs["mininterval"]))
        if kwargs.get("total") is not None or (args and hasattr(args[0], "__len__")):
            kwargs.setdefault("bar_format", LOG_FORMAT)
    return tqdm(*args, **kwargs)


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where ``tqdm.auto`` picks the widget)."""
    shell = sys.modules.get("IPython")
    get_ipython = getattr(shell, "get_ipython", None)
    return get_ipython is not None and "IPKernelApp" in getattr(get_ipython(), "config", {})


def _is_terminal(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _LineWriter:
    """A file for ``tqdm`` that writes each state of the bar as a line of its own.

    ``tqdm`` redraws its line in place: ``"\\r" + text + padding``, then a ``"\\n"`` when it
    closes. Here the carriage return and the padding are dropped, each text ends with a new
    line, and a text equal to the previous one (the final redraw) is not written again.
    """

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.last = ""

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line and line != self.last:
            self.file.write(line + "\n")
            self.last = line
        return len(text)

    def flush(self) -> None:
        self.file.flush()
