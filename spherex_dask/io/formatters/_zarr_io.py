# SPDX-License-Identifier: BSD-3-Clause
"""Reading and writing zarr v3 stores with xarray (heavy imports live here)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ...errors import FileMissingError, FormatterError, SpherexDaskError
from .._fs import path_exists, staged_output
from ._headers import to_jsonable
from ._regions import default_chunks, parse_bbox, parse_chunks
from ._spectral_coords import add_spectral_coordinates, fold_spectral_coordinates
from ._zarr_write import can_write_direct, write_direct

__all__ = ["list_zarr_components", "open_zarr_dataset", "write_zarr_dataset"]

logger = logging.getLogger(__name__)

#: Datasets up to this size are computed before writing (one read pass, no store graph).
_LOAD_LIMIT = 512 * 2**20


def _open(
    path: str, storage_options: Mapping[str, Any] | None, *, dask_backed: bool = True
) -> xr.Dataset:
    """Open the store lazily (dask arrays, or xarray's lazy arrays without ``dask_backed``),
    with the ``wavelength``/``bandwidth`` its attrs describe."""
    if not path_exists(path, storage_options):
        raise FileMissingError(f"zarr store {path!r} does not exist.")
    try:
        ds = xr.open_zarr(
            path,
            zarr_format=3,
            consolidated=None,
            chunks={} if dask_backed else None,
            storage_options=dict(storage_options) if storage_options else None,
        )
    except SpherexDaskError:
        raise
    except Exception as err:  # zarr/xarray raise many types for a broken store
        raise FormatterError(f"Cannot read zarr store {path!r}: {err}") from err
    return add_spectral_coordinates(ds)


def list_zarr_components(
    path: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """Data variables, then non-index coordinates."""
    ds = _open(path, storage_options)
    return (*map(str, ds.data_vars), *(str(c) for c in ds.coords if c not in ds.dims))


def _spatial_dims(ds: xr.Dataset) -> tuple[str, str] | None:
    for name in ("image", *map(str, ds.data_vars)):
        if name in ds.data_vars and ds[name].ndim == 2:
            dims = ds[name].dims
            return (str(dims[0]), str(dims[1]))
    return None


def open_zarr_dataset(
    path: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    component: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset | xr.DataArray:
    """Open lazily, then select the ``bbox`` (array pixels) and rechunk as asked."""
    params = dict(parameters or {})
    dask_backed = params.get("chunks") is not False  # False: read on access, without dask
    if not dask_backed:
        params.pop("chunks")
    ds = _open(path, storage_options, dask_backed=dask_backed)
    dims = _spatial_dims(ds)
    if (params.get("bbox") is not None or params.get("chunks") is not None) and dims is None:
        raise FormatterError(f"zarr store {path!r} has no 2-D variable to apply bbox/chunks to.")
    if params.get("bbox") is not None and dims is not None:
        y0, y1, x0, x1 = parse_bbox(
            params["bbox"], (ds.sizes[dims[0]], ds.sizes[dims[1]]), path=path
        )
        ds = ds.isel({dims[0]: slice(y0, y1), dims[1]: slice(x0, x1)})
        ds = _shift_attrs(ds, dims)
    if params.get("chunks") is not None and dims is not None:
        cy, cx = parse_chunks(params["chunks"], (ds.sizes[dims[0]], ds.sizes[dims[1]]), 4)
        ds = ds.chunk({dims[0]: cy, dims[1]: cx})
    if component is None:
        return ds
    if component in ds.data_vars:
        return ds[component]
    if component in ds.coords and component not in ds.dims:
        return ds.coords[component].copy()
    available = list_zarr_components(path, storage_options)
    raise FormatterError(
        f"zarr store {path!r} has no component {component!r}; available: {', '.join(available)}."
    )


def _shift_attrs(ds: xr.Dataset, dims: tuple[str, str]) -> xr.Dataset:
    """Keep FITS WCS attrs describing the cut-out (as the FITS formatter does)."""
    from ._headers import pixel_origin, set_pixel_origin

    ycoord, xcoord = ds.coords.get(dims[0]), ds.coords.get(dims[1])
    if (
        ycoord is None
        or xcoord is None
        or ycoord.dtype.kind not in "iu"
        or xcoord.dtype.kind not in "iu"
    ):
        return ds
    x0, y0 = int(xcoord.values[0]), int(ycoord.values[0])
    for name in ds.data_vars:
        attrs = ds[name].attrs
        if (
            ds[name].dims == dims
            and any(str(k).startswith("CRPIX") for k in attrs)
            and pixel_origin(attrs) != (x0, y0)
        ):
            ds[name].attrs = set_pixel_origin(attrs, x0, y0)
    return ds


def _is_uniform(chunks: tuple[tuple[int, ...], ...]) -> bool:
    """Whether dask chunks are regular as zarr needs: equal sizes, a smaller last one allowed."""
    return all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in chunks)


def _clean(var: xr.Variable) -> tuple[xr.Variable, dict[str, Any]]:
    """A copy of ``var`` with JSON-safe attrs, no inherited encoding, and zarr-compatible chunks."""
    data = var.data
    encoding: dict[str, Any] = {}
    if var.chunks is not None:
        if not _is_uniform(var.chunks):
            data = var.chunk({d: max(c) for d, c in zip(var.dims, var.chunks, strict=True)}).data
        encoding["chunks"] = tuple(max(c) for c in var.chunks)
    elif var.ndim == 2:
        encoding["chunks"] = default_chunks((var.shape[0], var.shape[1]), var.dtype.itemsize)
    return xr.Variable(var.dims, data, attrs=to_jsonable(dict(var.attrs))), encoding


def _prepare(ds: xr.Dataset) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """A Dataset ready for ``to_zarr`` and its per-variable encoding."""
    encoding: dict[str, dict[str, Any]] = {}
    parts: dict[str, dict[str, xr.Variable]] = {"data": {}, "coords": {}}
    for kind, names in (("data", ds.data_vars), ("coords", ds.coords)):
        for name in names:
            var, enc = _clean(ds.variables[name])
            parts[kind][str(name)] = var
            if enc:
                encoding[str(name)] = enc
    out = xr.Dataset(parts["data"], coords=parts["coords"], attrs=to_jsonable(dict(ds.attrs)))
    return out, encoding


def load_for_writing(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its dask-backed variables computed, for a writer that only reads them.

    As ``ds.load()``, every variable is computed in one pass over one optimised graph; but a
    variable of one chunk gets the array its task returned, not the copy dask's ``compute``
    makes of it (a defensive copy, there so that a caller cannot write into an array held by
    the graph: 16 MB, several milliseconds, per plane of a 2040 x 2040 image). Variables of
    several chunks are assembled into one new array, as by ``compute``. ``ds`` itself is
    left as it was.
    """
    import dask
    import dask.array as da

    names = [n for n, v in ds.variables.items() if isinstance(v.data, da.Array)]
    if not names:
        return ds
    arrays = dask.optimize(*(ds.variables[n].data for n in names))
    grids = [a.to_delayed(optimize_graph=False) for a in arrays]
    computed = dask.compute(*(b for grid in grids for b in grid.flat), optimize_graph=False)
    out = ds.copy(deep=False)
    at = 0
    for name, grid in zip(names, grids, strict=True):
        blocks = list(computed[at : at + grid.size])
        at += grid.size
        out.variables[name].data = (
            blocks[0] if grid.size == 1 else np.block(_nest(blocks, grid.shape))
        )
    return out


def _nest(items: list[Any], shape: tuple[int, ...]) -> list[Any]:
    """``items`` (in C order) as nested lists of ``shape``, as ``numpy.block`` takes them."""
    if len(shape) == 1:
        return items
    step = len(items) // shape[0]
    return [_nest(items[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def write_zarr_dataset(
    obj: Any, path: str, *, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Write a new zarr v3 store with consolidated metadata (plain ``xr.open_zarr`` reads it).

    Grid-backed ``wavelength``/``bandwidth`` coordinates are stored as their model (see
    :mod:`._spectral_coords`). Numpy data of core dtypes is written by :mod:`._zarr_write`,
    anything else by ``Dataset.to_zarr``.
    """
    if isinstance(obj, xr.DataArray):
        obj = obj.to_dataset(name=str(obj.name or "image"))
    if not isinstance(obj, xr.Dataset):
        raise FormatterError(
            f"The zarr formatter writes xarray.Dataset objects, not {type(obj).__name__}."
        )
    ds, encoding = _prepare(fold_spectral_coordinates(obj))
    if ds.nbytes <= _LOAD_LIMIT:
        # Computing first and writing numpy arrays skips dask.array.store's graph building
        # and tokenizing (about 18 ms a dataset); larger datasets stream chunk by chunk.
        import dask

        with dask.config.set(scheduler="synchronous"):
            ds = load_for_writing(ds)
    if can_write_direct(ds):
        with staged_output(path, storage_options, is_directory=True) as local:
            if os.path.lexists(local):
                raise FormatterError(f"zarr store {path!r} exists already.")
            write_direct(ds, local, encoding)
        return
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not yet in the v3 spec; xarray reads it.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds.to_zarr(
            path,
            mode="w-",
            zarr_format=3,
            consolidated=True,
            encoding=encoding,
            storage_options=dict(storage_options) if storage_options else None,
        )
