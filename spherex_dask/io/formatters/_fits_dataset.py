# SPDX-License-Identifier: BSD-3-Clause
"""Build the lazy ``xarray.Dataset`` of a SpectralImage FITS file.

Each variable is a dask array (:func:`._lazy_arrays.read_array`) whose tasks, one per chunk
and by default one per plane, call :class:`FitsArrayProxy` to read their own bytes; the
``wavelength``/``bandwidth`` coordinates are dask arrays evaluated per chunk from the
spectral model.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import xarray as xr
from dask.base import tokenize
from xarray.indexes import PandasIndex

from ...errors import FormatterError
from .._fs import is_local, local_path
from ._backend_arrays import ProxyBackendArray, lazy_variable_data
from ._fits_read import (
    IMAGE_PLANES,
    PSF_EXTNAME,
    FitsArrayProxy,
    FitsFile,
    HduInfo,
    file_origin,
    image_attrs,
    scan_fits,
)
from ._lazy_arrays import chunk_sizes, read_array
from ._regions import parse_bbox, parse_chunks, plane_chunks
from ._spectral_coords import lazy_spectral_coordinates
from ._spectral_wcs import ControlGrid, spectral_model_from_fits

__all__ = ["FITS_READ_PARAMETERS", "list_fits_components", "open_fits"]

logger = logging.getLogger(__name__)

#: Read parameters understood by the FITS image formatter.
FITS_READ_PARAMETERS = frozenset({"bbox", "chunks", "include_psf"})
SPATIAL_DIMS = ("y", "x")
PSF_DIMS = ("psf_zone", "psf_y", "psf_x")


def _image_planes(f: FitsFile) -> dict[str, HduInfo]:
    """Variable name -> HDU of every 2-D plane with the shape of the first one, layout order first."""
    ordered = [f.images[e] for e in IMAGE_PLANES if e in f.images]
    ordered += [i for n, i in f.images.items() if n not in IMAGE_PLANES and n != PSF_EXTNAME]
    planes: dict[str, HduInfo] = {}
    for info in ordered:
        if len(info.shape) != 2 or (planes and info.shape != next(iter(planes.values())).shape):
            logger.debug("HDU %s of %s is not an image plane; skipped", info.name, f.path)
            continue
        if info.name in IMAGE_PLANES:
            name = IMAGE_PLANES[info.name]
        elif info.name == "PRIMARY":
            name = "primary" if "IMAGE" in f.images else "image"
        else:
            name = info.name.lower() or f"hdu{info.index}"
        planes[name] = info
    return planes


def _lazy(
    proxy: FitsArrayProxy,
    chunks: tuple[int, ...],
    label: str,
    token: str,
    *,
    dask_backed: bool = True,
) -> Any:
    """A dask array over ``proxy``, named by label and the token of file, region and chunking;
    without ``dask_backed``, xarray's lazy array over it (reads what is indexed)."""
    if not dask_backed:
        return lazy_variable_data(ProxyBackendArray(proxy))
    blocks = chunk_sizes(proxy.shape, chunks)
    return read_array(
        f"read-fits-{label}-{token}",
        blocks,
        proxy.dtype,
        lambda slices: (operator.getitem, proxy, slices),
    )


@functools.lru_cache(maxsize=256)
def _pixel_index(dim: str, start: int, stop: int) -> PandasIndex:
    """The index of detector pixels ``start:stop`` along ``dim``, shared by every file read.

    Indexes are immutable, and building the two of each file was a third of opening it; the
    coordinate variables made from them are new for each dataset.
    """
    return PandasIndex(np.arange(start, stop), dim)


def _identity(path: str) -> tuple[Any, ...]:
    """What makes a file's content distinct for dask task names (path, and mtime/size locally)."""
    if is_local(path):
        stat = os.stat(local_path(path))
        return (path, stat.st_mtime_ns, stat.st_size)
    return (path,)


def _spectral_coords(
    f: FitsFile,
    planes: dict[str, HduInfo],
    ys: np.ndarray,
    xs: np.ndarray,
    chunks: tuple[int, int],
    token: str,
    *,
    dask_backed: bool = True,
) -> dict[str, Any]:
    header = next((i.header for i in planes.values() if "CTYPE1W" in i.header), None)
    if header is None:
        return {}
    fx0, fy0 = file_origin(header)
    model = spectral_model_from_fits(header, f.wave_table, x0=fx0, y0=fy0, path=f.path)
    if model is None:
        return {}
    if isinstance(model, ControlGrid):
        wl_attrs, bw_attrs = model.coordinate_attrs()
    else:
        wl_attrs = {"long_name": "central wavelength", "units": model.unit}
        bw_attrs = {"long_name": "bandwidth", "units": model.unit}
    return lazy_spectral_coordinates(
        model,
        ys,
        xs,
        chunks,
        dims=SPATIAL_DIMS,
        attrs=(wl_attrs, bw_attrs),
        token=token,
        dask_backed=dask_backed,
    )


def list_fits_components(
    path: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """Components present in a FITS file: its image planes, ``psf``, and the spectral coordinates."""
    f = scan_fits(path, storage_options)
    planes = _image_planes(f)
    names = list(planes)
    if PSF_EXTNAME in f.images:
        names.append("psf")
    if f.wave_table is not None and any("CTYPE1W" in i.header for i in planes.values()):
        names += ["wavelength", "bandwidth"]
    return tuple(names)


def open_fits(
    path: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    component: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset | xr.DataArray:
    """Open a FITS file lazily as a Dataset (or one component as a DataArray)."""
    params = dict(parameters or {})
    f = scan_fits(path, storage_options)
    planes = _image_planes(f)
    if not planes:
        raise FormatterError(
            f"FITS file {path!r} has no 2-D image HDU; HDUs: {sorted(f.images) or 'none'}."
        )
    first = next(iter(planes.values()))
    y0, y1, x0, x1 = region = (
        parse_bbox(params["bbox"], cast("tuple[int, int]", first.shape), path=path)
        if params.get("bbox") is not None
        else (0, first.shape[0], 0, first.shape[1])
    )
    itemsize = max(i.dtype.itemsize for i in planes.values())
    dask_backed = params.get("chunks") is not False  # False: read on access, without dask
    chunks = parse_chunks(
        params.get("chunks") if dask_backed else None,
        (y1 - y0, x1 - x0),
        itemsize,
        default=plane_chunks,
    )
    fx0, fy0 = file_origin(first.header)
    y_index, x_index = _pixel_index("y", fy0 + y0, fy0 + y1), _pixel_index("x", fx0 + x0, fx0 + x1)
    ys, xs = np.asarray(y_index.index), np.asarray(x_index.index)
    # The token names dask tasks only: a read without dask skips the stat and the hashing.
    token = tokenize(_identity(path), region, chunks) if dask_backed else ""
    coords: dict[str, Any] = {**y_index.create_variables(), **x_index.create_variables()}
    coords.update(_spectral_coords(f, planes, ys, xs, chunks, token, dask_backed=dask_backed))
    psf = f.images.get(PSF_EXTNAME)
    _check_component(path, component, [*planes, *(["psf"] if psf else []), *list(coords)[2:]])
    variables: dict[str, Any] = {}
    for name in [component] if component in planes else ([] if component else list(planes)):
        info = planes[name]
        proxy = FitsArrayProxy(
            path, info, origin=(y0, x0), shape=(y1 - y0, x1 - x0), storage_options=storage_options
        )
        attrs = image_attrs(info, (fx0, fy0), (fx0 + x0, fy0 + y0))
        data = _lazy(proxy, chunks, name, token, dask_backed=dask_backed)
        variables[name] = (SPATIAL_DIMS, data, attrs)
    if psf is not None and (component == "psf" or (not component and params.get("include_psf"))):
        variables["psf"] = _psf_variable(path, psf, token, storage_options, dask_backed)
    ds = xr.Dataset(
        variables,
        coords=xr.Coordinates(coords, indexes={"y": y_index, "x": x_index}),
        attrs=f.primary.attrs(),
    )
    ds.encoding["source"] = path
    if component is None:
        return ds
    if component in coords:
        # A shallow copy: its own DataArray, over the same lazy array (whose one-chunk
        # ``compute`` reads directly; a deep copy would make it a dask copy task).
        return ds.coords[component].copy(deep=False)
    return ds[component]


def _check_component(path: str, component: str | None, available: list[str]) -> None:
    if component is not None and component not in available:
        raise FormatterError(
            f"FITS file {path!r} has no component {component!r}; available: {', '.join(available)}."
        )


def _psf_variable(
    path: str,
    psf: HduInfo,
    token: str,
    storage_options: Mapping[str, Any] | None,
    dask_backed: bool = True,
) -> tuple[tuple[str, ...], Any, dict[str, Any]]:
    """The PSF cube as (dims, lazy array, attrs), read as one chunk."""
    origin = (0,) * len(psf.shape)
    proxy = FitsArrayProxy(
        path, psf, origin=origin, shape=psf.shape, storage_options=storage_options
    )
    dims = (
        PSF_DIMS[-len(psf.shape) :]
        if len(psf.shape) <= 3
        else tuple(f"psf_dim{i}" for i in range(len(psf.shape)))
    )
    return (
        dims,
        _lazy(proxy, psf.shape, "psf", token, dask_backed=dask_backed),
        psf.header.attrs(),
    )
