# SPDX-License-Identifier: BSD-3-Clause
"""World coordinate systems of simulated images: celestial TAN-SIP, pixel ``A``, spectral ``W``.

The spectral WCS follows the IRSA Level-2 files: alternate WCS ``W`` has two ``WAVE-TAB`` axes
(wavelength, bandwidth, in um) looked up (FITS WCS Paper III ``-TAB``) in the one-row binary
table ``WCS-WAVE`` with columns ``X`` and ``Y`` (zero-based pixel positions of the control
points) and ``VALUES`` (TDIM ``(2, nx, ny)``: wavelength and bandwidth at each control point).
Read it with ``WCS(header, fobj=hdul, key="W")`` and then ``wcs.sip = None``.

Focal-plane layout (simulator assumption): detectors 1-3 lie side by side along the array's
x axis, and detectors 4-6 see the same sky through the dichroic (with a small misalignment).
"""

from __future__ import annotations

import logging

import numpy as np
from astropy.io import fits

from ..io.formatters._spectral_wcs import wave_tab_cards
from ._exposures import SimulatedExposure
from ._instrument import DETECTORS, PIXEL_SCALE_ARCSEC, wavelength_grid

__all__ = ["celestial_cards", "detector_center", "spectral_cards", "wcs_wave_hdu"]

logger = logging.getLogger(__name__)

#: Rotation of each array relative to the boresight roll (deg). Simulator assumption.
_ROTATION = {1: 0.05, 2: -0.03, 3: 0.08, 4: 0.06, 5: -0.02, 6: 0.07}
#: Relative SIP strengths per detector; coefficients are scaled so the distortion at the
#: array edge is ~2 px at 2040 x 2040 and shrinks with the array.
_SIP_SHAPE = {1: 1.0, 2: 0.8, 3: 1.1, 4: 0.9, 5: 1.2, 6: 0.7}
_GAP = 1.03  # centre-to-centre spacing of adjacent arrays, in array widths


def _cd_matrix(roll: float) -> np.ndarray:
    """CD matrix (deg/pixel) with +y at position angle ``roll`` (E of N) and east to the left."""
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    theta = np.radians(roll)
    return scale * np.array(
        [[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]], dtype=np.float64
    )


def _deproject(ra0: float, dec0: float, xi: float, eta: float) -> tuple[float, float]:
    """Gnomonic (TAN) deprojection of standard coordinates (deg) about ``(ra0, dec0)``."""
    xi_r, eta_r = np.radians(xi), np.radians(eta)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    denom = np.cos(d0) - eta_r * np.sin(d0)
    ra = a0 + np.arctan2(xi_r, denom)
    dec = np.arctan2(np.sin(d0) + eta_r * np.cos(d0), np.hypot(xi_r, denom))
    return float(np.degrees(ra) % 360.0), float(np.degrees(dec))


def detector_center(
    exposure: SimulatedExposure, detector: int, *, size: int
) -> tuple[float, float]:
    """Sky position (RA, Dec in deg) of a detector's centre for one exposure."""
    column = (detector - 1) % 3 - 1
    dx = column * _GAP * size + (0.002 * size if DETECTORS[detector].focal_plane == "long" else 0.0)
    xi, eta = _cd_matrix(exposure.roll) @ np.array([dx, 0.0])
    return _deproject(exposure.ra, exposure.dec, float(xi), float(eta))


def _sip_cards(detector: int, size: int) -> list[tuple[str, object, str]]:
    strength = 4e-3 * _SIP_SHAPE[detector] / size
    coefficients = {
        "A_2_0": strength,
        "A_1_1": -0.3 * strength,
        "A_0_2": 0.5 * strength,
        "B_2_0": 0.4 * strength,
        "B_1_1": 0.6 * strength,
        "B_0_2": -0.8 * strength,
    }
    cards: list[tuple[str, object, str]] = [
        ("A_ORDER", 2, "SIP polynomial order, axis 1"),
        ("B_ORDER", 2, "SIP polynomial order, axis 2"),
    ]
    cards += [(key, value, "SIP distortion coefficient") for key, value in coefficients.items()]
    return cards


def celestial_cards(
    exposure: SimulatedExposure, detector: int, *, size: int
) -> list[tuple[str, object, str]]:
    """Header cards of the primary TAN-SIP WCS and of the zero-based pixel WCS ``A``."""
    ra, dec = detector_center(exposure, detector, size=size)
    cd = _cd_matrix(exposure.roll + _ROTATION[detector])
    centre = (size + 1) / 2.0
    cards: list[tuple[str, object, str]] = [
        ("WCSAXES", 2, "number of WCS axes"),
        ("WCSNAME", "Celestial", "primary WCS: ICRS, TAN with SIP distortion"),
        ("CTYPE1", "RA---TAN-SIP", "gnomonic projection with SIP distortion"),
        ("CTYPE2", "DEC--TAN-SIP", "gnomonic projection with SIP distortion"),
        ("CUNIT1", "deg", ""),
        ("CUNIT2", "deg", ""),
        ("CRPIX1", centre, "reference pixel (1-based)"),
        ("CRPIX2", centre, "reference pixel (1-based)"),
        ("CRVAL1", ra, "[deg] RA of the reference pixel"),
        ("CRVAL2", dec, "[deg] Dec of the reference pixel"),
        ("CD1_1", float(cd[0, 0]), ""),
        ("CD1_2", float(cd[0, 1]), ""),
        ("CD2_1", float(cd[1, 0]), ""),
        ("CD2_2", float(cd[1, 1]), ""),
        ("RADESYS", "ICRS", ""),
        *_sip_cards(detector, size),
        ("WCSAXESA", 2, "number of axes of WCS A"),
        ("WCSNAMEA", "PIXEL", "zero-based pixel coordinates"),
        ("CTYPE1A", "X", ""),
        ("CTYPE2A", "Y", ""),
        ("CRPIX1A", 1.0, ""),
        ("CRPIX2A", 1.0, ""),
        ("CRVAL1A", 0.0, ""),
        ("CRVAL2A", 0.0, ""),
        ("CDELT1A", 1.0, ""),
        ("CDELT2A", 1.0, ""),
    ]
    return cards


def spectral_cards() -> list[tuple[str, object, str]]:
    """Header cards of the two-axis ``WAVE-TAB`` WCS ``W`` (wavelength, bandwidth in um): the
    ones the FITS formatter writes and reads."""
    return list(wave_tab_cards("um"))


def _control_points(size: int) -> np.ndarray:
    count = 9 if size < 256 else 17
    return np.unique(np.linspace(0, size - 1, count).round().astype(np.int32))


def wcs_wave_hdu(detector: int, *, size: int) -> fits.BinTableHDU:
    """The ``WCS-WAVE`` lookup table: wavelength and bandwidth (um) on a control-point grid."""
    points = _control_points(size)
    fx, fy = wavelength_grid(detector, points, points, size=size)
    wavelength = fy[:, None] * fx[None, :]
    values = np.stack([wavelength, wavelength / DETECTORS[detector].resolving_power], axis=-1)
    n = points.size
    columns = [
        fits.Column(name="X", format=f"{n}J", array=points[None, :]),
        fits.Column(name="Y", format=f"{n}J", array=points[None, :]),
        fits.Column(
            name="VALUES",
            format=f"{2 * n * n}E",
            unit="um",
            dim=f"(2,{n},{n})",
            array=values[None].astype(np.float32),
        ),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="WCS-WAVE")
    hdu.header["DETECTOR"] = (detector, "detector (= band) number")
    return hdu
