# SPDX-License-Identifier: BSD-3-Clause
"""Progress bars that suit where they are shown: a widget in Jupyter, text in a terminal."""

from __future__ import annotations

import importlib.util
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(*args: Any, **kwargs: Any) -> Any:
    """A ``tqdm`` bar: the notebook widget when ipywidgets is installed, else the text bar.

    ``tqdm.auto`` picks the widget in any Jupyter kernel and, without ipywidgets, warns
    ``IProgress not found`` and prints nothing useful; the text bar renders fine there.
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(*args, **kwargs)
    from tqdm.std import tqdm

    return tqdm(*args, **kwargs)
