# SPDX-License-Identifier: BSD-3-Clause
"""Helpers shared by the image tasks: names of the image planes and input checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import PipelineError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["IMAGE", "FLAGS", "VARIANCE", "STORAGE_CLASS", "describe", "require_image"]

#: Storage class of the SPHEREx image datasets (an ``xarray.Dataset`` with the planes below).
STORAGE_CLASS = "SpectralImage"
IMAGE, FLAGS, VARIANCE = "image", "flags", "variance"

#: Header keywords that identify an image in error messages, in order of preference.
_ID_KEYS = ("data_id", "OBSID", "DETECTOR", "EXPIDN")


def describe(dataset: xr.Dataset, role: str) -> str:
    """A short identification of an input image for messages (its role and any ID attrs)."""
    attrs: Mapping[str, Any] = dataset.attrs
    found = [f"{k}={attrs[k]}" for k in _ID_KEYS if k in attrs]
    return f"{role} [{', '.join(found)}]" if found else role


def require_image(dataset: Any, role: str, task: str) -> xr.Dataset:
    """Check ``dataset`` is an ``xarray.Dataset`` with an ``image`` variable.

    Raises
    ------
    PipelineError
        If it is not, naming the role, the task and what was found.
    """
    import xarray as xr  # here, so that building a graph does not import xarray

    if not isinstance(dataset, xr.Dataset):
        raise PipelineError(
            f"{task}: input {role!r} must be an xarray.Dataset, got {type(dataset).__name__}."
        )
    if IMAGE not in dataset.data_vars:
        raise PipelineError(
            f"{task}: input {describe(dataset, role)} has no {IMAGE!r} variable; it has "
            f"{', '.join(map(str, dataset.data_vars)) or 'none'}."
        )
    return dataset
