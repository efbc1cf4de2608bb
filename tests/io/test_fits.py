# SPDX-License-Identifier: BSD-3-Clause
"""FitsImageFormatter: the contract suite, lazy reads, regions, components, WCS, layout."""

from __future__ import annotations

import importlib
import io
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import ClassVar

import dask.array as da
import fsspec
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from fsspec.implementations.local import LocalFileOpener, LocalFileSystem

from spherex_dask.errors import FileMissingError, FormatterError
from spherex_dask.io import FitsImageFormatter
from spherex_dask.testing.formatters import FormatterTests


def quiet_wcs(header, **kwargs) -> WCS:
    """astropy WCS without the FITSFixedWarning about DATE-OBS from MJD-OBS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(fits.Header(header) if isinstance(header, dict) else header, **kwargs)


class TestFitsImageFormatter(FormatterTests):
    """The shared formatter contract, for FITS."""

    @pytest.fixture
    def formatter(self) -> FitsImageFormatter:
        return FitsImageFormatter()

    @pytest.fixture
    def sample(self, level2) -> xr.Dataset:
        path, _ = level2(psf=True)
        return FitsImageFormatter().read(path, parameters={"include_psf": True}).load()

    def assert_same(self, expected: xr.Dataset, actual: xr.Dataset) -> None:
        xr.testing.assert_identical(expected.load(), actual.load())

    def load(self, obj: xr.Dataset) -> xr.Dataset:
        return obj.load()

    def test_round_trip(self, formatter, sample, tmp_path) -> None:
        """PSF is only read on request; with it the round trip is exact."""
        path = self.path_for(formatter, tmp_path)
        formatter.write(sample, path)
        self.assert_same(sample, formatter.read(path, parameters={"include_psf": True}))
        assert "psf" not in formatter.read(path).data_vars


def test_read_matches_astropy(level2) -> None:
    """Variables, dtypes, headers and the IRSA layout read as astropy sees them."""
    path, _arrays = level2()
    ds = FitsImageFormatter().read(path)
    assert list(ds.data_vars) == ["image", "flags", "variance", "zodi"]
    assert ds["image"].dims == ("y", "x")
    assert ds["image"].dtype == np.float32
    assert ds["flags"].dtype == np.int32
    for name in ("IMAGE", "FLAGS", "VARIANCE", "ZODI"):
        assert isinstance(ds[name.lower()].data, da.Array)
        np.testing.assert_array_equal(ds[name.lower()].values, fits.getdata(path, name))
    assert ds.attrs["VERSION"] == "v20"
    assert ds.attrs["HISTORY"] == "made for a test"
    assert ds["image"].attrs["BUNIT"] == "MJy/sr"
    assert ds["image"].attrs["OBSID"] == "2025W19_2B_0073_2"
    assert "NAXIS1" not in ds["image"].attrs
    assert "BITPIX" not in ds.attrs


def test_wavelength_matches_astropy_wcs(level2) -> None:
    """wavelength/bandwidth equal WCS(hdr, fobj=hdul, key='W') with sip off."""
    path, _ = level2()
    ds = FitsImageFormatter().read(path)
    assert isinstance(ds["wavelength"].data, da.Array)
    with fits.open(path) as hdul:
        wcs = quiet_wcs(hdul["IMAGE"].header, fobj=hdul, key="W")
        wcs.sip = None
        yy, xx = np.mgrid[0 : ds.sizes["y"], 0 : ds.sizes["x"]]
        wavelength, bandwidth = wcs.pixel_to_world_values(xx, yy)
    np.testing.assert_allclose(ds["wavelength"].values, wavelength, rtol=1e-6)
    np.testing.assert_allclose(ds["bandwidth"].values, bandwidth, rtol=1e-6)
    assert ds["wavelength"].attrs["units"] == "um"


def test_celestial_wcs_kept_in_attrs(level2, tmp_path) -> None:
    """The TAN WCS in the image attrs survives a write and describes the same sky."""
    path, _ = level2()
    ds = FitsImageFormatter().read(path)
    out = str(tmp_path / "copy.fits")
    FitsImageFormatter().write(ds, out)
    original = quiet_wcs(fits.getheader(path, "IMAGE"))
    written = quiet_wcs(fits.getheader(out, "IMAGE"))
    np.testing.assert_allclose(
        written.pixel_to_world_values(3, 5), original.pixel_to_world_values(3, 5)
    )


def test_bbox_reads_region(level2) -> None:
    """A bbox returns those pixels, shifted WCS and coordinates, in every accepted form."""
    path, arrays = level2()
    fmt = FitsImageFormatter()
    full = fmt.read(path)
    for bbox in (
        (10, 20, 5, 30),
        (slice(10, 20), slice(5, 30)),
        {"y": (10, 20), "x": slice(5, 30)},
    ):
        cut = fmt.read(path, parameters={"bbox": bbox})
        np.testing.assert_array_equal(cut["image"].values, arrays["IMAGE"][10:20, 5:30])
        np.testing.assert_array_equal(cut["flags"].values, arrays["FLAGS"][10:20, 5:30])
        np.testing.assert_array_equal(
            cut["wavelength"].values, full["wavelength"].values[10:20, 5:30]
        )
        assert cut.x.values[0] == 5
        assert cut.y.values[0] == 10
    sky = quiet_wcs(cut["image"].attrs).pixel_to_world_values(0, 0)
    np.testing.assert_allclose(sky, quiet_wcs(full["image"].attrs).pixel_to_world_values(5, 10))


def test_opened_files_share_pixel_indexes_but_not_coordinates(level2) -> None:
    """Reads reuse one immutable index per pixel range; each dataset has its own coordinates."""
    path, arrays = level2()
    fmt = FitsImageFormatter()
    first, second = fmt.read(path), fmt.read(path, parameters={"chunks": False})
    assert first.indexes["x"] is second.indexes["x"]
    first.x.attrs["units"] = "pixel"
    first["y"] = first.y + 100
    assert second.x.attrs == {}
    assert fmt.read(path).y.values[0] == 0
    assert second.y.values[0] == 0
    cut = fmt.read(path, parameters={"bbox": (10, 20, 5, 30)})
    assert list(cut.indexes["x"][:2]) == [5, 6]
    np.testing.assert_array_equal(
        second.sel(x=slice(5, 7), y=3)["image"].values, arrays["IMAGE"][3, 5:8]
    )


def test_bbox_errors_name_file(level2) -> None:
    """A box outside the image or of unknown form is a FormatterError naming the file."""
    path, _ = level2()
    with pytest.raises(FormatterError, match=r"level2.fits"):
        FitsImageFormatter().read(path, parameters={"bbox": (0, 999, 0, 5)})
    with pytest.raises(FormatterError, match="Unknown bbox form"):
        FitsImageFormatter().read(path, parameters={"bbox": "all"})


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        ((0, None, 0, 5), "must hold four integers"),
        (("0", 8, 0, 5), "must hold four integers"),
        ((0.5, 8, 0, 5), "must hold four integers"),
        ((8, 0, 0, 5), "empty or reversed"),
        ((0, 8, 5, 5), "empty or reversed"),
        ((-1, 8, 0, 5), "reaches outside"),
    ],
)
def test_bbox_four_values_say_what_is_wrong(level2, bbox, message) -> None:
    """A (y0, y1, x0, x1) box with a None, a non-integer, or reversed ends is a FormatterError
    saying so (not a TypeError, a silent truncation, or 'reaches outside')."""
    path, _ = level2()
    with pytest.raises(FormatterError, match=message):
        FitsImageFormatter().read(path, parameters={"bbox": bbox})
    assert FitsImageFormatter().read(
        path, parameters={"bbox": (np.int64(0), np.int64(8), 0, 5)}
    ).image.shape == (8, 5)


def test_cutout_round_trip_keeps_offset(level2, tmp_path) -> None:
    """A cut-out written and read back keeps its detector position, WCS and wavelengths."""
    path, _ = level2()
    cut = FitsImageFormatter().read(path, parameters={"bbox": (10, 20, 5, 30)})
    out = str(tmp_path / "cut.fits")
    FitsImageFormatter().write(cut, out)
    back = FitsImageFormatter().read(out)
    xr.testing.assert_identical(cut.load(), back.load())
    assert fits.getheader(out, "IMAGE")["LTV1"] == -5


def test_component_reads_one_variable(level2) -> None:
    """component= returns one lazy DataArray; psf and wavelength are components too."""
    path, arrays = level2()
    fmt = FitsImageFormatter()
    flags = fmt.read(path, component="flags")
    assert isinstance(flags, xr.DataArray)
    assert flags.name == "flags"
    np.testing.assert_array_equal(flags.values, arrays["FLAGS"])
    np.testing.assert_array_equal(fmt.read(path, component="psf").values, arrays["PSF"])
    assert fmt.read(path, component="wavelength").dims == ("y", "x")
    assert fmt.list_components(path) == (
        "image",
        "flags",
        "variance",
        "zodi",
        "psf",
        "wavelength",
        "bandwidth",
    )
    with pytest.raises(FormatterError, match="available: image, flags"):
        fmt.read(path, component="mask")


def test_chunks_parameter_and_chunk_values(level2) -> None:
    """Each chunk computed alone equals the same slice of astropy's getdata."""
    path, _arrays = level2()
    ds = FitsImageFormatter().read(path, parameters={"chunks": (16, 20)})
    image = ds["image"].data
    assert image.chunks == ((16, 16, 16, 16), (20, 20, 8))
    expected = fits.getdata(path, "IMAGE")
    for iy, ix in [(0, 0), (1, 2), (3, 1)]:
        block = image.blocks[iy, ix].compute()
        np.testing.assert_array_equal(
            block, expected[iy * 16 : (iy + 1) * 16, ix * 20 : ix * 20 + block.shape[1]]
        )


def test_default_chunks_full_frame(tmp_path) -> None:
    """A 2040 x 2040 frame opens as one chunk per plane; chunks= still splits it."""
    path = tmp_path / "big.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2040, 2040), np.float32), name="IMAGE")]
    ).writeto(path)
    ds = FitsImageFormatter().read(str(path))
    assert ds["image"].data.chunks == ((2040,), (2040,))
    banded = FitsImageFormatter().read(str(path), parameters={"chunks": {"y": 1020}})
    assert banded["image"].data.chunks == ((1020, 1020), (2040,))


def test_chunks_auto_and_bad_dimension_names(tmp_path) -> None:
    """As in xarray: "auto" (whole or per axis) follows dask's array.chunk-size, {} is the
    default, and a dimension other than y and x is refused instead of ignored."""
    import dask

    path = tmp_path / "big.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2040, 2040), np.float32), name="IMAGE")]
    ).writeto(path)
    fmt = FitsImageFormatter()
    assert fmt.read(str(path), parameters={"chunks": {}})["image"].data.chunks == (
        (2040,),
        (2040,),
    )
    with dask.config.set({"array.chunk-size": "4MiB"}):
        auto = fmt.read(str(path), parameters={"chunks": "auto"})["image"].data
        bands = fmt.read(str(path), parameters={"chunks": {"y": "auto", "x": -1}})["image"].data
    assert auto.chunks == ((1024, 1016), (1024, 1016))
    assert bands.chunks[1] == (2040,)
    assert bands.nbytes / len(bands.chunks[0]) <= 4 * 2**20
    numpy_sizes = {"y": np.int64(512), "x": np.int64(-1)}  # numpy integers work as ints do
    assert fmt.read(str(path), parameters={"chunks": numpy_sizes})["image"].data.chunks == (
        (512, 512, 512, 504),
        (2040,),
    )
    with pytest.raises(FormatterError, match="names 'z'; the image dimensions are 'y' and 'x'"):
        fmt.read(str(path), parameters={"chunks": {"z": 3}})
    with pytest.raises(FormatterError, match=r"positive integers, -1 .* or 'auto'"):
        fmt.read(str(path), parameters={"chunks": {"y": 0}})


class _CountingFile(io.FileIO):
    """A raw file that adds every byte read to a shared counter."""

    counter: ClassVar[list[int]] = [0]

    def readinto(self, buffer):  # type: ignore[override]
        count = super().readinto(buffer)
        self.counter[0] += count or 0
        return count


class CountingFileSystem(LocalFileSystem):
    """Local files under the ``counting://`` protocol, counting bytes read from disk."""

    protocol = ("counting",)

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        opener = LocalFileOpener(self._strip_protocol(path), mode, fs=self, **kwargs)
        if "r" in mode:
            opener.f = io.BufferedReader(_CountingFile(opener.path, "rb"))
            opener.f.size = opener.size
        return opener


@pytest.fixture
def counting_fs():
    fsspec.register_implementation("counting", CountingFileSystem, clobber=True)
    _CountingFile.counter[0] = 0
    yield _CountingFile.counter
    importlib.import_module("fsspec.registry")._registry.pop("counting", None)


def test_open_reads_no_pixels_and_chunks_read_their_bytes(tmp_path, counting_fs) -> None:
    """Opening a 2040 x 2040 image reads headers only; one chunk reads about its own bytes."""
    path = tmp_path / "full.fits"
    data = np.arange(2040 * 2040, dtype=np.float32).reshape(2040, 2040)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(data, name="IMAGE"),
            fits.ImageHDU(data.astype(np.int32), name="FLAGS"),
        ]
    ).writeto(path)
    ds = FitsImageFormatter().read(f"counting://{path}", parameters={"chunks": {"y": 1020}})
    opened = counting_fs[0]
    assert 0 < opened < 64 * 1024  # headers only: the pixels are 33 MB
    chunk = ds["image"].data.blocks[1, 0].compute()
    np.testing.assert_array_equal(chunk, data[1020:])
    chunk_bytes = 1020 * 2040 * 4
    assert chunk_bytes <= counting_fs[0] - opened < chunk_bytes + 64 * 1024


def test_open_is_lazy_locally(level2) -> None:
    """Pixels are read at compute time: bytes changed after opening show up."""
    path, arrays = level2(psf=False, wave=False)
    ds = FitsImageFormatter().read(path)
    with fits.open(path, mode="update") as hdul:
        hdul["IMAGE"].data[:] = 7.0
    np.testing.assert_array_equal(ds["image"].values, np.full_like(arrays["IMAGE"], 7.0))


def test_missing_and_truncated_files(level2, tmp_path) -> None:
    """Missing -> FileMissingError; truncated anywhere -> FormatterError naming the file."""
    with pytest.raises(FileMissingError, match=r"nope.fits"):
        FitsImageFormatter().read(str(tmp_path / "nope.fits"))
    path, _ = level2()
    size = Path(path).stat().st_size
    for cut in (100, 2880 * 2 + 100, size // 2, size - 3000):
        damaged = tmp_path / f"cut{cut}.fits"
        damaged.write_bytes(Path(path).read_bytes()[:cut])
        with pytest.raises(FormatterError, match=f"cut{cut}.fits"):
            FitsImageFormatter().read(str(damaged))


def test_file_shrunk_after_open_fails_clearly(level2) -> None:
    """A file truncated between open and compute gives a FormatterError, not garbage."""
    path, _ = level2(psf=False, wave=False)
    ds = FitsImageFormatter().read(path)
    with open(path, "r+b") as f:
        f.truncate(2880 * 3)
    with pytest.raises(FormatterError, match="ended early"):
        ds["zodi"].compute()


def test_written_file_passes_fitsverify_and_astropy(level2, tmp_path) -> None:
    """The writer's output verifies with astropy and (if installed) fitsverify."""
    path, _ = level2()
    out = tmp_path / "out.fits"
    FitsImageFormatter().write(
        FitsImageFormatter().read(path, parameters={"include_psf": True}), str(out)
    )
    with fits.open(out) as hdul:
        hdul.verify("exception")
        assert [h.name for h in hdul] == [
            "PRIMARY",
            "IMAGE",
            "FLAGS",
            "VARIANCE",
            "ZODI",
            "PSF",
            "WCS-WAVE",
        ]
        assert hdul["IMAGE"].header["BUNIT"] == "MJy/sr"
    if shutil.which("fitsverify") is None:
        pytest.skip("fitsverify not installed")
    result = subprocess.run(
        ["fitsverify", "-q", str(out)], capture_output=True, text=True, check=False
    )
    assert "verification OK" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "dtype", ["uint16", "uint32", "int8", "int16", "int64", "float64", "uint8"]
)
def test_integer_conventions_round_trip(tmp_path, dtype) -> None:
    """Unsigned and int8 use BZERO; every dtype reads back as itself, also in astropy."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    data = np.array([[info.min, 0], [1, info.max]], dtype=dtype)
    path = str(tmp_path / f"{dtype}.fits")
    FitsImageFormatter().write(xr.Dataset({"image": (("y", "x"), data)}), path)
    back = FitsImageFormatter().read(path)["image"]
    assert back.dtype == data.dtype
    np.testing.assert_array_equal(back.values, data)
    np.testing.assert_array_equal(fits.getdata(path, "IMAGE"), data)


def test_scaled_integers_and_compressed_images(tmp_path) -> None:
    """BSCALE/BZERO floats and tile-compressed HDUs read like astropy reads them."""
    data = np.arange(48, dtype=np.float32).reshape(6, 8) / 4
    scaled = fits.ImageHDU(data, name="IMAGE")
    scaled.scale("int16", bscale=0.25, bzero=10)
    compressed = fits.CompImageHDU(data * 2, name="VARIANCE")
    path = tmp_path / "odd.fits"
    fits.HDUList([fits.PrimaryHDU(), scaled, compressed]).writeto(path)
    ds = FitsImageFormatter().read(str(path), parameters={"bbox": (1, 5, 2, 7)})
    with fits.open(path) as hdul:
        np.testing.assert_allclose(ds["image"].values, hdul["IMAGE"].data[1:5, 2:7])
        np.testing.assert_allclose(ds["variance"].values, hdul["VARIANCE"].data[1:5, 2:7])


def test_primary_only_image_and_unknown_planes(tmp_path) -> None:
    """A plain single-HDU image reads as 'image'; extra 2-D extensions keep their names."""
    path = tmp_path / "simple.fits"
    data = np.ones((4, 5), np.float32)
    fits.HDUList([fits.PrimaryHDU(data), fits.ImageHDU(data * 2, name="MASK")]).writeto(path)
    ds = FitsImageFormatter().read(str(path))
    assert list(ds.data_vars) == ["image", "mask"]
    out = tmp_path / "simple_out.fits"
    FitsImageFormatter().write(ds, str(out))
    assert [h.name for h in fits.open(out)] == ["PRIMARY", "IMAGE", "MASK"]


def test_write_streams_dask_and_rejects_bad_layout(tmp_path) -> None:
    """Dask-backed data are written chunk by chunk; 1-D variables are refused."""
    image = da.arange(60, dtype=np.float32, chunks=20).reshape(6, 10).rechunk((2, 10))
    path = str(tmp_path / "lazy.fits")
    FitsImageFormatter().write(xr.Dataset({"image": (("y", "x"), image)}), path)
    np.testing.assert_array_equal(fits.getdata(path, "IMAGE"), image.compute())
    bad = xr.Dataset({"image": (("y", "x"), np.zeros((2, 2))), "spectrum": ("w", np.zeros(3))})
    with pytest.raises(FormatterError, match="spectrum"):
        FitsImageFormatter().write(bad, str(tmp_path / "bad.fits"))
    assert not (tmp_path / "bad.fits").exists()


def test_header_attrs_that_fits_cannot_hold_are_skipped(tmp_path) -> None:
    """Lists, NaN and long names do not break writing; long keys become HIERARCH."""
    ds = xr.Dataset(
        {
            "image": (
                ("y", "x"),
                np.zeros((2, 2), np.float32),
                {"BUNIT": "e-/s", "long_name": "signal", "bad": [1, 2], "NAN": float("nan")},
            )
        }
    )
    path = str(tmp_path / "attrs.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FitsImageFormatter().write(ds, path)
    header = fits.getheader(path, "IMAGE")
    assert header["BUNIT"] == "e-/s"
    assert header["LONG_NAME"] == "signal"
    assert "BAD" not in header
    assert "NAN" not in header


def test_simulated_files_read_as_astropy_reads_them(tmp_path) -> None:
    """Level-2, raw and dark files of spherex_dask.sim read like astropy reads them."""
    sim = pytest.importorskip("spherex_dask.sim")
    from datetime import UTC, datetime

    exposure = sim.make_exposures(1, seed=1)[0]
    scene = sim.make_scene(exposure, 3, size=64, seed=1)
    paths = {
        "level2": sim.write_level2(tmp_path / "l2.fits", scene),
        "raw": sim.write_raw(tmp_path / "raw.fits", scene),
        "dark": sim.write_dark(
            tmp_path / "dark.fits", 3, size=64, seed=1, valid_from=datetime(2025, 5, 1, tzinfo=UTC)
        ),
    }
    expected_vars = {
        "level2": ["image", "flags", "variance", "zodi"],
        "raw": ["image", "flags", "variance"],
        "dark": ["image", "variance"],
    }
    for kind, path in paths.items():
        ds = FitsImageFormatter().read(str(path))
        assert list(ds.data_vars) == expected_vars[kind]
        for name in ds.data_vars:
            np.testing.assert_array_equal(ds[name].values, fits.getdata(path, name.upper()))
    ds = FitsImageFormatter().read(str(paths["level2"]))
    with fits.open(paths["level2"]) as hdul:
        wcs = quiet_wcs(hdul["IMAGE"].header, fobj=hdul, key="W")
        wcs.sip = None
        yy, xx = np.mgrid[0:64, 0:64]
        wavelength, bandwidth = wcs.pixel_to_world_values(xx, yy)
    np.testing.assert_allclose(ds["wavelength"].values, wavelength, rtol=1e-6)
    np.testing.assert_allclose(ds["bandwidth"].values, bandwidth, rtol=1e-6)
    out = str(tmp_path / "again.fits")
    FitsImageFormatter().write(ds, out)
    xr.testing.assert_identical(ds.load(), FitsImageFormatter().read(out).load())


def test_lazy_dataset_pickles_for_workers(level2) -> None:
    """The lazy Dataset (pixel and wavelength proxies) pickles and computes after a round trip."""
    import pickle

    path, arrays = level2()
    ds = FitsImageFormatter().read(path)
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone["variance"].values, arrays["VARIANCE"])
    np.testing.assert_array_equal(clone["wavelength"].values, ds["wavelength"].values)
    assert len(pickle.dumps(ds["image"].data.dask)) < 20_000  # no headers inside the tasks


def test_general_spectral_wcs_uses_astropy(tmp_path) -> None:
    """A W WCS the control grid cannot express (rotated) is evaluated by astropy, lazily."""
    import pickle

    path = tmp_path / "rotated.fits"
    write_level2_rotated(path)
    ds = FitsImageFormatter().read(str(path))
    with fits.open(path) as hdul:
        wcs = quiet_wcs(hdul["IMAGE"].header, fobj=hdul, key="W")
        yy, xx = np.mgrid[0 : ds.sizes["y"], 0 : ds.sizes["x"]]
        wavelength, _ = wcs.pixel_to_world_values(xx, yy)
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_allclose(clone["wavelength"].values, wavelength, rtol=1e-6)
    assert "wcs_wave_x" not in ds["wavelength"].attrs
    out = str(tmp_path / "resampled.fits")
    FitsImageFormatter().write(ds, out)  # no grid attrs: the writer samples the coordinates
    again = FitsImageFormatter().read(out)
    np.testing.assert_allclose(again["wavelength"].values, ds["wavelength"].values, rtol=1e-3)


def write_level2_rotated(path: Path) -> None:
    """A Level-2 file whose W WCS has a small off-diagonal PC term."""
    from .conftest import write_level2

    write_level2(path)
    with fits.open(path, mode="update") as hdul:
        hdul["IMAGE"].header["PC1_2W"] = 1e-3


def test_two_regions_in_one_graph(level2) -> None:
    """Different bboxes from one origin get different dask names (no task collisions)."""
    path, arrays = level2(psf=False)
    fmt = FitsImageFormatter()
    small = fmt.read(path, parameters={"bbox": (0, 4, 0, 4)})["image"]
    large = fmt.read(path, parameters={"bbox": (0, 8, 0, 8)})["image"]
    assert small.data.name != large.data.name
    total = (small.sum() + large.sum()).compute()
    np.testing.assert_allclose(
        total, arrays["IMAGE"][:4, :4].sum() + arrays["IMAGE"][:8, :8].sum(), rtol=1e-5
    )
