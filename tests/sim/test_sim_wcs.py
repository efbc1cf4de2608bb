# SPDX-License-Identifier: BSD-3-Clause
"""World coordinates: celestial TAN-SIP, zero-based pixel WCS A, spectral WAVE-TAB WCS W."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from spherex_dask.sim import DETECTORS

from .conftest import SIZE, files_of


@pytest.fixture(params=["raw", "level2"])
def image_file(request: pytest.FixtureRequest, irsa_sim):
    return files_of(irsa_sim, request.param)


def test_celestial_wcs(image_file) -> None:
    for item in image_file:
        header = fits.getheader(item.path, "IMAGE")
        wcs = WCS(header)
        assert wcs.has_celestial
        assert wcs.sip is not None
        assert list(wcs.wcs.ctype) == ["RA---TAN-SIP", "DEC--TAN-SIP"]
        centre = wcs.pixel_to_world((SIZE - 1) / 2, (SIZE - 1) / 2)
        assert centre.ra.deg == pytest.approx(header["CRVAL1"])
        scales = wcs.proj_plane_pixel_scales()
        assert [s.to_value(u.arcsec) for s in scales] == pytest.approx([6.15, 6.15])
        boresight = SkyCoord(item.exposure.ra, item.exposure.dec, unit="deg")
        assert centre.separation(boresight).deg < 1.1 * SIZE * 6.15 / 3600
        corner = wcs.pixel_to_world(0, 0)
        x, y = wcs.world_to_pixel(corner)
        assert (float(x), float(y)) == pytest.approx((0.0, 0.0), abs=1e-3)


def test_short_and_long_wave_arrays_see_the_same_sky(poc_sim) -> None:
    exposure = poc_sim.exposures[0]
    centres = {}
    for item in poc_sim.files:
        if item.exposure == exposure and item.kind == "raw":
            wcs = WCS(fits.getheader(item.path, "IMAGE"))
            centres[item.detector] = wcs.pixel_to_world(SIZE / 2, SIZE / 2)
    assert centres[1].separation(centres[4]).arcsec < 6.15 * SIZE * 0.01


def test_pixel_wcs_a(image_file) -> None:
    header = fits.getheader(image_file[0].path, "IMAGE")
    wcs = WCS(header, key="A")
    wcs.sip = None
    assert np.allclose(
        wcs.pixel_to_world_values([0, 7, SIZE - 1], [0, 3, 5]), [[0, 7, SIZE - 1], [0, 3, 5]]
    )


def test_spectral_wcs_w(image_file) -> None:
    for item in image_file:
        info = DETECTORS[item.detector]
        with fits.open(item.path) as hdul:
            wcs = WCS(hdul["IMAGE"].header, fobj=hdul, key="W")
            wcs.sip = None
            y, x = np.indices((SIZE, SIZE))
            wavelength, bandwidth = wcs.pixel_to_world(x, y)
        wavelength, bandwidth = wavelength.to_value(u.um), bandwidth.to_value(u.um)
        assert info.lmin <= wavelength.min() < wavelength.max() <= info.lmax
        assert wavelength.max() - wavelength.min() > 0.8 * (info.lmax - info.lmin)
        assert np.all(np.diff(wavelength, axis=0) > 0)  # increases with y
        assert np.allclose(wavelength[:, 0], wavelength[:, -1], rtol=1e-3)  # symmetric bow
        assert np.all(wavelength[:, SIZE // 2] < wavelength[:, 0])  # curved iso-lines
        assert np.allclose(bandwidth, wavelength / info.resolving_power, rtol=1e-5)


def test_wcs_wave_table(irsa_sim) -> None:
    item = files_of(irsa_sim, "level2")[0]
    with fits.open(item.path) as hdul:
        table = hdul["WCS-WAVE"]
        assert len(table.data) == 1
        assert table.columns.names == ["X", "Y", "VALUES"]
        x, y, values = table.data["X"][0], table.data["Y"][0], table.data["VALUES"][0]
        assert x[0] == y[0] == 0
        assert x[-1] == y[-1] == SIZE - 1
        assert values.shape == (y.size, x.size, 2)
        header = hdul["IMAGE"].header
        assert header["CTYPE1W"] == header["CTYPE2W"] == "WAVE-TAB"
        assert header["PS1_0W"] == header["PS2_0W"] == "WCS-WAVE"
        assert (header["PS1_1W"], header["PS1_2W"], header["PS2_2W"]) == ("VALUES", "X", "Y")
