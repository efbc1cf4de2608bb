# SPDX-License-Identifier: BSD-3-Clause
"""The datastore on S3 through s3fs, against a real moto server on 127.0.0.1."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from spherex_dask.errors import FileMissingError, IngestError
from spherex_dask.io import FileDatastore

from .conftest import raw_ref, write_level2

pytestmark = pytest.mark.integration

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")


@pytest.fixture(scope="module")
def s3_options():
    """A moto S3 server on a free loopback port, with one bucket; stopped afterwards."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {
            "endpoint_url": f"http://{host}:{port}",
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "us-west-2"},
        }
        fs = s3fs.S3FileSystem(**options)
        fs.mkdir("spherex-test")
        yield options
    finally:
        server.stop()


@pytest.fixture
def s3_store(s3_options, request) -> FileDatastore:
    prefix = request.node.name.replace("[", "_").replace("]", "")
    return FileDatastore(f"s3://spherex-test/{prefix}", storage_options=s3_options, checksum="md5")


def _image() -> xr.Dataset:
    data = np.arange(30, dtype=np.float32).reshape(5, 6)
    return xr.Dataset(
        {
            "image": (("y", "x"), data, {"BUNIT": "MJy/sr"}),
            "flags": (("y", "x"), data.astype(np.int32)),
        },
        coords={"y": np.arange(5), "x": np.arange(6)},
    )


@pytest.mark.parametrize("formatter", ["fits", "zarr"])
def test_put_get_exists_remove(s3_store, formatter) -> None:
    """put/get/exists/verify/remove round trip on S3, lazily read back, bbox included."""
    ref = raw_ref(7, 2)
    location = s3_store.put(_image(), ref, formatter=formatter)
    assert s3_store.uri(location).startswith("s3://spherex-test/")
    assert s3_store.exists(location)
    s3_store.verify(location)
    back = s3_store.get(ref, location)
    xr.testing.assert_identical(back.load(), _image())
    cut = s3_store.get(ref, location, parameters={"bbox": (1, 3, 2, 5)}, component="flags")
    np.testing.assert_array_equal(cut.values, _image()["flags"].values[1:3, 2:5])
    s3_store.remove(location)
    assert not s3_store.exists(location)
    with pytest.raises(FileMissingError, match="missing"):
        s3_store.get(ref, location)


def test_ingest_copy_and_undo(s3_store, tmp_path) -> None:
    """Local files ingest by copy (and auto = copy); link modes are refused; undo removes."""
    source = tmp_path / "l2.fits"
    arrays = write_level2(source)
    ref = raw_ref(3, 3)
    [location] = s3_store.prepare_ingest([(str(source), ref)], transfer="auto")
    assert location.formatter == "fits"
    assert location.size == os.path.getsize(source)
    np.testing.assert_array_equal(s3_store.get(ref, location)["image"].values, arrays["IMAGE"])
    wave = s3_store.get(ref, location, component="wavelength")
    assert wave.shape == arrays["IMAGE"].shape
    with pytest.raises(IngestError, match="symlink"):
        s3_store.prepare_ingest([(str(source), raw_ref(4, 3))], transfer="symlink")
    s3_store.undo_ingest([location], transfer="copy")
    assert not s3_store.exists(location)
    assert source.exists()


def test_zarr_store_readable_by_plain_xarray(s3_store, s3_options) -> None:
    """A zarr store put on S3 opens with xarray.open_zarr and the same storage options."""
    location = s3_store.put(_image(), raw_ref(8, 1), formatter="zarr")
    ds = xr.open_zarr(s3_store.uri(location), storage_options=s3_options)
    np.testing.assert_array_equal(ds["image"].values, _image()["image"].values)


def test_ingest_zarr_directory_by_copy(s3_store, tmp_path) -> None:
    """A local zarr store (a directory) is uploaded on ingest, checksummed and read back."""
    from spherex_dask.io import ZarrFormatter

    source = str(tmp_path / "image.zarr")
    ZarrFormatter().write(_image(), source)
    ref = raw_ref(11, 4)
    [location] = s3_store.prepare_ingest([(source, ref)], transfer="copy")
    assert location.formatter == "zarr"
    assert location.checksum.startswith("md5:")
    s3_store.verify(location)
    xr.testing.assert_identical(s3_store.get(ref, location).load(), _image())
    s3_store.remove([location])
    assert not s3_store.exists(location)
