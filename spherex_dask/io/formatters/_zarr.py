# SPDX-License-Identifier: BSD-3-Clause
"""zarr v3 formatter: SpectralImage <-> a zarr store directory readable by plain xarray.

Written with ``Dataset.to_zarr(zarr_format=3, consolidated=True)``, so
``xarray.open_zarr(path)`` reads it without this package. Attrs are made JSON-safe
(numpy scalars, tuples...). Read parameters ``bbox`` (as for FITS: array pixels) and
``chunks`` (``False``: no dask, xarray's lazy arrays); components are the variables and
coordinates. A zarr "file" is a directory:
the datastore writes it under a temporary name and renames it into place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from .._fs import is_local, local_path, path_exists
from ._base import Formatter, check_parameters

__all__ = ["ZarrFormatter"]

logger = logging.getLogger(__name__)

ZARR_READ_PARAMETERS = frozenset({"bbox", "chunks"})


class ZarrFormatter(Formatter):
    """SpectralImage as a zarr v3 store (see the module docstring)."""

    name: ClassVar[str] = "zarr"
    extensions: ClassVar[tuple[str, ...]] = (".zarr",)
    storage_classes: ClassVar[tuple[str, ...]] = ("SpectralImage",)
    is_directory: ClassVar[bool] = True

    def supported_parameters(self) -> frozenset[str]:
        """``bbox`` and ``chunks``."""
        return ZARR_READ_PARAMETERS

    def read(
        self,
        path: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        component: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Open the store lazily with ``xarray.open_zarr``."""
        from ._zarr_io import open_zarr_dataset

        check_parameters(self, parameters, path)
        return open_zarr_dataset(
            path, parameters=parameters, component=component, storage_options=storage_options
        )

    def write(
        self, obj: Any, path: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        """Write a Dataset as a new zarr v3 store at ``path`` (refuses an existing one)."""
        from ._zarr_io import write_zarr_dataset

        write_zarr_dataset(obj, path, storage_options=storage_options)

    def can_read(self, path: str, *, storage_options: Mapping[str, Any] | None = None) -> bool:
        """Whether ``path`` is a directory with a zarr v3 ``zarr.json``."""
        if is_local(path):
            import os

            return os.path.isfile(os.path.join(local_path(path), "zarr.json"))
        try:
            return path_exists(path.rstrip("/") + "/zarr.json", storage_options)
        except (OSError, ValueError):
            return False

    def list_components(
        self, path: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> tuple[str, ...]:
        """Variables and non-index coordinates of the store."""
        from ._zarr_io import list_zarr_components

        return list_zarr_components(path, storage_options)
