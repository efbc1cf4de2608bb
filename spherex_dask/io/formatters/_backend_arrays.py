# SPDX-License-Identifier: BSD-3-Clause
"""Lazy arrays without dask, for reads with ``chunks=False``.

xarray's own ``open_dataset(path)`` (no ``chunks``) gives variables that read on access,
without dask: ``.values`` reads the whole plane once, and indexing reads only what it
selects. These wrappers give the FITS and zarr formatters the same mode: each is an
``xarray.backends.BackendArray`` wrapped in ``LazilyIndexedArray``. Whole-image reads then
skip dask's graph, its scheduler and its defensive copy of a one-chunk result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

__all__ = ["lazy_variable_data", "ProxyBackendArray", "SpectralBackendArray"]


def lazy_variable_data(array: BackendArray) -> indexing.LazilyIndexedArray:
    """What an ``xarray.Variable`` holds for ``array``: read on access, never by dask."""
    return indexing.LazilyIndexedArray(array)


def _spans(key: tuple[Any, ...], shape: tuple[int, ...]) -> tuple[tuple[slice, ...], list[Any]]:
    """Step-1 slices covering ``key`` (ints and slices), and what to pick from the block read."""
    spans: list[slice] = []
    picks: list[Any] = []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, int | np.integer):
            i = int(k) + n if int(k) < 0 else int(k)
            spans.append(slice(i, i + 1))
            picks.append(0)
            continue
        start, stop, step = k.indices(n)
        if step == 1:
            spans.append(slice(start, max(start, stop)))
            picks.append(slice(None))
            continue
        wanted = np.arange(start, stop, step)
        if wanted.size == 0:
            spans.append(slice(0, 0))
            picks.append(slice(None))
            continue
        low = int(wanted.min())
        spans.append(slice(low, int(wanted.max()) + 1))
        picks.append(wanted - low)
    return tuple(spans), picks


def _pick(block: np.ndarray, picks: list[Any]) -> np.ndarray:
    """Apply per-axis picks (an int drops the axis; an index array selects along it)."""
    if all(isinstance(p, slice) for p in picks):
        return block
    for axis in reversed(range(len(picks))):
        pick = picks[axis]
        if not isinstance(pick, slice):
            block = np.take(block, pick, axis=axis)
    return block


class _BasicBackendArray(BackendArray):
    """A backend array whose ``_getitem`` takes a tuple of ints and slices (basic indexing);
    xarray turns other indexing into that plus numpy."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        raise NotImplementedError


class ProxyBackendArray(_BasicBackendArray):
    """A :class:`._fits_read.FitsArrayProxy` (or any array-like taking step-1 slices) as an
    xarray backend array supporting basic indexing (ints, slices with any step)."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self.shape = tuple(proxy.shape)
        self.dtype = np.dtype(proxy.dtype)

    def _getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        spans, picks = _spans(key, self.shape)
        return _pick(self.proxy[spans], picks)


class SpectralBackendArray(_BasicBackendArray):
    """Wavelength (``plane=0``) or bandwidth (1) at detector pixels ``ys`` x ``xs``, evaluated
    from a spectral model for the pixels indexed only."""

    def __init__(
        self,
        evaluate: Callable[[np.ndarray, np.ndarray, int], np.ndarray],
        ys: np.ndarray,
        xs: np.ndarray,
        plane: int,
    ) -> None:
        self.evaluate = evaluate
        self.ys, self.xs, self.plane = np.asarray(ys), np.asarray(xs), plane
        self.shape = (self.ys.size, self.xs.size)
        self.dtype = np.dtype(np.float32)

    def _getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        ky, kx = key
        ys = np.atleast_1d(self.ys[ky])
        xs = np.atleast_1d(self.xs[kx])
        out = self.evaluate(ys, xs, self.plane)
        if isinstance(ky, int | np.integer):
            out = out[0]
            if isinstance(kx, int | np.integer):
                return np.asarray(out[0])
            return out
        if isinstance(kx, int | np.integer):
            return out[:, 0]
        return out
