# SPDX-License-Identifier: BSD-3-Clause
"""Dask arrays whose chunks are read (or computed) by one task each.

:func:`read_array` builds the graph directly, one task per chunk, which costs a few
microseconds where ``dask.array.from_array`` costs about 150. The result is a plain
``dask.array.Array``: a subclass would not do, as xarray refuses to mix two chunked array
types in one operation (``raw.image - dark.image`` failed).

An array of one chunk, as ``Butler.get`` returns each image plane by default, also gets its
own ``compute`` (:class:`DirectCompute`): on a local scheduler, and while the array is as it
was made, it runs the chunk's task itself and returns that task's new array. ``.values``,
``numpy.asarray`` and ``.compute()`` of a plane then cost one read. Through dask's
``compute`` the same read costs about 1 ms more for building and scheduling a one-task graph,
and a copy of the result (dask's ``finalize`` copies a single chunk, since in general it may
be held by the graph or a worker; a task of this module makes a new array every time it
runs, so the copy is not needed). With a distributed client, a ``scheduler`` configured or
passed, or an array changed in place (``x[0, 0] = 1``), ``compute`` is dask's own. Arrays
derived from it (``x + 1``, ``x.persist()``, ``x[:10]``) are ordinary dask arrays.
"""

from __future__ import annotations

import itertools
import sys
import weakref
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

try:
    from dask._task_spec import Task
except ImportError:  # dask < 2024.12 takes tuple tasks
    Task = None  # type: ignore[misc, assignment]  # optional import fallback

__all__ = ["DirectCompute", "chunk_sizes", "read_array"]

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
    axes = [
        [slice(a, b) for a, b in itertools.pairwise(itertools.accumulate(sizes, initial=0))]
        for sizes in blocks
    ]
    call: tuple[Any, ...] = ()
    for index in itertools.product(*(range(len(sizes)) for sizes in blocks)):
        key = (name, *index)
        call = task(tuple(axis[i] for axis, i in zip(axes, index, strict=True)))
        graph[key] = Task(key, *call) if Task is not None else call
    meta = np.empty((0,) * len(blocks), dtype=dtype)
    layers = HighLevelGraph.from_collections(name, graph, dependencies=())
    array = da.Array(layers, name, blocks, meta=meta)
    if len(graph) == 1:  # an instance attribute: ``Array.__array__`` calls ``self.compute()``
        array.__dict__["compute"] = DirectCompute(array, call)
    return array


def local_scheduler() -> bool:
    """Whether ``compute()`` without arguments would run on a local (non-distributed) scheduler.

    The answer follows ``dask.base.get_scheduler``: the ``scheduler`` of the dask configuration
    if one is set, else a distributed client if one is the default (``distributed`` is not
    imported to find out).
    """
    import dask
    from dask.base import named_schedulers  # "threads", "sync", "processes"... all local

    configured = dask.config.get("scheduler", None)
    if configured is not None:
        return isinstance(configured, str) and configured.lower() in named_schedulers
    default_client = getattr(sys.modules.get("distributed"), "default_client", None)
    if default_client is None:  # not imported (or still importing): no client exists
        return True
    try:
        default_client()
    except ValueError:  # "No clients found"
        return True
    return False


class DirectCompute:
    """``compute`` of a one-chunk array made by :func:`read_array` (see the module's notes).

    Called without arguments, on a local scheduler, while the array keeps its name, it runs the
    chunk's task and returns its result (a new array); otherwise it is
    ``dask.array.Array.compute``.

    Parameters
    ----------
    array
        The array (held by a weak reference: this object lives in its ``__dict__``, and a
        strong one would make a reference cycle of every plane read). Unlike a bound method,
        ``x.compute`` saved apart therefore works only while ``x`` exists; called after,
        it raises ``ReferenceError``.
    call
        The chunk's task, ``(function, *arguments)``.
    """

    __slots__ = ("_array", "_call", "_name")

    def __init__(self, array: da.Array, call: tuple[Any, ...]) -> None:
        self._array = weakref.ref(array)
        self._name = array.name
        self._call = call

    def _live_array(self) -> da.Array:
        """The array, which must still exist."""
        array = self._array()
        if array is None:  # only reachable through a saved reference to us
            raise ReferenceError(
                f"dask array {self._name!r} of this compute() no longer exists: keep a "
                "reference to the array and call its compute()"
            )
        return array

    def __call__(self, **kwargs: Any) -> Any:
        """Compute the array (``dask.array.Array.compute``'s arguments are accepted)."""
        array = self._live_array()
        if kwargs or array.name != self._name or not local_scheduler():
            return da.Array.compute(array, **kwargs)
        function, *arguments = self._call
        return function(*arguments)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the array's ``compute``, as a bound method pickles: by its array.

        ``dask.delayed(x.compute)`` on the processes scheduler, ``client.submit(x.compute)`` or
        a process pool pickle it; the array unpickles as a plain dask array, whose ``compute``
        is dask's.
        """
        return (getattr, (self._live_array(), "compute"))

    def __repr__(self) -> str:
        return f"<compute of dask array {self._name!r}: one read on a local scheduler>"
