# SPDX-License-Identifier: BSD-3-Clause
"""Pause the cyclic garbage collector while building large graphs."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["paused_gc"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block (restored afterwards).

    Building or loading a quantum graph, or building the rows of a bulk insert, allocates
    millions of small long-lived objects and frees none, so the collector's repeated full
    scans are pure overhead (about a quarter of the build time at 100,000 quanta).

    Examples
    --------
    >>> with paused_gc():
    ...     gc.isenabled()
    False
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
