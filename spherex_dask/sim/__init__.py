# SPDX-License-Identifier: BSD-3-Clause
"""A deterministic (seeded) simulator of SPHEREx-like data: raw frames, darks and Level-2 files.

Pixels, headers, wavelength solutions and file names follow SPHEREX.md; what the public record
does not fix (raw frames, gains, distortion, focal-plane layout) is our own model, documented in
the private modules (``_scene``, ``_wcs``, ``_fits``, ``_naming``).

Examples
--------
>>> from spherex_dask.sim import make_exposures
>>> [e.obs_id for e in make_exposures(2, seed=1)]
['2025W19_2B_0001_1', '2025W19_2B_0001_2']
"""

from ._exposures import (
    SimulatedExposure,
    make_exposures,
    pack_exposure_id,
    parse_obs_id,
    planning_period_start,
    unpack_exposure_id,
)
from ._fits import write_dark, write_level2, write_raw
from ._instrument import DETECTORS, FLAG_BITS, DetectorInfo, flag_mask
from ._naming import (
    DARK_IRSA_REGEX,
    DARK_POC_REGEX,
    DARK_REGEX,
    LEVEL2_POC_REGEX,
    LEVEL2_REGEX,
    RAW_IRSA_REGEX,
    RAW_POC_REGEX,
    file_name,
    parse_file_name,
)
from ._scene import Scene, make_scene
from ._simulate import SimulatedFile, Simulation, simulate

__all__ = [
    "DARK_IRSA_REGEX",
    "DARK_POC_REGEX",
    "DARK_REGEX",
    "DETECTORS",
    "FLAG_BITS",
    "LEVEL2_POC_REGEX",
    "LEVEL2_REGEX",
    "RAW_IRSA_REGEX",
    "RAW_POC_REGEX",
    "DetectorInfo",
    "Scene",
    "SimulatedExposure",
    "SimulatedFile",
    "Simulation",
    "file_name",
    "flag_mask",
    "make_exposures",
    "make_scene",
    "pack_exposure_id",
    "parse_file_name",
    "parse_obs_id",
    "planning_period_start",
    "simulate",
    "unpack_exposure_id",
    "write_dark",
    "write_level2",
    "write_raw",
]
