# SPDX-License-Identifier: BSD-3-Clause
"""Static facts about the simulated instrument: bands, flag bits, wavelength and PSF models.

Numbers come from SPHEREX.md (public SPHEREx/IRSA documentation) where they exist; the rest
(gains, distortion, focal-plane layout) are simulator assumptions, marked as such.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "DETECTORS",
    "EXPOSURE_TIME",
    "FLAG_BITS",
    "INSTRUMENT_NAME",
    "PIXEL_SCALE_ARCSEC",
    "DetectorInfo",
    "flag_mask",
    "psf_fwhm_arcsec",
    "wavelength_grid",
]

logger = logging.getLogger(__name__)

INSTRUMENT_NAME = "SPHEREx"

#: Pixel scale of every array (arcsec / pixel).
PIXEL_SCALE_ARCSEC = 6.15

#: Exposure time (s). *Unverified*: SPHEREX.md derives a ~144 s exposure-plus-slew cycle; we
#: assume ~112 s of it integrates and ~32 s is slew and settle.
EXPOSURE_TIME = 112.0

#: Fraction of the array over which lines of constant wavelength bow (LVF curvature).
LVF_CURVATURE = 0.02


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorInfo:
    """One detector array; the band number equals the detector number.

    Attributes
    ----------
    id
        Detector number, 1-6.
    lmin, lmax
        Wavelength range of the linear variable filter (um).
    resolving_power
        Spectral resolving power R = lambda / bandwidth.
    focal_plane
        ``"short"`` (detectors 1-3) or ``"long"`` (4-6), the two sides of the dichroic.
    gain
        Simulator assumption: surface-brightness calibration, (MJy/sr) per (e-/s).
    """

    id: int
    lmin: float
    lmax: float
    resolving_power: float
    focal_plane: Literal["short", "long"]
    gain: float

    @property
    def band(self) -> int:
        """The spectral band, equal to the detector number."""
        return self.id

    def record(self) -> dict[str, object]:
        """The ``detector`` dimension record values (without the instrument)."""
        return {
            "id": self.id,
            "band": self.band,
            "lmin": self.lmin,
            "lmax": self.lmax,
            "resolving_power": self.resolving_power,
            "focal_plane": self.focal_plane,
        }


#: The six arrays (SPHEREX.md band table).
DETECTORS: dict[int, DetectorInfo] = {
    d.id: d
    for d in (
        DetectorInfo(
            id=1, lmin=0.75, lmax=1.09, resolving_power=39.0, focal_plane="short", gain=0.08
        ),
        DetectorInfo(
            id=2, lmin=1.10, lmax=1.62, resolving_power=41.0, focal_plane="short", gain=0.09
        ),
        DetectorInfo(
            id=3, lmin=1.63, lmax=2.41, resolving_power=41.0, focal_plane="short", gain=0.10
        ),
        DetectorInfo(
            id=4, lmin=2.42, lmax=3.82, resolving_power=35.0, focal_plane="long", gain=0.12
        ),
        DetectorInfo(
            id=5, lmin=3.83, lmax=4.41, resolving_power=112.0, focal_plane="long", gain=0.30
        ),
        DetectorInfo(
            id=6, lmin=4.42, lmax=5.00, resolving_power=128.0, focal_plane="long", gain=0.35
        ),
    )
}

#: Flag bit numbers, named as by the ``MP_*`` header cards of IRSA Level-2 files.
FLAG_BITS: dict[str, int] = {
    "TRANSIENT": 0,
    "OVERFLOW": 1,
    "SUR_ERROR": 2,
    "PHANTOM": 4,
    "REFERENCE": 5,
    "NONFUNC": 6,
    "DICHROIC": 7,
    "MISSING_DATA": 9,
    "HOT": 10,
    "COLD": 11,
    "FULLSAMPLE": 12,
    "PHANMISS": 14,
    "NONLINEAR": 15,
    "PERSIST": 17,
    "OUTLIER": 19,
    "SOURCE": 21,
}


def flag_mask(*names: str) -> int:
    """The integer bitmask of the named flags.

    Examples
    --------
    >>> flag_mask("TRANSIENT", "HOT")
    1025
    """
    return sum(1 << FLAG_BITS[name] for name in set(names))


def psf_fwhm_arcsec(wavelength: float | np.ndarray) -> float | np.ndarray:
    """PSF FWHM (arcsec), linear between 4.6" at 0.75 um and 6.9" at 5 um (SPHEREX.md).

    Examples
    --------
    >>> round(float(psf_fwhm_arcsec(0.75)), 3), round(float(psf_fwhm_arcsec(5.0)), 3)
    (4.6, 6.9)
    """
    return 4.6 + (np.asarray(wavelength) - 0.75) * (6.9 - 4.6) / (5.0 - 0.75)


def wavelength_grid(
    detector: int, x: np.ndarray, y: np.ndarray, *, size: int, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Separable factors of the linear-variable-filter wavelength (um) at pixel centres.

    ``lambda(x, y) = fx[x] * fy[y]`` with ``lambda = lmin * (lmax/lmin) ** t`` and
    ``t = a * 4 u**2 + (1 - a) * (y + 0.5) / size``, ``u = (x + 0.5) / size - 0.5``: wavelength
    grows with ``y`` and lines of constant wavelength bow by ``a`` (2 %) of the array along ``x``.
    ``t`` stays within [0, 1), so every wavelength lies in the detector's [lmin, lmax].

    Parameters
    ----------
    detector
        Detector number (1-6).
    x, y
        Zero-based pixel coordinates (1-D arrays).
    size
        Array size in pixels.
    dtype
        Result dtype.

    Returns
    -------
    fx, fy
        Factors along x and y; the wavelength map is ``fy[:, None] * fx[None, :]``.
    """
    info = DETECTORS[detector]
    ratio = info.lmax / info.lmin
    u = (np.asarray(x, dtype=np.float64) + 0.5) / size - 0.5
    t_y = (np.asarray(y, dtype=np.float64) + 0.5) / size
    fx = ratio ** (LVF_CURVATURE * 4.0 * u**2)
    fy = info.lmin * ratio ** ((1.0 - LVF_CURVATURE) * t_y)
    return fx.astype(dtype), fy.astype(dtype)
