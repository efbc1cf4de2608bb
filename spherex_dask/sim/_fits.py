# SPDX-License-Identifier: BSD-3-Clause
"""Writers of simulated FITS files: raw frames, dark calibrations and IRSA-layout Level-2 files.

HDU layouts (EXTNAME in capitals):

* raw: PRIMARY (header only), IMAGE (float32, e-/s), FLAGS (int32), VARIANCE (float32,
  (e-/s)^2), WCS-WAVE (binary table).
* dark: PRIMARY, IMAGE (float32 dark current, e-/s), VARIANCE.
* level2: PRIMARY, IMAGE (MJy/sr, zodi not subtracted), FLAGS, VARIANCE ((MJy/sr)^2), ZODI
  (MJy/sr), PSF (121 x n x n), WCS-WAVE.

Primary header cards: TELESCOP, INSTRUME, ORIGIN, VERSION, FILETYPE (``raw``/``dark``/
``level2``), DETECTOR; for exposures also OBSID, EXPIDN (packed exposure id), PLANPER
(planning period), LSLEW, SSLEW, SURVEY, TIMESYS, DATE-OBS, DATE-END, MJD-OBS, MJD-END,
EXPTIME, and the boresight RA_BORE, DEC_BORE, ROLL (deg; ROLL is the position angle of the
arrays' +y axis, east of north); for darks VALIDFRM (ISO start of validity, UTC). ``DATE`` is
the simulated processing time (raw: exposure end; Level-2: 6 h later; dark: its VALIDFRM), so
the same seed gives byte-identical files. The IMAGE header repeats BUNIT, DETECTOR, OBSID,
EXPIDN, DATE, DATE-OBS, MJD-OBS and adds PSF_FWHM (arcsec, at the array centre) and the WCSs.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..errors import OutputExistsError
from ._exposures import SimulatedExposure, mjd
from ._instrument import DETECTORS, EXPOSURE_TIME, FLAG_BITS, INSTRUMENT_NAME, psf_fwhm_arcsec
from ._naming import SIM_VERSION, FileKind, processing_time
from ._scene import Scene, detector_model, psf_cube
from ._wcs import celestial_cards, spectral_cards, wcs_wave_hdu

__all__ = ["write_dark", "write_level2", "write_raw"]

logger = logging.getLogger(__name__)

Cards = list[tuple[str, object, str]]

_DARK_FRAMES = 100  # frames averaged into a dark calibration (assumption)
_TAG_DARK_CAL = 0xCA1


def _iso(time: datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time.microsecond // 1000:03d}"


def _exposure_cards(exposure: SimulatedExposure) -> Cards:
    return [
        ("OBSID", exposure.obs_id, "observation id"),
        ("EXPIDN", exposure.exposure_id, "packed exposure id"),
        ("PLANPER", exposure.planning_period, "planning period"),
        ("LSLEW", exposure.large_slew, "large-slew counter"),
        ("SSLEW", exposure.small_slew, "small-slew counter"),
        ("SURVEY", exposure.survey, "wide or deep"),
        ("TIMESYS", "UTC", ""),
        ("DATE-OBS", _iso(exposure.begin), "exposure start (UTC)"),
        ("DATE-END", _iso(exposure.end), "exposure end (UTC)"),
        ("MJD-OBS", mjd(exposure.begin), "[d] exposure start (UTC)"),
        ("MJD-END", mjd(exposure.end), "[d] exposure end (UTC)"),
        ("EXPTIME", exposure.exposure_time, "[s] exposure time"),
        ("RA_BORE", exposure.ra, "[deg] boresight right ascension"),
        ("DEC_BORE", exposure.dec, "[deg] boresight declination"),
        ("ROLL", exposure.roll, "[deg] position angle of +y, east of north"),
    ]


def _primary(kind: FileKind, detector: int, date: datetime, extra: Cards) -> fits.PrimaryHDU:
    cards: Cards = [
        ("TELESCOP", INSTRUMENT_NAME, ""),
        ("INSTRUME", INSTRUMENT_NAME, ""),
        ("ORIGIN", "spherex_dask.sim", "simulated data"),
        ("VERSION", f"sim-{SIM_VERSION}", "simulator version"),
        ("FILETYPE", kind, "raw, dark or level2"),
        ("DETECTOR", detector, "detector (= band) number"),
        *extra,
        ("DATE", _iso(date), "simulated processing time (UTC)"),
    ]
    return fits.PrimaryHDU(header=fits.Header(cards))


def _image(
    name: str, data: np.ndarray, unit: str | None, cards: Cards | tuple[()] = ()
) -> fits.ImageHDU:
    header = fits.Header(list(cards))
    if unit is not None:
        header["BUNIT"] = unit
    return fits.ImageHDU(data=data, header=header, name=name)


def _image_cards(scene: Scene, unit: str, date: datetime) -> Cards:
    exposure, detector = scene.exposure, scene.detector
    info = DETECTORS[detector]
    centre = info.lmin * (info.lmax / info.lmin) ** 0.5
    return [
        ("BUNIT", unit, ""),
        ("DETECTOR", detector, "detector (= band) number"),
        ("OBSID", exposure.obs_id, "observation id"),
        ("EXPIDN", exposure.exposure_id, "packed exposure id"),
        ("DATE", _iso(date), "simulated processing time (UTC)"),
        ("DATE-OBS", _iso(exposure.begin), "exposure start (UTC)"),
        ("MJD-OBS", mjd(exposure.begin), "[d] exposure start (UTC)"),
        ("PSF_FWHM", round(float(psf_fwhm_arcsec(centre)), 3), "[arcsec] PSF FWHM at centre"),
        *celestial_cards(exposure, detector, size=scene.size),
        *spectral_cards(),
    ]


def _flags_hdu(flags: np.ndarray) -> fits.ImageHDU:
    hdu = _image("FLAGS", flags, None)
    for name, bit in FLAG_BITS.items():
        hdu.header.append(fits.Card(f"HIERARCH MP_{name}", bit, "flag bit number"))
    return hdu


def _write(hdul: fits.HDUList, path: str | Path, *, overwrite: bool) -> Path:
    """Write atomically (temporary name, then rename), refusing to clobber unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        hdul.writeto(temporary, overwrite=True)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    logger.debug("Wrote %s", path)
    return path


def write_raw(path: str | Path, scene: Scene, *, overwrite: bool = False) -> Path:
    """Write a raw frame (e-/s: dark + sky + noise) of one exposure and detector.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    exposure, date = scene.exposure, processing_time("raw", scene.exposure)
    hdul = fits.HDUList(
        [
            _primary("raw", scene.detector, date, _exposure_cards(exposure)),
            _image("IMAGE", scene.raw, None, _image_cards(scene, "e-/s", date)),
            _flags_hdu(scene.flags),
            _image("VARIANCE", scene.variance, "(e-/s)^2"),
            wcs_wave_hdu(scene.detector, size=scene.size),
        ]
    )
    return _write(hdul, path, overwrite=overwrite)


def write_level2(path: str | Path, scene: Scene, *, overwrite: bool = False) -> Path:
    """Write an IRSA-layout Level-2 file: the raw frame dark-subtracted and calibrated to MJy/sr.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    exposure, date = scene.exposure, processing_time("level2", scene.exposure)
    gain = np.float32(DETECTORS[scene.detector].gain)
    image = np.subtract(scene.raw, scene.model.dark)
    image *= gain
    variance = scene.variance * (gain * gain)
    hdul = fits.HDUList(
        [
            _primary("level2", scene.detector, date, _exposure_cards(exposure)),
            _image("IMAGE", image, None, _image_cards(scene, "MJy/sr", date)),
            _flags_hdu(scene.flags),
            _image("VARIANCE", variance, "(MJy/sr)^2"),
            _image("ZODI", scene.zodi, "MJy/sr"),
            _image(
                "PSF",
                psf_cube(scene.detector, scene.size),
                None,
                [
                    ("OVERSAMP", 10, "PSF pixels per image pixel"),
                    ("PSFZONES", 11, "zones per axis"),
                ],
            ),
            wcs_wave_hdu(scene.detector, size=scene.size),
        ]
    )
    return _write(hdul, path, overwrite=overwrite)


def write_dark(
    path: str | Path,
    detector: int,
    *,
    size: int = 2040,
    seed: int = 0,
    valid_from: datetime,
    overwrite: bool = False,
) -> Path:
    """Write the dark-current calibration of one detector (the model of :mod:`._scene`).

    The image is the detector's dark current plus the small noise of averaging 100 frames, so
    subtracting it from a raw frame of the same seed leaves sky plus noise.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    model = detector_model(detector, size, seed)
    rng = np.random.default_rng(np.random.SeedSequence([_TAG_DARK_CAL, seed, detector]))
    variance = model.dark / np.float32(EXPOSURE_TIME * _DARK_FRAMES)
    variance += np.float32(1e-6)
    image = rng.standard_normal((size, size), dtype=np.float32)
    image *= np.sqrt(variance)
    image += model.dark
    hdul = fits.HDUList(
        [
            _primary("dark", detector, valid_from, [("VALIDFRM", _iso(valid_from), "valid from")]),
            _image("IMAGE", image, "e-/s", [("DETECTOR", detector, "detector (= band) number")]),
            _image("VARIANCE", variance, "(e-/s)^2"),
        ]
    )
    return _write(hdul, path, overwrite=overwrite)
