# SPDX-License-Identifier: BSD-3-Clause
"""A direct writer of in-memory xarray Datasets as zarr v3 stores.

``Dataset.to_zarr`` goes through zarr-python's asynchronous layer: about 25 round trips to
its event loop for five small arrays, 63 ms for a 256 x 256 image with flags and variance,
however small the data. This writer makes the same store by writing the files the zarr v3
specification defines -- one ``zarr.json`` per array, the root ``zarr.json`` with the
consolidated metadata, and one zstd-compressed chunk file per chunk -- in 6 ms for the same
image. The layout is exactly the one ``to_zarr(zarr_format=3, consolidated=True)`` writes
with zarr's default codecs (``bytes`` little-endian, then ``zstd`` level 0): variables keep
their dimension names in ``dimension_names``, data variables name their non-index coordinates
in a ``coordinates`` attribute, and chunks equal to the fill value are not written. Plain
``xarray.open_zarr`` and ``zarr.open_group`` read it; the tests check both.

Only numpy-backed variables of the core zarr v3 data types (bool, integers, floats,
complex) are written this way; :func:`can_write_direct` says whether a Dataset qualifies, and
the caller falls back to ``to_zarr`` otherwise (dask-backed data too large to load, dates,
strings).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["can_write_direct", "write_direct"]

#: numpy dtype kind -> whether the zarr v3 core data types cover it.
_CORE_KINDS = frozenset("biufc")
_ZSTD_LEVEL = 0


def can_write_direct(ds: xr.Dataset) -> bool:
    """Whether every variable of ``ds`` is a numpy array of a core zarr v3 data type, named
    so that it is one directory (no ``/``, not hidden)."""
    return all(
        isinstance(var.data, np.ndarray)
        and var.dtype.kind in _CORE_KINDS
        and var.dtype.itemsize > 0
        and not (var.dtype.kind == "f" and var.dtype.itemsize > 8)
        and isinstance(name, str)
        and name
        and "/" not in name
        and not name.startswith(".")
        for name, var in ds.variables.items()
    )


def _fill_value(dtype: np.dtype) -> Any:
    """The JSON fill value xarray's ``to_zarr`` gives a variable of this dtype."""
    if dtype.kind == "f":
        return "NaN"
    if dtype.kind == "c":
        return ["NaN", "NaN"]
    if dtype.kind == "b":
        return False
    return 0


def _pad_value(dtype: np.dtype) -> Any:
    """The fill value as a numpy scalar (edge chunks are padded with it)."""
    if dtype.kind == "c":
        return complex(np.nan, np.nan)
    return np.nan if dtype.kind == "f" else 0


def _is_fill(chunk: np.ndarray) -> bool:
    """Whether ``chunk`` holds only the fill value (zarr then writes no chunk file)."""
    if chunk.size == 0:
        return True
    if chunk.dtype.kind == "c":  # the fill value is NaN + NaN j
        return bool(np.isnan(chunk.real).all() and np.isnan(chunk.imag).all())
    if chunk.dtype.kind == "f":
        return bool(np.isnan(chunk.flat[0]) and np.isnan(chunk).all())
    return not chunk.flat[0] and not chunk.any()


def _codecs(dtype: np.dtype) -> list[dict[str, Any]]:
    data_bytes: dict[str, Any] = {"name": "bytes"}
    if dtype.itemsize > 1:
        data_bytes["configuration"] = {"endian": "little"}
    return [
        data_bytes,
        {"name": "zstd", "configuration": {"level": _ZSTD_LEVEL, "checksum": False}},
    ]


def _array_metadata(
    var: xr.Variable, chunks: tuple[int, ...], attrs: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "shape": list(var.shape),
        "data_type": var.dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": _fill_value(var.dtype),
        "codecs": _codecs(var.dtype),
        "attributes": dict(attrs),
        "dimension_names": [str(d) for d in var.dims],
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
    }


def _chunk_shape(var: xr.Variable, encoding: Mapping[str, Any]) -> tuple[int, ...]:
    chunks = encoding.get("chunks")
    if chunks is None or var.ndim == 0:
        return tuple(max(1, n) for n in var.shape)
    return tuple(max(1, min(int(c), max(1, n))) for c, n in zip(chunks, var.shape, strict=True))


def _coordinate_names(ds: xr.Dataset) -> tuple[dict[str, str], str]:
    """The ``coordinates`` attribute of each data variable, and the group's leftover one.

    As xarray's CF encoding: a data variable names the non-index coordinates whose dimensions
    it has; coordinates no data variable names go in the group's attribute.
    """
    extra = [str(c) for c in ds.coords if c not in ds.dims]
    named: set[str] = set()
    per_var: dict[str, str] = {}
    for name, var in ds.data_vars.items():
        mine = [c for c in extra if set(ds[c].dims) <= set(var.dims)]
        if mine:
            per_var[str(name)] = " ".join(mine)
            named.update(mine)
    return per_var, " ".join(c for c in extra if c not in named)


def _write_chunks(directory: str, data: np.ndarray, chunks: tuple[int, ...]) -> None:
    from numcodecs import Zstd

    codec = Zstd(level=_ZSTD_LEVEL, checksum=False)
    data = data.astype(data.dtype.newbyteorder("<"), copy=False)
    if data.ndim == 0:
        with open(os.path.join(directory, "c"), "wb") as f:
            f.write(codec.encode(np.ascontiguousarray(data)))
        return
    grid = [
        range(math.ceil(n / c)) if n else range(0) for n, c in zip(data.shape, chunks, strict=True)
    ]
    made: set[str] = set()
    for index in itertools.product(*grid):
        region = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunks, strict=True))
        block = data[region]
        if block.shape != chunks:  # edge chunks are stored whole, padded with the fill value
            padded = np.full(chunks, _pad_value(data.dtype), dtype=data.dtype)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        if _is_fill(block):
            continue
        parent = os.path.join(directory, "c", *map(str, index[:-1]))
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        with open(os.path.join(parent, str(index[-1])), "wb") as f:
            f.write(codec.encode(np.ascontiguousarray(block)))


def _dumps(document: Any) -> str:
    return json.dumps(document, allow_nan=True, separators=(",", ":"))


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_direct(
    ds: xr.Dataset, path: str, encoding: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Write ``ds`` (numpy-backed, JSON-safe attrs) as a new zarr v3 store at local ``path``.

    ``encoding`` may give ``chunks`` per variable (default: one chunk per variable).

    Raises
    ------
    FileExistsError
        If ``path`` exists.
    ValueError
        If ``ds`` does not qualify (see :func:`can_write_direct`).
    """
    if not can_write_direct(ds):
        raise ValueError("write_direct takes numpy variables of core zarr data types only")
    encoding = encoding or {}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    os.mkdir(path)
    per_var, leftover = _coordinate_names(ds)
    consolidated: list[str] = []
    for name, var in ds.variables.items():
        key = str(name)
        attrs = dict(var.attrs)
        if key in per_var:
            attrs["coordinates"] = per_var[key]
        chunks = _chunk_shape(var, encoding.get(key, {}))
        metadata = _array_metadata(var, chunks, attrs)
        directory = os.path.join(path, key)
        os.mkdir(directory)
        _write_chunks(directory, np.asarray(var.data), chunks)
        text = _dumps(metadata)
        _write_text(os.path.join(directory, "zarr.json"), text)
        consolidated.append(f"{_dumps(key)}:{text}")
    group_attrs = dict(ds.attrs)
    if leftover:
        group_attrs["coordinates"] = leftover
    # The root document embeds each array's already-serialised metadata (one encoding pass).
    root = _dumps(
        {
            "attributes": group_attrs,
            "zarr_format": 3,
            "consolidated_metadata": {"kind": "inline", "must_understand": False, "metadata": {}},
            "node_type": "group",
        }
    )
    marker = '"metadata":{}'
    at = root.rindex(marker) + len('"metadata":{')
    _write_text(os.path.join(path, "zarr.json"), root[:at] + ",".join(consolidated) + root[at:])
