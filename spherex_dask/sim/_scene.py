# SPDX-License-Identifier: BSD-3-Clause
"""Pixel models: dark current and detector defects, sky, noise, flags and PSFs.

Everything is our own model (Level-1 data are not distributed), in e-/s unless stated:

* **Dark current** (fixed per detector and seed): ~0.01-0.03 e-/s, per-output-channel offsets
  (32 channels of columns), amplifier glow in one corner, and 0.05 % hot pixels (1-50 e-/s).
* **Defects** (fixed per detector and seed): 0.02 % non-functional pixels (no response,
  flag NONFUNC) and 0.02 % cold pixels (20 % response, flag COLD); pixels of the dark above
  0.5 e-/s are flagged HOT. Images are 2040 x 2040 active pixels, so no REFERENCE pixels.
* **Sky** (MJy/sr, converted with the detector's gain): zodiacal light (scattered sunlight
  peaking near 1.3 um plus ~275 K thermal emission) times a gentle linear gradient, and a few
  Gaussian point sources (flag SOURCE where a source adds more than 10 % of the zodi).
  Sources are drawn per exposure, not from a fixed sky catalogue.
* **Noise**: variance = signal / t + (10 e- / t)^2, plus cosmic-ray hits (flag TRANSIENT);
  pixels above 300 e-/s are flagged NONLINEAR. Flagged pixels keep finite values.

Random streams derive from ``(seed, detector[, exposure_id])`` only, so a file's pixels do not
depend on which other files are simulated.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from ._exposures import SimulatedExposure
from ._instrument import DETECTORS, FLAG_BITS, PIXEL_SCALE_ARCSEC, psf_fwhm_arcsec, wavelength_grid

__all__ = ["DetectorModel", "Scene", "detector_model", "make_scene", "psf_cube"]

logger = logging.getLogger(__name__)

READ_NOISE = 10.0  # e-, effective, of the on-board slope fit (assumption)
HOT_THRESHOLD = 0.5  # e-/s
NONLINEAR_THRESHOLD = 300.0  # e-/s
_TAG_DETECTOR = 0xDA4C
_TAG_SCENE = 0x5CE4E


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorModel:
    """The fixed properties of one detector for one seed (read-only arrays)."""

    detector: int
    size: int
    dark: np.ndarray  # float32 (size, size), e-/s
    flags: np.ndarray  # int32 (size, size): HOT | NONFUNC | COLD
    nonfunc: np.ndarray  # flat indices
    cold: np.ndarray  # flat indices
    zodi_shape: np.ndarray  # float32 (size, size), MJy/sr at unit amplitude


@dataclass(frozen=True, slots=True, kw_only=True)
class Scene:
    """One exposure seen by one detector: the arrays a raw or Level-2 file is made from."""

    exposure: SimulatedExposure
    detector: int
    model: DetectorModel
    raw: np.ndarray  # float32, e-/s: dark + sky + noise
    variance: np.ndarray  # float32, (e-/s)^2
    flags: np.ndarray  # int32
    zodi: np.ndarray  # float32, MJy/sr

    @property
    def size(self) -> int:
        """Array size in pixels."""
        return self.model.size


def _zodi_spectrum(wavelength: np.ndarray) -> np.ndarray:
    """Zodiacal light (MJy/sr) at unit amplitude: scattered sunlight plus thermal emission."""
    lam = wavelength.astype(np.float32, copy=False)
    scattered = np.float32(0.25) * (lam / np.float32(1.3)) * np.exp(1 - lam / np.float32(1.3))
    thermal = np.float32(0.4) * np.exp(np.float32(14388.0 / 275.0) * (np.float32(0.2) - 1 / lam))
    return (scattered + thermal).astype(np.float32, copy=False)


def _dark_current(detector: int, size: int, rng: np.random.Generator) -> np.ndarray:
    width = max(size // 32, 1)
    offsets = rng.normal(0.0, 0.003, size=-(-size // width)).astype(np.float32)
    columns = np.repeat(offsets, width)[:size] + np.float32(0.01 + 0.003 * detector)
    axis = np.arange(size, dtype=np.float32) / np.float32(0.15 * size)
    glow = np.float32(0.01) * np.exp(-axis)
    dark = glow[:, None] * glow[None, :] / np.float32(0.01) + columns[None, :]
    n_hot = max(int(5e-4 * size * size), 1)
    hot = rng.choice(size * size, size=n_hot, replace=False)
    dark.flat[hot] += rng.lognormal(np.log(5.0), 1.0, size=n_hot).clip(1.0, 50.0)
    return dark


@functools.lru_cache(maxsize=2)
def detector_model(detector: int, size: int, seed: int) -> DetectorModel:
    """The dark current, defects and zodi shape of a detector (cached; deterministic)."""
    rng = np.random.default_rng(np.random.SeedSequence([_TAG_DETECTOR, seed, detector]))
    dark = _dark_current(detector, size, rng)
    n_bad = max(int(2e-4 * size * size), 1)
    bad = rng.choice(size * size, size=2 * n_bad, replace=False)
    nonfunc, cold = np.sort(bad[:n_bad]), np.sort(bad[n_bad:])
    flags = np.where(dark > HOT_THRESHOLD, np.int32(1 << FLAG_BITS["HOT"]), np.int32(0))
    flags.flat[nonfunc] |= 1 << FLAG_BITS["NONFUNC"]
    flags.flat[cold] |= 1 << FLAG_BITS["COLD"]
    pixels = np.arange(size)
    fx, fy = wavelength_grid(detector, pixels, pixels, size=size, dtype=np.float32)
    zodi_shape = _zodi_spectrum(fy[:, None] * fx[None, :])
    for array in (dark, flags, nonfunc, cold, zodi_shape):
        array.setflags(write=False)
    return DetectorModel(
        detector=detector,
        size=size,
        dark=dark,
        flags=flags,
        nonfunc=nonfunc,
        cold=cold,
        zodi_shape=zodi_shape,
    )


def _gaussian(shape: int, center: tuple[float, float], sigma: tuple[float, float]) -> np.ndarray:
    yy, xx = np.mgrid[0:shape, 0:shape]
    return np.exp(-0.5 * (((xx - center[0]) / sigma[0]) ** 2 + ((yy - center[1]) / sigma[1]) ** 2))


def _add_sources(
    sky: np.ndarray, flags: np.ndarray, zodi: np.ndarray, detector: int, rng: np.random.Generator
) -> None:
    """Add a few Gaussian point sources (MJy/sr) in place and flag their pixels SOURCE."""
    size = sky.shape[0]
    count = 3 + int(rng.poisson(60.0 * (size / 2040) ** 2))
    positions = rng.uniform(0, size - 1, size=(count, 2))
    peaks = 0.05 * rng.pareto(1.5, size=count) + 0.05  # MJy/sr
    info = DETECTORS[detector]
    for (x, y), peak in zip(positions, peaks, strict=True):
        lam = info.lmin * (info.lmax / info.lmin) ** (y / size)
        sigma = float(psf_fwhm_arcsec(lam)) / PIXEL_SCALE_ARCSEC / 2.3548
        x0, y0 = round(x) - 3, round(y) - 3
        stamp = peak * _gaussian(7, (x - x0, y - y0), (sigma, sigma))
        xs, ys = slice(max(x0, 0), min(x0 + 7, size)), slice(max(y0, 0), min(y0 + 7, size))
        stamp = stamp[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        sky[ys, xs] += stamp.astype(np.float32)
        flags[ys, xs] |= np.where(stamp > 0.1 * zodi[ys, xs], 1 << FLAG_BITS["SOURCE"], 0)


def _zodi(
    model: DetectorModel, exposure: SimulatedExposure, rng: np.random.Generator
) -> np.ndarray:
    size = model.size
    amplitude = np.float32(0.8 + 0.4 * np.cos(np.radians(exposure.dec)) ** 2)
    ramp = (np.arange(size, dtype=np.float32) / np.float32(size)) - np.float32(0.5)
    gx = 1 + np.float32(rng.normal(0.0, 0.05)) * ramp
    gy = (1 + np.float32(rng.normal(0.0, 0.05)) * ramp) * amplitude
    zodi = np.multiply(model.zodi_shape, gy[:, None])
    zodi *= gx[None, :]
    return zodi


def _add_cosmic_rays(
    raw: np.ndarray, flags: np.ndarray, rng: np.random.Generator, t: float
) -> None:
    count = int(rng.poisson(1e-4 * raw.size)) + 1
    hits = rng.choice(raw.size, size=count, replace=False)
    raw.flat[hits] += (rng.uniform(50.0, 500.0, size=count) / t).astype(np.float32)
    flags.flat[hits] |= 1 << FLAG_BITS["TRANSIENT"]


def make_scene(exposure: SimulatedExposure, detector: int, *, size: int, seed: int) -> Scene:
    """Simulate what ``detector`` records during ``exposure`` (deterministic in its inputs)."""
    model = detector_model(detector, size, seed)
    rng = np.random.default_rng(
        np.random.SeedSequence([_TAG_SCENE, seed, detector, exposure.exposure_id])
    )
    zodi = _zodi(model, exposure, rng)
    flags = model.flags.copy()
    sky = zodi.copy()
    _add_sources(sky, flags, zodi, detector, rng)
    signal = sky
    signal /= np.float32(DETECTORS[detector].gain)  # e-/s
    signal.flat[model.nonfunc] = 0.0
    signal.flat[model.cold] *= np.float32(0.2)
    signal += model.dark
    t = exposure.exposure_time
    flags[signal > NONLINEAR_THRESHOLD] |= 1 << FLAG_BITS["NONLINEAR"]
    variance = np.maximum(signal, 0, out=np.empty_like(signal))
    variance /= np.float32(t)
    variance += np.float32((READ_NOISE / t) ** 2)
    raw = rng.standard_normal((size, size), dtype=np.float32)
    raw *= np.sqrt(variance)
    raw += signal
    _add_cosmic_rays(raw, flags, rng, t)
    return Scene(
        exposure=exposure,
        detector=detector,
        model=model,
        raw=raw,
        variance=variance,
        flags=flags,
        zodi=zodi,
    )


@functools.lru_cache(maxsize=6)
def psf_cube(detector: int, size: int) -> np.ndarray:
    """121 PSFs (11 x 11 zones), oversampled 10x, normalised to unit sum (float32, read-only).

    Each PSF is 101 x 101 (SPHEREX.md) when ``size >= 512``, else 11 x 11 (a truncated core that
    keeps small test files small). FWHM follows the wavelength at the zone centre, with a mild
    ellipticity varying across the array.
    """
    side = 101 if size >= 512 else 11
    zones = (np.arange(11) + 0.5) * size / 11
    fx, fy = wavelength_grid(detector, zones, zones, size=size)
    cube = np.empty((121, side, side), dtype=np.float32)
    centre = (side - 1) / 2
    for iy in range(11):
        for ix in range(11):
            sigma = float(psf_fwhm_arcsec(fy[iy] * fx[ix])) / PIXEL_SCALE_ARCSEC * 10 / 2.3548
            stretch = 0.05 * (ix - 5) / 5
            psf = _gaussian(side, (centre, centre), (sigma * (1 + stretch), sigma * (1 - stretch)))
            cube[iy * 11 + ix] = psf / psf.sum()
    cube.setflags(write=False)
    return cube
