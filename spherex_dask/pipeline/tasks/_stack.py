# SPDX-License-Identifier: BSD-3-Clause
"""StackTask: an inverse-variance weighted mean of a detector's images over a planning period."""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from ...errors import PipelineError
from .._config import PipelineTaskConfig
from .._connections import Input, Output
from .._task import PipelineTask
from ._image import FLAGS, IMAGE, STORAGE_CLASS, VARIANCE, describe, require_image

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["StackConfig", "StackTask"]

logger = logging.getLogger(__name__)


class StackConfig(PipelineTaskConfig):
    """Configuration of :class:`StackTask`.

    ``weighting`` is ``inverse_variance`` (weights ``1/variance``; the stack's variance is
    ``1/sum(1/variance)``) or ``uniform`` (a plain mean; variance ``sum(variance)/n**2``).
    """

    weighting: Literal["inverse_variance", "uniform"] = "inverse_variance"


class StackTask(PipelineTask):
    """Stack all exposures of one detector in one planning period (a fan-in).

    Pixels with a non-finite value or a non-positive/non-finite variance get zero weight; a
    pixel with no valid input is NaN.  ``flags`` is the bitwise OR over the inputs.  The result
    is dask-backed (lazy) whatever the inputs.
    """

    ConfigClass = StackConfig
    dimensions = ("instrument", "detector", "planning_period")

    images = Input(
        "dark_subtracted",
        ("instrument", "exposure", "detector"),
        STORAGE_CLASS,
        multiple=True,
        doc="The detector's images of every exposure in the planning period.",
    )
    stack = Output(
        "dark_subtracted_stack",
        ("instrument", "detector", "planning_period"),
        STORAGE_CLASS,
        doc="Weighted mean image, its variance and OR'd flags.",
    )

    def run(self, *, images: Sequence[xr.Dataset]) -> dict[str, Any]:  # type: ignore[override]
        """Stack ``images``.

        Raises
        ------
        PipelineError
            If there are no images, shapes differ, or inverse-variance weighting is asked
            for and an image has no variance.
        """
        import dask.array as da
        import xarray as xr

        name = f"{type(self).__name__} {self.label!r}"
        _check_inputs(images, name)
        first = images[0][IMAGE]
        planes = _weighted_mean(images, self.config.weighting, name)  # type: ignore[attr-defined]
        flags = [d[FLAGS].data for d in images if FLAGS in d.data_vars]
        if flags:
            planes[FLAGS] = (
                functools.reduce(operator.or_, map(da.asarray, flags)),
                images[0][FLAGS].dtype,
            )
        data_vars = {k: (first.dims, v.astype(dtype)) for k, (v, dtype) in planes.items()}
        out = xr.Dataset(data_vars, coords=first.coords, attrs=_common_attrs(images))
        out.attrs["n_images"] = len(images)
        return {"stack": out}


def _check_inputs(images: Sequence[Any], name: str) -> None:
    if len(images) == 0:
        raise PipelineError(f"{name}: no images to stack.")
    for i, d in enumerate(images):
        require_image(d, f"images[{i}]", name)
    shape = images[0][IMAGE].shape
    for i, d in enumerate(images[1:], start=1):
        if d[IMAGE].shape != shape:
            raise PipelineError(
                f"{name}: image shapes differ: {describe(images[0], 'images[0]')} has {shape}, "
                f"{describe(d, f'images[{i}]')} has {d[IMAGE].shape}."
            )


def _weighted_mean(images: Sequence[xr.Dataset], weighting: str, name: str) -> dict[str, Any]:
    """Mean and variance planes as ``{name: (dask array, dtype)}``."""
    import dask.array as da
    import numpy as np

    dtype = np.result_type(*(d[IMAGE].dtype for d in images), np.float32)
    img = da.stack([da.asarray(d[IMAGE].data) for d in images])
    has_var = all(VARIANCE in d.data_vars for d in images)
    if weighting == "inverse_variance" and not has_var:
        missing = [
            describe(d, f"images[{i}]") for i, d in enumerate(images) if VARIANCE not in d.data_vars
        ]
        raise PipelineError(
            f"{name}: inverse-variance weighting needs a {VARIANCE!r} plane, missing in "
            f"{', '.join(missing)}; set config weighting: uniform to stack without it."
        )
    valid = da.isfinite(img)
    var = da.stack([da.asarray(d[VARIANCE].data) for d in images]) if has_var else None
    if var is not None:
        valid &= da.isfinite(var) & (var > 0)
    if weighting == "inverse_variance":
        weight = da.where(valid, 1.0 / da.where(valid, var, 1.0), 0.0)
    else:
        weight = valid.astype("f8")
    total = weight.sum(axis=0)
    has = total > 0
    safe_total = da.where(has, total, 1.0)
    mean = da.where(has, (weight * da.where(valid, img, 0.0)).sum(axis=0) / safe_total, np.nan)
    planes: dict[str, Any] = {IMAGE: (mean, dtype)}
    if weighting == "inverse_variance":
        planes[VARIANCE] = (da.where(has, 1.0 / safe_total, np.nan), dtype)
    elif var is not None:
        var_sum = da.where(valid, var, 0.0).sum(axis=0)
        planes[VARIANCE] = (da.where(has, var_sum / safe_total**2, np.nan), dtype)
    return planes


def _common_attrs(images: Sequence[xr.Dataset]) -> dict[str, Any]:
    """Attributes with the same value in every image."""
    first = dict(images[0].attrs)
    return {
        k: v
        for k, v in first.items()
        if all(_same(d.attrs.get(k, _MISSING), v) for d in images[1:])
    }


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
