# SPDX-License-Identifier: BSD-3-Clause
"""Read parameters shared by the image formatters: ``bbox`` regions and ``chunks``.

A ``bbox`` selects a rectangle in array pixels (0-based, end exclusive), in any of these
forms::

    (y0, y1, x0, x1)                        # a 4-tuple
    (slice(y0, y1), slice(x0, x1))          # two slices, None/negative allowed
    {"y": (y0, y1), "x": (x0, x1)}          # a mapping of dimension to pair or slice

Missing dimensions in the mapping form mean the whole axis.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import FormatterError

__all__ = ["Region", "default_chunks", "parse_bbox", "parse_chunks", "plane_chunks"]

#: Target size of one chunk of an image (bytes).
CHUNK_BYTES = 8 * 1024 * 1024
#: Planes up to this size are read as one chunk by default (bytes).
PLANE_CHUNK_BYTES = 64 * 1024 * 1024

Region = tuple[int, int, int, int]


def _as_slice(value: Any, what: str) -> slice:
    if isinstance(value, slice):
        if value.step not in (None, 1):
            raise FormatterError(f"bbox {what} must have step 1, got {value!r}.")
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        return slice(value[0], value[1])
    raise FormatterError(f"bbox {what} must be a (start, stop) pair or a slice, got {value!r}.")


def _integers(bbox: Any) -> Region:
    """The four values of a ``(y0, y1, x0, x1)`` bbox as ints (numpy integers included)."""
    try:
        y0, y1, x0, x1 = (operator.index(v) for v in bbox)
    except TypeError:
        raise FormatterError(
            f"bbox {tuple(bbox)!r} must hold four integers (y0, y1, x0, x1); for an open end "
            "use slices, e.g. (slice(0, None), slice(-16, None))."
        ) from None
    return (y0, y1, x0, x1)


def parse_bbox(bbox: Any, shape: tuple[int, int], *, path: str = "") -> Region:
    """Normalise a ``bbox`` parameter to ``(y0, y1, x0, x1)`` within ``shape`` (ny, nx).

    Raises
    ------
    FormatterError
        If the form is unknown or the box is empty or outside the image.

    Examples
    --------
    >>> parse_bbox((10, 20, 0, 5), (64, 64))
    (10, 20, 0, 5)
    >>> parse_bbox({"x": slice(-4, None)}, (64, 64))
    (0, 64, 60, 64)
    >>> parse_bbox((0, 100, 0, 5), (64, 64), path="a.fits")
    Traceback (most recent call last):
    ...
    spherex_dask.errors.FormatterError: bbox (0, 100, 0, 5) reaches outside the 64 x 64 image in 'a.fits' (y 0..64, x 0..64).
    """
    if isinstance(bbox, Mapping):
        unknown = set(bbox) - {"y", "x"}
        if unknown:
            raise FormatterError(f"bbox keys must be 'y' and 'x', got {sorted(unknown)}.")
        ys = _as_slice(bbox.get("y", slice(None)), "y")
        xs = _as_slice(bbox.get("x", slice(None)), "x")
    elif isinstance(bbox, tuple | list) and len(bbox) == 2:
        ys, xs = _as_slice(bbox[0], "y"), _as_slice(bbox[1], "x")
    elif isinstance(bbox, tuple | list) and len(bbox) == 4:
        y0, y1, x0, x1 = _integers(bbox)
        if not (y0 < y1 and x0 < x1):
            raise FormatterError(
                f"bbox {tuple(bbox)} is empty or reversed: (y0, y1, x0, x1) needs y0 < y1 and "
                "x0 < x1 (0-based pixels, end exclusive)."
            )
        if not (0 <= y0 and y1 <= shape[0] and 0 <= x0 and x1 <= shape[1]):
            raise FormatterError(
                f"bbox {tuple(bbox)} reaches outside the {shape[0]} x {shape[1]} image in "
                f"{path!r} (y 0..{shape[0]}, x 0..{shape[1]})."
            )
        return (y0, y1, x0, x1)
    else:
        raise FormatterError(
            f"Unknown bbox form {bbox!r}; use (y0, y1, x0, x1), (slice_y, slice_x) or "
            "{'y': (y0, y1), 'x': (x0, x1)}."
        )
    y0, y1, _ = ys.indices(shape[0])
    x0, x1, _ = xs.indices(shape[1])
    if y1 <= y0 or x1 <= x0:
        raise FormatterError(f"bbox {bbox!r} selects no pixels of the image in {path!r}.")
    return (y0, y1, x0, x1)


def default_chunks(
    shape: tuple[int, int], itemsize: int, *, target: int = CHUNK_BYTES
) -> tuple[int, int]:
    """Row-band chunks of about ``target`` bytes, full width, equal heights.

    Examples
    --------
    >>> default_chunks((2040, 2040), 4)
    (1020, 2040)
    >>> default_chunks((64, 64), 4)
    (64, 64)
    """
    ny, nx = shape
    bands = max(1, math.ceil(ny * nx * itemsize / target))
    return (math.ceil(ny / bands), nx)


def plane_chunks(shape: tuple[int, int], itemsize: int) -> tuple[int, int]:
    """Default read chunks: the whole plane up to :data:`PLANE_CHUNK_BYTES`, else row bands
    of about that size.

    One chunk per plane means one task and one read per variable, and no copy to assemble
    the array; ``chunks`` asks for smaller ones.

    Examples
    --------
    >>> plane_chunks((2040, 2040), 4)
    (2040, 2040)
    >>> plane_chunks((8192, 8192), 4)
    (2048, 8192)
    """
    return default_chunks(shape, itemsize, target=PLANE_CHUNK_BYTES)


def parse_chunks(
    chunks: Any,
    shape: tuple[int, int],
    itemsize: int,
    *,
    default: Callable[[tuple[int, int], int], tuple[int, int]] = default_chunks,
) -> tuple[int, int]:
    """Normalise a ``chunks`` parameter: None, an int (square), a pair or ``{"y":, "x":}``.

    As in xarray: ``-1`` or ``None`` for one axis means the whole axis, ``"auto"`` (for both
    or for one axis) lets dask choose from its ``array.chunk-size`` setting, and
    ``chunks=None`` or ``{}`` gives ``default(shape, itemsize)``.

    Raises
    ------
    FormatterError
        For another form, a dimension other than ``y`` and ``x``, or a size that is not a
        positive integer.

    Examples
    --------
    >>> parse_chunks({"y": 16}, (64, 64), 4)
    (16, 64)
    >>> parse_chunks("auto", (64, 64), 4)
    (64, 64)
    """
    if chunks is None or (isinstance(chunks, Mapping) and not chunks):
        return default(shape, itemsize)
    if (isinstance(chunks, numbers.Integral) and not isinstance(chunks, bool)) or (
        isinstance(chunks, str) and chunks == "auto"
    ):
        pair: tuple[Any, Any] = (chunks, chunks)
    elif isinstance(chunks, Mapping):
        unknown = sorted(map(str, set(chunks) - {"y", "x"}))
        if unknown:
            raise FormatterError(
                f"chunks {dict(chunks)!r} names {', '.join(map(repr, unknown))}; the image "
                "dimensions are 'y' and 'x'."
            )
        pair = (chunks.get("y"), chunks.get("x"))
    elif isinstance(chunks, tuple | list) and len(chunks) == 2:
        pair = (chunks[0], chunks[1])
    else:
        raise FormatterError(
            f"Unknown chunks form {chunks!r}; use an int, (cy, cx), {{'y': cy, 'x': cx}} or "
            "'auto'."
        )
    result: list[Any] = []
    for value, size in zip(pair, shape, strict=True):
        integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if value is None or (integer and value == -1):
            result.append(size)
        elif isinstance(value, str) and value == "auto":
            result.append("auto")
        elif integer and value > 0:
            result.append(min(int(value), size))
        else:
            raise FormatterError(
                f"Chunk sizes must be positive integers, -1 (the whole axis) or 'auto', got "
                f"{chunks!r}."
            )
    if "auto" in result:
        result = _auto_chunks(result, shape, itemsize)
    return (result[0], result[1])


def _auto_chunks(pair: list[Any], shape: tuple[int, int], itemsize: int) -> list[int]:
    """dask's choice for the ``"auto"`` axes of ``pair`` (its first, largest chunk each)."""
    import numpy as np
    from dask.array.core import normalize_chunks

    blocks = normalize_chunks(tuple(pair), shape, dtype=np.dtype((np.void, itemsize)))
    return [axis[0] for axis in blocks]
