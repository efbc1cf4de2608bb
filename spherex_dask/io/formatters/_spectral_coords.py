# SPDX-License-Identifier: BSD-3-Clause
"""The ``wavelength`` and ``bandwidth`` coordinates as lazy arrays, and how zarr stores keep them.

In memory, every image has per-pixel ``wavelength`` and ``bandwidth`` coordinates: dask
arrays evaluated chunk by chunk from the spectral model (:mod:`._spectral_wcs`). On disk, an
IRSA FITS file keeps only the model, as the ``WCS-WAVE`` lookup table; a zarr store does the
same. When both coordinates carry a control grid in their attrs (as every reader of this
package gives them) and agree with it, the zarr writer stores no pixel planes for them but
the group attribute ``spectral_coordinates``::

    {"dims": ["y", "x"],
     "interpolation": "bilinear",
     "wavelength": {"units": "um", "wcs_wave_x": [...], "wcs_wave_y": [...],
                    "wcs_wave_values": [[...], ...], "long_name": "central wavelength"},
     "bandwidth": {... the same keys ...}}

``wcs_wave_x``/``wcs_wave_y`` are the control points in detector pixels (the values of the
``x``/``y`` coordinates) and ``wcs_wave_values`` the values there; between control points the
coordinates are bilinear, beyond the outer ones linearly extrapolated. The zarr reader turns
the attribute back into the two lazy coordinates, and :func:`add_spectral_coordinates` does
the same for a store opened with plain ``xarray.open_zarr``. Writing two 2040 x 2040 float32
planes per image would otherwise double the bytes an output takes and the time to write it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ._headers import to_jsonable
from ._lazy_arrays import chunk_sizes, read_array
from ._spectral_wcs import AstropySpectralWcs, ControlGrid

__all__ = [
    "SPECTRAL_ATTR",
    "add_spectral_coordinates",
    "fold_spectral_coordinates",
    "lazy_spectral_coordinates",
]

#: Group attribute of a zarr store holding the spectral model instead of pixel planes.
SPECTRAL_ATTR = "spectral_coordinates"
NAMES = ("wavelength", "bandwidth")


def lazy_spectral_coordinates(
    model: ControlGrid | AstropySpectralWcs,
    ys: np.ndarray,
    xs: np.ndarray,
    chunks: tuple[tuple[int, ...], tuple[int, ...]] | tuple[int, int],
    *,
    dims: tuple[str, str],
    attrs: tuple[Mapping[str, Any], Mapping[str, Any]],
    token: str | None = None,
    dask_backed: bool = True,
) -> dict[str, tuple[tuple[str, str], Any, dict[str, Any]]]:
    """``wavelength`` and ``bandwidth`` at detector pixels ``ys`` x ``xs``, as dask arrays.

    ``chunks`` is a chunk shape or dask's chunk sizes per axis; each chunk evaluates the
    model at its own pixels. The arrays of a :class:`ControlGrid` are named by the token of
    the grid (as the attrs hold it), the pixels and the chunks, so that the zarr writer can
    tell, without computing them, that they are the grid's values; other models need
    ``token`` (their source file's). With ``dask_backed=False`` the coordinates are xarray
    lazy arrays instead, evaluated for the pixels indexed when read.
    """
    ys, xs = np.asarray(ys), np.asarray(xs)
    if not dask_backed:
        from ._backend_arrays import SpectralBackendArray, lazy_variable_data

        return {
            name: (
                dims,
                lazy_variable_data(SpectralBackendArray(model.evaluate_plane, ys, xs, plane)),
                dict(attrs[plane]),
            )
            for plane, name in enumerate(NAMES)
        }
    blocks = (
        chunk_sizes((ys.size, xs.size), chunks)  # type: ignore[arg-type]
        if all(isinstance(c, int) for c in chunks)
        else tuple(tuple(int(n) for n in c) for c in chunks)  # type: ignore[union-attr]
    )
    if isinstance(model, ControlGrid):
        token = _grid_token(model, ys, xs, blocks)
    elif token is None:
        raise ValueError("lazy_spectral_coordinates needs a token for a non-grid model")
    coords: dict[str, tuple[tuple[str, str], Any, dict[str, Any]]] = {}
    for plane, name in enumerate(NAMES):

        def task(slices: tuple[slice, ...], plane: int = plane) -> tuple[Any, ...]:
            return (model.evaluate_plane, ys[slices[0]], xs[slices[1]], plane)

        array = read_array(
            f"{name}-{token}",
            blocks,
            np.dtype(np.float32),
            task,
        )
        coords[name] = (dims, array, dict(attrs[plane]))
    return coords


def _grid_token(
    grid: ControlGrid, ys: np.ndarray, xs: np.ndarray, blocks: tuple[tuple[int, ...], ...]
) -> str:
    """The dask-name token of grid-backed coordinates: the grid, the pixels and the chunks."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{grid.unit}|{blocks}|{ys.dtype.str}|{xs.dtype.str}".encode())
    for array in (grid.x, grid.y, grid.wavelength, grid.bandwidth):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(ys).tobytes())
    digest.update(np.ascontiguousarray(xs).tobytes())
    return digest.hexdigest()


def _made_from_grid(grid: ControlGrid, wavelength: xr.DataArray, bandwidth: xr.DataArray) -> bool:
    """Whether both are the untouched lazy arrays :func:`lazy_spectral_coordinates` made from
    the grid in their attrs, at these pixels (their dask names say so; nothing is computed)."""
    ydim, xdim = wavelength.dims
    data = wavelength.data, bandwidth.data
    if not all(hasattr(d, "dask") and hasattr(d, "name") for d in data):
        return False
    ys, xs = np.asarray(wavelength[ydim].values), np.asarray(wavelength[xdim].values)
    token = _grid_token(grid, ys, xs, tuple(tuple(c) for c in wavelength.chunks or ()))
    return bool(data[0].name == f"wavelength-{token}" and data[1].name == f"bandwidth-{token}")


def _agrees(grid: ControlGrid, wavelength: xr.DataArray, bandwidth: xr.DataArray) -> bool:
    """Whether the coordinates equal the grid's values: by their dask names when they were
    made from it, else at the corners and the centre (computed)."""
    if _made_from_grid(grid, wavelength, bandwidth):
        return True
    ydim, xdim = wavelength.dims
    ny, nx = wavelength.shape
    iy = np.array([0, 0, ny - 1, ny - 1, ny // 2])
    ix = np.array([0, nx - 1, 0, nx - 1, nx // 2])
    ys = np.asarray(wavelength[ydim].values)[iy]
    xs = np.asarray(wavelength[xdim].values)[ix]
    samples: list[Any] = [
        coord.data.vindex[iy, ix]
        if coord.chunks is not None
        else np.array([coord[i, j].values for i, j in zip(iy, ix, strict=True)])  # lazy: 5 reads
        for coord in (wavelength, bandwidth)
    ]
    if any(hasattr(s, "dask") for s in samples):
        import dask

        samples = list(dask.compute(*samples, scheduler="synchronous"))
    for plane, got in enumerate(samples):
        want = [grid.evaluate_plane(ys[i : i + 1], xs[i : i + 1], plane)[0, 0] for i in range(5)]
        if not np.allclose(np.asarray(got), want, rtol=1e-5, atol=0, equal_nan=True):
            return False
    return True


def fold_spectral_coordinates(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without its grid-backed ``wavelength``/``bandwidth``, the grid in :data:`SPECTRAL_ATTR`.

    A Dataset whose spectral coordinates carry no control grid, do not agree with it, or whose
    pixel coordinates are not integers is returned unchanged (the planes are then written).
    """
    if not all(name in ds.coords for name in NAMES):
        return ds
    wavelength, bandwidth = ds.coords["wavelength"], ds.coords["bandwidth"]
    if wavelength.ndim != 2 or wavelength.dims != bandwidth.dims:
        return ds
    if any(d not in ds.indexes or ds[d].dtype.kind not in "iu" for d in wavelength.dims):
        return ds
    if 0 in wavelength.shape:
        return ds
    grid = ControlGrid.from_coordinate_attrs(dict(wavelength.attrs), dict(bandwidth.attrs))
    if grid is None or not _agrees(grid, wavelength, bandwidth):
        return ds
    spec = {
        "dims": [str(d) for d in wavelength.dims],
        "interpolation": "bilinear",
        "wavelength": to_jsonable(dict(wavelength.attrs)),
        "bandwidth": to_jsonable(dict(bandwidth.attrs)),
    }
    return ds.drop_vars(list(NAMES)).assign_attrs({SPECTRAL_ATTR: spec})


def add_spectral_coordinates(ds: xr.Dataset, *, dask_backed: bool | None = None) -> xr.Dataset:
    """Rebuild the lazy ``wavelength``/``bandwidth`` of a Dataset read from a zarr store.

    A Dataset without the :data:`SPECTRAL_ATTR` attribute (or with an unusable one) is
    returned unchanged. The coordinates are dask arrays chunked as the Dataset's first 2-D
    variable on the same dimensions, or (``dask_backed=False``, the default when no variable
    is dask-backed) xarray lazy arrays evaluated on access.

    Examples
    --------
    A store written by this package, opened with plain xarray::

        import xarray as xr
        from spherex_dask.io import add_spectral_coordinates

        ds = add_spectral_coordinates(xr.open_zarr(path))
        ds.wavelength  # lazy, per pixel
    """
    spec = ds.attrs.get(SPECTRAL_ATTR)
    if not isinstance(spec, Mapping):
        return ds
    try:
        ydim, xdim = (str(d) for d in spec["dims"])
        attrs = (dict(spec["wavelength"]), dict(spec["bandwidth"]))
    except (KeyError, TypeError, ValueError):
        return ds
    grid = ControlGrid.from_coordinate_attrs(*attrs)
    if grid is None or ydim not in ds.coords or xdim not in ds.coords:
        return ds
    ys, xs = np.asarray(ds[ydim].values), np.asarray(ds[xdim].values)
    chunks: Any = (ys.size, xs.size)
    for var in ds.data_vars.values():
        if var.dims == (ydim, xdim) and var.chunks is not None:
            chunks = var.chunks
            break
    if dask_backed is None:
        dask_backed = any(var.chunks is not None for var in ds.data_vars.values())
    coords = lazy_spectral_coordinates(
        grid, ys, xs, chunks, dims=(ydim, xdim), attrs=attrs, dask_backed=dask_backed
    )
    out = ds.assign_coords(coords)
    out.attrs = {k: v for k, v in ds.attrs.items() if k != SPECTRAL_ATTR}
    return out
