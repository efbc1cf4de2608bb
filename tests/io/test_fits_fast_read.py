# SPDX-License-Identifier: BSD-3-Clause
"""The FITS read path: decoding, chunk reads, the one-chunk ``.values`` shortcut, lazy imports."""

from __future__ import annotations

import pickle
import subprocess
import sys
import weakref
from pathlib import Path

import dask
import dask.array as da
import fsspec
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from spherex_dask.io import FitsImageFormatter

from .conftest import write_level2


def _write(path: Path, hdu: fits.ImageHDU) -> str:
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return str(path)


def _images(tmp_path: Path) -> dict[str, str]:
    """Files with one 23 x 17 IMAGE plane in each on-disk encoding the reader decodes."""
    rng = np.random.default_rng(3)
    data = rng.normal(100, 30, (23, 17))
    files = {}
    for dtype in ("float32", "float64", "int16", "int32", "uint8", "uint16", "int8"):
        values = data.astype(dtype) if dtype.startswith("f") else (data % 100).astype(dtype)
        files[dtype] = _write(tmp_path / f"{dtype}.fits", fits.ImageHDU(values, name="IMAGE"))
    scaled = fits.ImageHDU(data.astype(np.float32), name="IMAGE")
    scaled.scale("int16", bscale=0.05, bzero=100)
    files["scaled"] = _write(tmp_path / "scaled.fits", scaled)
    return files


@pytest.mark.parametrize("chunks", [None, (7, 5), {"y": 10}, 1])
def test_every_encoding_and_chunking_reads_as_astropy(tmp_path: Path, chunks: object) -> None:
    """Values equal astropy's, in native byte order, for whole planes and any chunking."""
    for kind, path in _images(tmp_path).items():
        image = FitsImageFormatter().read(path, parameters={"chunks": chunks})["image"]
        expected = fits.getdata(path, "IMAGE")
        values = image.values
        assert values.dtype.isnative, kind
        assert values.dtype == expected.dtype.newbyteorder("="), kind
        np.testing.assert_array_equal(values, expected, err_msg=kind)
        np.testing.assert_array_equal(
            image.data.blocks[-1, -1].compute(),
            expected[-image.data.chunks[0][-1] :, -image.data.chunks[1][-1] :],
        )


def test_bbox_of_encoded_images_reads_as_astropy(tmp_path: Path) -> None:
    for kind, path in _images(tmp_path).items():
        cut = FitsImageFormatter().read(path, parameters={"bbox": (3, 20, 2, 9), "chunks": 4})
        np.testing.assert_array_equal(
            cut["image"].values, fits.getdata(path, "IMAGE")[3:20, 2:9], err_msg=kind
        )


def test_remote_reads_decode_as_astropy(tmp_path: Path) -> None:
    """Through fsspec (one ranged read into a buffer swapped in place) values equal astropy's."""
    memory = fsspec.filesystem("memory")
    try:
        for kind, path in _images(tmp_path).items():
            url = f"memory://fast-read/{kind}.fits"
            memory.pipe(url, Path(path).read_bytes())
            for chunks in (None, (5, 17), (5, 4)):
                image = FitsImageFormatter().read(url, parameters={"chunks": chunks})["image"]
                values = image.values
                assert values.dtype.isnative
                np.testing.assert_array_equal(values, fits.getdata(path, "IMAGE"), err_msg=kind)
    finally:
        memory.rm("memory://fast-read", recursive=True)


def test_planes_mix_with_other_dask_arrays(tmp_path: Path) -> None:
    """Read planes are plain dask arrays: arithmetic with other dask arrays works in xarray."""
    path = tmp_path / "l2.fits"
    arrays = write_level2(path)
    ds = FitsImageFormatter().read(str(path))
    assert type(ds["image"].data) is da.Array
    other = xr.DataArray(da.ones(ds["image"].shape, chunks=(3, 5)), dims=ds["image"].dims)
    np.testing.assert_array_equal((ds["image"] - other).values, arrays["IMAGE"] - 1)
    first = ds["image"].values
    first[:] = -1
    np.testing.assert_array_equal(ds["image"].values, arrays["IMAGE"])
    clone = pickle.loads(pickle.dumps(ds["image"].data))
    np.testing.assert_array_equal(np.asarray(clone), arrays["IMAGE"])


def test_open_imports_no_astropy(tmp_path: Path) -> None:
    """Opening a standard file and reading pixels and wavelengths needs neither astropy.io.fits
    (about 0.2-0.5 s to import) nor astropy.wcs."""
    path = tmp_path / "l2.fits"
    write_level2(path)
    code = (
        "import sys\n"
        "from spherex_dask.io import FitsImageFormatter\n"
        f"ds = FitsImageFormatter().read({str(path)!r})\n"
        "ds['image'].values; ds['wavelength'].values\n"
        "print(sorted(m for m in sys.modules if m.startswith('astropy')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_odd_layouts_read_as_before(tmp_path: Path) -> None:
    """Primary-only data, lower-case names, cubes and tables: planes as astropy sees them."""
    from .test_fits_scan import _odd_layout

    path = tmp_path / "odd.fits"
    _odd_layout(path)
    ds = FitsImageFormatter().read(str(path))
    assert list(ds.data_vars) == ["image", "mask"]
    np.testing.assert_array_equal(ds["image"].values, fits.getdata(path, 0))
    np.testing.assert_array_equal(ds["mask"].values, fits.getdata(path, "mask"))
    assert ds["mask"].dtype == np.uint16


class _TaskCounter:
    """Counts the tasks dask's local schedulers run while it is active."""

    def __init__(self) -> None:
        from dask.callbacks import Callback

        self.count = 0
        self.callback = Callback(pretask=self._pretask)

    def _pretask(self, key: object, dsk: object, state: object) -> None:
        self.count += 1

    def __enter__(self) -> _TaskCounter:
        self.callback.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.callback.__exit__(*exc)


def test_one_chunk_planes_compute_with_one_read(tmp_path: Path) -> None:
    """A one-chunk plane's ``.values``/``compute()`` runs its read directly (no dask task), gives
    a new array each time, and is dask's own compute when given arguments or chunked."""
    path = tmp_path / "l2.fits"
    arrays = write_level2(path)
    ds = FitsImageFormatter().read(str(path))
    x = ds["image"].data
    with _TaskCounter() as counter:
        first, second = ds["image"].values, x.compute()
        spectral = ds["wavelength"].values
        assert counter.count == 0
        np.testing.assert_array_equal(first, arrays["IMAGE"])
        np.testing.assert_array_equal(second, arrays["IMAGE"])
        assert not np.shares_memory(first, second)
        assert first.flags.writeable
        assert spectral.shape == x.shape
        np.testing.assert_array_equal(x.compute(scheduler="sync"), arrays["IMAGE"])
        assert counter.count > 0
        ran = counter.count
        chunked = FitsImageFormatter().read(str(path), parameters={"chunks": (3, 5)})["image"]
        np.testing.assert_array_equal(chunked.values, arrays["IMAGE"])
        assert counter.count > ran
    with dask.config.set(scheduler=dask.get), _TaskCounter() as counter:  # a callable: dask's
        np.testing.assert_array_equal(np.asarray(x), arrays["IMAGE"])
        assert counter.count > 0
    assert "compute" in repr(x.compute)


def test_one_chunk_compute_leaves_derived_arrays_alone(tmp_path: Path) -> None:
    """Persisted copies and derived arrays keep dask's semantics; an assignment is honoured."""
    path = tmp_path / "l2.fits"
    arrays = write_level2(path)
    x = FitsImageFormatter().read(str(path))["image"].data
    persisted = x.persist()
    got = x.compute()
    got[:] = -1
    np.testing.assert_array_equal(persisted.compute(), arrays["IMAGE"])
    assert "compute" not in persisted.__dict__
    assert "compute" not in (x + 1).__dict__
    np.testing.assert_array_equal((x + 1).compute(), arrays["IMAGE"] + 1)
    x[0, 0] = 42.0  # dask's item assignment renames the array in place
    assert x.compute()[0, 0] == 42.0
    np.testing.assert_array_equal(x.compute()[1:], arrays["IMAGE"][1:])


def test_one_chunk_compute_keeps_no_reference_cycle(tmp_path: Path) -> None:
    path = tmp_path / "l2.fits"
    write_level2(path)
    x = FitsImageFormatter().read(str(path))["image"].data
    ref = weakref.ref(x)
    del x
    assert ref() is None  # freed by reference counting, without the cycle collector


def test_one_chunk_compute_uses_a_default_distributed_client(tmp_path: Path) -> None:
    """With a distributed client as the default scheduler, the read runs on the cluster."""
    import distributed

    path = tmp_path / "l2.fits"
    arrays = write_level2(path)
    x = FitsImageFormatter().read(str(path))["image"].data
    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        np.testing.assert_array_equal(x.compute(), arrays["IMAGE"])
        assert any(
            prefix.startswith("read-fits-image") for prefix in cluster.scheduler.task_prefixes
        )


def test_one_chunk_compute_pickles_as_a_bound_method(tmp_path: Path) -> None:
    """``x.compute`` pickles (``dask.delayed(x.compute)``, ``client.submit(x.compute)``, process
    pools), as dask's bound method does, and computes the same values once unpickled."""
    import cloudpickle

    path = tmp_path / "l2.fits"
    arrays = write_level2(path)
    x = FitsImageFormatter().read(str(path))["image"].data
    for dumps in (pickle.dumps, cloudpickle.dumps):
        compute = pickle.loads(dumps(x.compute))
        np.testing.assert_array_equal(compute(), arrays["IMAGE"])
    delayed = dask.delayed(x.compute)()
    np.testing.assert_array_equal(delayed.compute(scheduler="processes"), arrays["IMAGE"])


def test_one_chunk_coordinates_of_an_astropy_model_own_their_values(tmp_path: Path) -> None:
    """``.values`` of a coordinate evaluated through astropy holds its own plane only (it was
    a view of both planes, keeping twice the memory alive)."""
    path = tmp_path / "l2.fits"
    write_level2(path)
    with fits.open(path, mode="update") as hdul:
        hdul["IMAGE"].header["PC1_2W"] = 1e-3  # not a plain grid: astropy evaluates the model
    ds = FitsImageFormatter().read(str(path))
    for name in ("wavelength", "bandwidth"):
        values = ds[name].values
        assert values.base is None
        assert values.flags.c_contiguous
        assert values.dtype == np.float32
        np.testing.assert_array_equal(values, da.Array.compute(ds[name].data))


def test_component_coordinates_compute_with_one_read(tmp_path: Path) -> None:
    """A wavelength read as a component keeps the one-read compute of the full read."""
    path = tmp_path / "l2.fits"
    write_level2(path)
    full = FitsImageFormatter().read(str(path))["wavelength"].values
    component = FitsImageFormatter().read(str(path), component="wavelength")
    with _TaskCounter() as counter:
        np.testing.assert_array_equal(component.values, full)
        assert counter.count == 0
