# SPDX-License-Identifier: BSD-3-Clause
"""Written files: layout, headers, flags, pixel model, determinism, overwrite guard."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest
from astropy.io import fits

from spherex_dask.errors import ConfigError, OutputExistsError
from spherex_dask.sim import DETECTORS, FLAG_BITS, flag_mask, simulate

from .conftest import SIZE, files_of

RAW_HDUS = ["PRIMARY", "IMAGE", "FLAGS", "VARIANCE", "WCS-WAVE"]
LEVEL2_HDUS = ["PRIMARY", "IMAGE", "FLAGS", "VARIANCE", "ZODI", "PSF", "WCS-WAVE"]


def _names(hdul: fits.HDUList) -> list[str]:
    return [hdu.name for hdu in hdul]


def test_file_counts(poc_sim) -> None:
    assert len(files_of(poc_sim, "dark")) == 2
    assert len(files_of(poc_sim, "raw")) == len(files_of(poc_sim, "level2")) == 5 * 2
    assert all(f.path.is_file() and f.path.parent == poc_sim.root for f in poc_sim.files)
    assert poc_sim.size_bytes == sum(f.path.stat().st_size for f in poc_sim.files)


def test_raw_layout_and_headers(irsa_sim) -> None:
    item = files_of(irsa_sim, "raw")[0]
    exposure = item.exposure
    with fits.open(item.path) as hdul:
        assert _names(hdul) == RAW_HDUS
        primary, image = hdul[0].header, hdul["IMAGE"].header
        assert primary["TELESCOP"] == primary["INSTRUME"] == "SPHEREx"
        assert primary["FILETYPE"] == "raw"
        assert primary["DETECTOR"] == item.detector
        assert primary["OBSID"] == exposure.obs_id
        assert primary["EXPIDN"] == exposure.exposure_id
        assert primary["PLANPER"] == exposure.planning_period
        assert primary["EXPTIME"] == exposure.exposure_time
        assert primary["DATE-OBS"].startswith(exposure.begin.strftime("%Y-%m-%dT%H:%M:%S"))
        assert primary["MJD-OBS"] == pytest.approx(60803.5)
        assert (primary["RA_BORE"], primary["DEC_BORE"], primary["ROLL"]) == (
            exposure.ra,
            exposure.dec,
            exposure.roll,
        )
        for key in ("VERSION", "DATE", "DATE-END", "MJD-END"):
            assert key in primary
        assert image["BUNIT"] == "e-/s"
        for key in ("DETECTOR", "OBSID", "EXPIDN", "DATE", "MJD-OBS", "PSF_FWHM"):
            assert image[key] == primary.get(key, image[key])
        assert 4.6 <= image["PSF_FWHM"] <= 6.9
        assert hdul["IMAGE"].data.dtype == np.dtype(">f4")
        assert hdul["IMAGE"].data.shape == (SIZE, SIZE)
        assert hdul["FLAGS"].data.dtype == np.dtype(">i4")
        assert hdul["VARIANCE"].data.dtype == np.dtype(">f4")
        assert np.all(hdul["VARIANCE"].data > 0)
        assert np.all(np.isfinite(hdul["IMAGE"].data))


def test_flag_bits_and_cards(irsa_sim) -> None:
    known = flag_mask(*FLAG_BITS)
    for item in files_of(irsa_sim, "raw") + files_of(irsa_sim, "level2"):
        with fits.open(item.path) as hdul:
            header, flags = hdul["FLAGS"].header, hdul["FLAGS"].data
            assert {name: header[f"MP_{name}"] for name in FLAG_BITS} == FLAG_BITS
            assert np.all(flags & ~known == 0)
            for name in ("NONFUNC", "COLD", "HOT", "TRANSIENT", "SOURCE"):
                assert np.any(flags & flag_mask(name)), name
            assert not np.any(flags & flag_mask("REFERENCE", "MISSING_DATA"))
            assert np.count_nonzero(flags & flag_mask("NONFUNC")) < 0.01 * flags.size


def test_hot_pixels_follow_the_dark(poc_sim) -> None:
    dark_file = next(f for f in files_of(poc_sim, "dark") if f.detector == 4)
    raw_file = next(f for f in files_of(poc_sim, "raw") if f.detector == 4)
    with fits.open(dark_file.path) as dark, fits.open(raw_file.path) as raw:
        hot = (raw["FLAGS"].data & flag_mask("HOT")) != 0
        assert np.array_equal(hot, dark["IMAGE"].data > 0.5)


def test_dark_layout(irsa_sim) -> None:
    item = files_of(irsa_sim, "dark")[0]
    with fits.open(item.path) as hdul:
        assert _names(hdul) == ["PRIMARY", "IMAGE", "VARIANCE"]
        assert hdul[0].header["FILETYPE"] == "dark"
        assert hdul[0].header["DETECTOR"] == hdul["IMAGE"].header["DETECTOR"] == item.detector
        assert hdul[0].header["VALIDFRM"] == "2025-05-08T00:00:00.000"
        assert hdul["IMAGE"].header["BUNIT"] == "e-/s"
        dark = hdul["IMAGE"].data
        assert 0.005 < float(np.median(dark)) < 0.1
        assert np.count_nonzero(dark > 0.5) >= 1


def test_dark_subtraction_leaves_sky(poc_sim) -> None:
    """Raw minus dark is the sky (zodi / gain), within the noise."""
    detector = 1
    dark_file = next(f for f in files_of(poc_sim, "dark") if f.detector == detector)
    raw_file = next(f for f in files_of(poc_sim, "raw") if f.detector == detector)
    l2_file = next(
        f
        for f in files_of(poc_sim, "level2")
        if f.detector == detector and f.exposure == raw_file.exposure
    )
    with (
        fits.open(dark_file.path) as dark,
        fits.open(raw_file.path) as raw,
        fits.open(l2_file.path) as l2,
    ):
        good = raw["FLAGS"].data == 0
        sky = (raw["IMAGE"].data - dark["IMAGE"].data)[good]
        zodi = l2["ZODI"].data[good] / DETECTORS[detector].gain
        sigma = np.sqrt(raw["VARIANCE"].data[good])
        assert abs(float(np.mean((sky - zodi) / sigma))) < 0.2
        assert 0.7 < float(np.std((sky - zodi) / sigma)) < 1.3


def test_level2_layout(irsa_sim) -> None:
    item = files_of(irsa_sim, "level2")[0]
    with fits.open(item.path) as hdul:
        assert _names(hdul) == LEVEL2_HDUS
        assert hdul[0].header["FILETYPE"] == "level2"
        assert hdul["IMAGE"].header["BUNIT"] == "MJy/sr"
        assert hdul["VARIANCE"].header["BUNIT"] == "(MJy/sr)^2"
        assert hdul["ZODI"].header["BUNIT"] == "MJy/sr"
        psf = hdul["PSF"].data
        assert psf.shape == (121, 11, 11)
        assert np.allclose(psf.sum(axis=(1, 2)), 1.0, atol=1e-5)
        zodi, image = hdul["ZODI"].data, hdul["IMAGE"].data
        assert 0.01 < float(np.median(zodi)) < 2.0
        assert abs(float(np.median(image - zodi))) < 0.05


def test_full_size_psf_shape() -> None:
    from spherex_dask.sim._scene import psf_cube

    assert psf_cube(3, 2040).shape == (121, 101, 101)


def test_same_seed_same_bytes(tmp_path) -> None:
    kwargs = {"exposures": 2, "detectors": (3,), "size": 32, "seed": 5, "level2": True}
    first = simulate(tmp_path / "a", **kwargs)
    second = simulate(tmp_path / "b", **kwargs)
    for a, b in zip(first.files, second.files, strict=True):
        assert a.path.name == b.path.name
        assert filecmp.cmp(a.path, b.path, shallow=False), a.path.name
    other = simulate(tmp_path / "c", **(kwargs | {"seed": 6}))
    raw_a, raw_c = (files_of(s, "raw")[0].path for s in (first, other))
    assert not np.array_equal(fits.getdata(raw_a, "IMAGE"), fits.getdata(raw_c, "IMAGE"))


def test_files_do_not_depend_on_the_other_detectors(tmp_path) -> None:
    alone = simulate(tmp_path / "alone", exposures=1, detectors=(2,), size=32)
    together = simulate(tmp_path / "together", exposures=1, detectors=(1, 2, 6), size=32)
    for item in alone.files:
        assert filecmp.cmp(item.path, together.root / item.path.name, shallow=False)


def test_overwrite_guard(tmp_path) -> None:
    first = simulate(tmp_path, exposures=1, detectors=(1,), size=16)
    raw = files_of(first, "raw")[0].path
    raw.write_bytes(b"not fits")
    stamp = {f.path: f.path.stat().st_mtime_ns for f in first.files}
    with pytest.raises(OutputExistsError, match="overwrite"):
        simulate(tmp_path, exposures=1, detectors=(1,), size=16)
    assert {f.path: f.path.stat().st_mtime_ns for f in first.files} == stamp
    assert isinstance(OutputExistsError("x"), FileExistsError)
    simulate(tmp_path, exposures=1, detectors=(1,), size=16, overwrite=True)
    assert fits.getheader(raw)["FILETYPE"] == "raw"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 15},
        {"exposures": -1},
        {"detectors": (0, 1)},
        {"detectors": ()},
        {"naming": "lsst"},
        {"seed": -1},
    ],
)
def test_bad_arguments(tmp_path, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        simulate(tmp_path, **({"exposures": 1, "size": 16} | kwargs))
    assert not list(tmp_path.iterdir())
