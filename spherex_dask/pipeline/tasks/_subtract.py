# SPDX-License-Identifier: BSD-3-Clause
"""SubtractDarkTask: raw minus the dark calibration valid at the exposure's time."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ...errors import PipelineError
from .._config import PipelineTaskConfig
from .._connections import Input, Output, PrerequisiteInput
from .._task import PipelineTask
from ._image import FLAGS, IMAGE, STORAGE_CLASS, VARIANCE, describe, require_image

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["SubtractDarkConfig", "SubtractDarkTask"]

logger = logging.getLogger(__name__)


class SubtractDarkConfig(PipelineTaskConfig):
    """Configuration of :class:`SubtractDarkTask`.

    ``calibration_type`` fills the ``{calibration_type}`` placeholder of the default dataset
    type names (``dark`` and ``dark_subtracted``); ``connections.raw``, ``connections.dark`` and
    ``connections.output`` name the dataset types explicitly (the proof of concept's
    ``intype``/``subtracttype``/``outtype``).
    """

    calibration_type: str = "dark"
    propagate_flags: bool = True
    propagate_variance: bool = True


class SubtractDarkTask(PipelineTask):
    """Subtract a calibration image (the dark by default) from a raw image.

    ``image = raw.image - dark.image``; ``flags`` is the bitwise OR of both images' flags
    (or whichever exists); ``variance`` is the sum of both variances (or whichever exists).
    Coordinates, other variables and attributes of the raw image are kept.  The arithmetic is
    lazy when the inputs are dask-backed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> raw = xr.Dataset({"image": (("y", "x"), np.full((2, 2), 5.0, "f4"))})
    >>> dark = xr.Dataset({"image": (("y", "x"), np.ones((2, 2), "f4"))})
    >>> SubtractDarkTask().run(raw=raw, dark=dark)["output"].image.values.tolist()
    [[4.0, 4.0], [4.0, 4.0]]
    """

    ConfigClass = SubtractDarkConfig
    dimensions = ("instrument", "exposure", "detector")

    raw = Input(
        "raw",
        ("instrument", "exposure", "detector"),
        STORAGE_CLASS,
        doc="Image to correct (one exposure, one detector).",
    )
    dark = PrerequisiteInput(
        "{calibration_type}",
        ("instrument", "detector"),
        STORAGE_CLASS,
        doc="Calibration image to subtract, valid at the exposure's time.",
    )
    output = Output(
        "{calibration_type}_subtracted",
        ("instrument", "exposure", "detector"),
        STORAGE_CLASS,
        doc="The raw image with the calibration subtracted.",
    )

    def run(self, *, raw: xr.Dataset, dark: xr.Dataset) -> dict[str, Any]:  # type: ignore[override]
        """Subtract ``dark`` from ``raw``.

        Raises
        ------
        PipelineError
            If an input is not an image dataset or the image shapes differ.
        """
        config: SubtractDarkConfig = self.config  # type: ignore[assignment]
        name = f"{type(self).__name__} {self.label!r}"
        require_image(raw, "raw", name)
        require_image(dark, config.calibration_type, name)
        if raw[IMAGE].shape != dark[IMAGE].shape:
            raise PipelineError(
                f"{name}: raw image shape {raw[IMAGE].shape} does not match "
                f"{config.calibration_type} image shape {dark[IMAGE].shape} "
                f"({describe(raw, 'raw')}; {describe(dark, config.calibration_type)})."
            )
        # One copy with new data (no merge per variable): a few ms less per quantum.
        data = {key: var.data for key, var in raw.data_vars.items()}
        data[IMAGE] = raw[IMAGE].data - dark[IMAGE].data
        extra: dict[str, xr.DataArray] = {}
        for enabled, var, op in (
            (config.propagate_flags, FLAGS, lambda a, b: a | b),
            (config.propagate_variance, VARIANCE, lambda a, b: a + b),
        ):
            if not enabled or var not in dark.data_vars:
                continue
            if var in raw.data_vars:
                data[var] = op(raw[var].data, dark[var].data)
            else:
                extra[var] = dark[var].copy()
        out = raw.copy(data=data)
        if extra:
            out = out.assign(extra)
        out.attrs = {**raw.attrs, "calibration_subtracted": config.calibration_type}
        return {"output": out}

