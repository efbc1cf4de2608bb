# SPDX-License-Identifier: BSD-3-Clause
"""Dask arrays whose chunks are read (or computed) by one task each.

:func:`read_array` builds the graph directly, one task per chunk, which costs a few
microseconds where ``dask.array.from_array`` costs about 150. The result is a plain
``dask.array.Array``. (A subclass that skipped dask's copy in ``finalize`` for one-chunk
arrays saved 3 ms per 16 MB plane, but xarray refuses to mix two chunked array types in one
operation, so ``raw.image - dark.image`` failed; plain dask arrays it is.)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

try:
    from dask._task_spec import Task
except ImportError:  # dask < 2024.12 takes tuple tasks
    Task = None  # type: ignore[misc, assignment]  # optional import fallback

__all__ = ["chunk_sizes", "read_array"]

#: Makes the task of one chunk from its slices: ``(function, *arguments)``.
TaskFactory = Callable[[tuple[slice, ...]], tuple[Any, ...]]


def chunk_sizes(shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Dask chunk sizes along each axis for a chunk shape (the last one may be smaller).

    Examples
    --------
    >>> chunk_sizes((64, 48), (16, 20))
    ((16, 16, 16, 16), (20, 20, 8))
    """
    return tuple(
        (c,) * (n // c) + ((n % c,) if n % c else ()) for n, c in zip(shape, chunks, strict=True)
    )


def read_array(
    name: str, blocks: tuple[tuple[int, ...], ...], dtype: np.dtype, task: TaskFactory
) -> da.Array:
    """A dask array named ``name`` with chunk sizes ``blocks``; ``task(slices)`` gives
    the ``(function, *arguments)`` that returns a new array for the chunk at ``slices``."""
    graph: dict[Any, Any] = {}
    edges = [np.cumsum((0, *sizes)) for sizes in blocks]
    for index in itertools.product(*(range(len(sizes)) for sizes in blocks)):
        slices = tuple(slice(int(e[i]), int(e[i + 1])) for e, i in zip(edges, index, strict=True))
        key = (name, *index)
        call = task(slices)
        graph[key] = Task(key, *call) if Task is not None else call
    meta = np.empty((0,) * len(blocks), dtype=dtype)
    layers = HighLevelGraph.from_collections(name, graph, dependencies=())
    return da.Array(layers, name, blocks, meta=meta)
