# SPDX-License-Identifier: BSD-3-Clause
"""FileDatastore on local disk: put/get, templates, checksums, ingest modes, undo, remove."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.table import Table

from spherex_dask.errors import (
    ChecksumError,
    DatastoreError,
    FileMissingError,
    FormatterError,
    IngestError,
    TemplateError,
    UnknownFormatterError,
)
from spherex_dask.io import FileDatastore, FitsImageFormatter, JsonFormatter, default_formatters
from spherex_dask.types import DataId, DatasetRef

from .conftest import DARK, META, RAW, TABLE, raw_ref

RAW_TEMPLATE = "{run}/{dataset_type}/{planning_period}/{exposure.obs_id}/{dataset_type}_{exposure.obs_id}_D{detector}"


def _image(shape=(6, 5)) -> xr.Dataset:
    rng = np.random.default_rng(3)
    return xr.Dataset(
        {
            "image": (("y", "x"), rng.normal(size=shape).astype(np.float32), {"BUNIT": "e-/s"}),
            "flags": (("y", "x"), rng.integers(0, 9, shape).astype(np.int32)),
        },
        coords={"y": np.arange(shape[0]), "x": np.arange(shape[1])},
        attrs={"VERSION": "v1"},
    )


def _files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    )


@pytest.fixture
def store(tmp_path) -> FileDatastore:
    return FileDatastore(
        str(tmp_path / "repo"), templates={"raw": RAW_TEMPLATE}, checksum="blake2b"
    )


@pytest.mark.parametrize("formatter", ["zarr", "fits"])
def test_put_get_round_trip(store, formatter) -> None:
    """put writes under the template with the formatter's extension; get reads it back lazily."""
    ref = raw_ref(73, 3, obs_id="2025W19_2B_0073_2")
    location = store.put(_image(), ref, formatter=formatter)
    suffix = ".zarr" if formatter == "zarr" else ".fits"
    assert (
        location.path
        == f"rawexpr/raw/2025W19_2B/2025W19_2B_0073_2/raw_2025W19_2B_0073_2_D3{suffix}"
    )
    assert location.formatter == formatter
    assert location.dataset_id == ref.id
    assert location.size > 0
    assert location.checksum.startswith("blake2b:")
    assert store.exists(location)
    assert store.uri(location) == os.path.join(store.root, *location.path.split("/"))
    back = store.get(ref, location)
    xr.testing.assert_identical(back.load(), _image())
    flags = store.get(
        DatasetRef(
            id=ref.id, dataset_type=RAW.component_type("flags"), data_id=ref.data_id, run=ref.run
        ),
        [location],
    )
    np.testing.assert_array_equal(flags.values, _image()["flags"].values)
    cut = store.get(ref, location, parameters={"bbox": (1, 3, 0, 2)}, component="image")
    np.testing.assert_array_equal(cut.values, _image()["image"].values[1:3, :2])
    store.verify(location)
    assert not [p for p in _files(Path(store.root)) if os.path.basename(p).startswith(".")]


def test_default_and_overridden_formatters(tmp_path) -> None:
    """Storage-class defaults (zarr, parquet, json) apply unless a dataset type overrides them."""
    store = FileDatastore(str(tmp_path), formatters={"dark": "fits"})
    dark = DatasetRef.make(DARK, DataId({"instrument": "SPHEREx", "detector": 2}), "darkr")
    assert store.put(_image(), dark).formatter == "fits"
    assert store.put(_image(), raw_ref()).formatter == "zarr"
    table = DatasetRef.make(TABLE, DataId({"instrument": "SPHEREx", "detector": 2}), "cat")
    location = store.put(Table({"a": [1, 2]}), table)
    assert location.path.endswith(".parquet")
    assert list(store.get(table, location)["a"]) == [1, 2]
    meta = DatasetRef.make(META, DataId({"instrument": "SPHEREx"}), "m")
    assert store.get(meta, store.put({"k": [1]}, meta)) == {"k": [1]}
    with pytest.raises(UnknownFormatterError, match="registered: ecsv"):
        FileDatastore(str(tmp_path), formatters={"dark": "hdf5"})


def test_put_refuses_existing_target_and_wrong_type(store) -> None:
    """A taken path (same dataset, or a template collision) and a wrong type are refused."""
    ref = raw_ref(1, 3, obs_id="2025W19_2B_0001_1")
    store.put(_image(), ref)
    with pytest.raises(DatastoreError, match="exists"):
        store.put(_image(), ref)
    twin = raw_ref(2, 3, obs_id="2025W19_2B_0001_1")  # inconsistent records: same obs_id
    with pytest.raises(DatastoreError, match="same path"):
        store.put(_image(), twin)
    with pytest.raises(FormatterError, match=r"xarray.Dataset"):
        store.put({"not": "an image"}, raw_ref(3, 3))
    with pytest.raises(DatastoreError, match="component"):
        store.put(
            _image(),
            DatasetRef(
                id=ref.id, dataset_type=RAW.component_type("image"), data_id=ref.data_id, run="r"
            ),
        )


def test_template_must_be_unique(tmp_path) -> None:
    """A template that cannot separate datasets is rejected before writing."""
    store = FileDatastore(str(tmp_path), templates={"raw": "{run}/{dataset_type}/{detector}"})
    with pytest.raises(TemplateError, match="exposure"):
        store.put(_image(), raw_ref())
    assert _files(tmp_path) == []


class ExplodingFormatter(JsonFormatter):
    """Writes half a file, then fails."""

    name = "json"

    def write(self, obj, path, *, storage_options=None) -> None:
        Path(path).write_text('{"half": ')
        raise OSError("disk full")


def test_failed_put_leaves_nothing(tmp_path) -> None:
    """A write that fails half-way leaves no temporary and no final file."""
    registry = default_formatters()
    registry.register(ExplodingFormatter(), replace=True)
    store = FileDatastore(str(tmp_path / "repo"), formatter_registry=registry)
    meta = DatasetRef.make(META, DataId({"instrument": "SPHEREx"}), "m")
    with pytest.raises(OSError, match="disk full"):
        store.put({"a": 1}, meta)
    assert _files(tmp_path / "repo") == []


def test_get_errors(store) -> None:
    """Missing file, checksum mismatch and corrupt file give distinct, named errors."""
    ref = raw_ref(5, 1)
    location = store.put(_image(), ref, formatter="fits")
    path = store.uri(location)
    with open(path, "r+b") as f:
        f.seek(2880 * 2 + 10)
        f.write(b"\x7f")
    with pytest.raises(ChecksumError, match="checksum"):
        store.get(ref, location, verify=True)
    store.get(ref, location)  # not verified by default
    with open(path, "r+b") as f:
        f.truncate(5000)
    with pytest.raises(ChecksumError, match="bytes"):
        store.verify(location)
    with pytest.raises(FormatterError, match=os.path.basename(path)) as info:
        store.get(ref, location)
    assert any("while reading raw" in note for note in info.value.__notes__)
    os.unlink(path)
    with pytest.raises(FileMissingError, match=r"raw \{detector: 1.*is missing") as missing:
        store.get(ref, location)
    assert path in str(missing.value)
    with pytest.raises(FileMissingError):
        store.verify(location)
    assert not store.exists(location)


def test_verify_on_get_default(tmp_path) -> None:
    """verify_on_get=True checks every get."""
    store = FileDatastore(str(tmp_path), checksum="md5", verify_on_get=True)
    meta = DatasetRef.make(META, DataId({"instrument": "SPHEREx"}), "m")
    location = store.put({"a": 1}, meta)
    Path(store.uri(location)).write_text('{"a": 2}\n')
    with pytest.raises(ChecksumError):
        store.get(meta, location)


def test_remove(store, tmp_path) -> None:
    """remove deletes files and empty directories, skips direct ingests, tolerates repeats."""
    ref = raw_ref(9, 2)
    location = store.put(_image(), ref)
    source, _ = _level2_file(tmp_path)
    direct = store.prepare_ingest([(source, raw_ref(10, 2))], transfer="direct")
    store.remove([location, *direct])
    store.remove(location)
    assert not store.exists(location)
    assert os.path.exists(source)
    assert list(Path(store.root).iterdir()) == []


def _level2_file(tmp_path: Path, name: str = "src.fits", **options) -> tuple[str, dict]:
    from .conftest import write_level2

    path = tmp_path / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    return str(path), write_level2(path, **options)


@pytest.mark.parametrize(
    "mode", ["copy", "move", "symlink", "relsymlink", "hardlink", "auto", "direct"]
)
def test_ingest_modes(store, tmp_path, mode) -> None:
    """Each transfer mode puts the file in place (or records it) and get reads it."""
    source, arrays = _level2_file(tmp_path)
    ref = raw_ref(73, 3)
    [location] = store.prepare_ingest([(source, ref)], transfer=mode)
    assert location.formatter == "fits"
    assert location.size == os.path.getsize(store.uri(location))
    target = store.uri(location)
    if mode == "direct":
        assert location.path == source
        assert target == source
    else:
        assert location.path.endswith("raw_2025W19_2B_0073_1_D3.fits")
        assert not os.path.isabs(location.path)
    assert os.path.islink(target) == (mode in ("symlink", "relsymlink"))
    if mode == "relsymlink":
        assert not os.path.isabs(os.readlink(target))
    if mode in ("hardlink", "auto"):
        assert os.path.samefile(target, source)
    assert os.path.exists(source) == (mode != "move")
    np.testing.assert_array_equal(store.get(ref, location)["image"].values, arrays["IMAGE"])
    store.verify(location)


def test_ingest_is_all_or_nothing(store, tmp_path) -> None:
    """One unreadable file fails the call naming it, before anything is transferred."""
    good, _ = _level2_file(tmp_path, "good.fits")
    bad = tmp_path / "incoming" / "bad.fits"
    bad.write_bytes(b"not a fits file at all")
    with pytest.raises(IngestError, match=r"bad.fits"):
        store.prepare_ingest([(good, raw_ref(1, 1)), (str(bad), raw_ref(2, 1))], transfer="move")
    assert os.path.exists(good)
    assert not os.path.exists(store.root)
    with pytest.raises(IngestError, match=r"missing.fits.*does not exist"):
        store.prepare_ingest([(str(tmp_path / "missing.fits"), raw_ref(3, 1))])
    with pytest.raises(IngestError, match="both go to"):
        store.prepare_ingest([(good, raw_ref(1, 1)), (good, raw_ref(1, 1))], transfer="copy")
    with pytest.raises(IngestError, match="Unknown transfer mode"):
        store.prepare_ingest([(good, raw_ref(1, 1))], transfer="teleport")
    with pytest.raises(IngestError, match="not readable as 'json'"):
        store.prepare_ingest([(good, raw_ref(1, 1))], formatter="json")


def _fail_transfer_of(monkeypatch, name: str, message: str) -> None:
    """Make the ingest's transfer of the file named ``name`` raise ``OSError(message)``."""
    import spherex_dask.io._ingest as ingest_module

    real = ingest_module.transfer

    def flaky(source, final, mode, **kwargs):
        if source.endswith(name):
            raise OSError(message)
        return real(source, final, mode, **kwargs)

    monkeypatch.setattr(ingest_module, "transfer", flaky)


def test_ingest_failure_mid_transfer_undoes(store, tmp_path, monkeypatch) -> None:
    """A transfer failing half-way moves the earlier files back and raises IngestError."""
    sources = [_level2_file(tmp_path, f"f{i}.fits", seed=i)[0] for i in range(3)]
    _fail_transfer_of(monkeypatch, "f2.fits", "network gone")
    items = [(s, raw_ref(i + 1, 1)) for i, s in enumerate(sources)]
    with pytest.raises(
        IngestError, match=r"f2.fits.*network gone.*2 transfer\(s\) already made were undone"
    ):
        store.prepare_ingest(items, transfer="move")
    assert all(os.path.exists(s) for s in sources)
    assert _files(Path(store.root)) == []


@pytest.mark.parametrize("mode", ["copy", "move", "symlink"])
def test_ingest_failure_in_the_middle_undoes_every_transfer(store, tmp_path, monkeypatch, mode):
    """One of many files failing (copies run on threads) leaves neither files nor links behind."""
    source, _ = _level2_file(tmp_path, "template.fits")
    sources = []
    for i in range(24):
        path = tmp_path / "incoming" / f"g{i}.fits"
        shutil.copyfile(source, path)
        sources.append(str(path))
    _fail_transfer_of(monkeypatch, "g17.fits", "disk full")
    items = [(s, raw_ref(i + 1, 1)) for i, s in enumerate(sources)]
    with pytest.raises(IngestError, match=r"g17.fits.*disk full.*already made were undone"):
        store.prepare_ingest(items, transfer=mode)
    assert all(os.path.exists(s) for s in sources)
    assert not os.path.exists(store.root) or _files(Path(store.root)) == []
    # Without the failure, all of them are ingested.
    monkeypatch.undo()
    locations = store.prepare_ingest(items, transfer=mode)
    assert [loc.dataset_id for loc in locations] == [ref.id for _, ref in items]
    assert len(_files(Path(store.root))) == len(sources)


@pytest.mark.parametrize("mode", ["copy", "move", "symlink", "direct"])
def test_undo_ingest(store, tmp_path, mode) -> None:
    """undo_ingest (after a failed registry insert) restores the state before the ingest."""
    source, _ = _level2_file(tmp_path)
    locations = store.prepare_ingest([(source, raw_ref(4, 4))], transfer=mode)
    store.undo_ingest(locations, transfer=mode)
    assert os.path.exists(source)
    assert not os.path.exists(store.root) or _files(Path(store.root)) == []


def test_ingest_refuses_taken_destination(store, tmp_path) -> None:
    """Ingesting onto an existing dataset's path is an IngestError naming the file."""
    source, _ = _level2_file(tmp_path)
    store.prepare_ingest([(source, raw_ref(4, 4))], transfer="copy")
    with pytest.raises(IngestError, match=r"src.fits.*exists in the datastore"):
        store.prepare_ingest([(source, raw_ref(4, 4))], transfer="copy")


def test_ingest_guesses_format_by_content(store, tmp_path) -> None:
    """A FITS file with another extension is recognised; its suffix becomes .fits."""
    source, _ = _level2_file(tmp_path, "frame.dat")
    [location] = store.prepare_ingest([(source, raw_ref(8, 2))], transfer="copy")
    assert location.formatter == "fits"
    assert location.path.endswith(".fits")
    assert isinstance(store.formatters[location.formatter], FitsImageFormatter)


def test_retrieve(store, tmp_path) -> None:
    """retrieve copies files out keeping (or flattening) their paths, never overwriting."""
    locations = [store.put(_image(), raw_ref(i, 1), formatter="fits") for i in (1, 2)]
    out = tmp_path / "out"
    paths = store.retrieve(locations, str(out))
    assert [os.path.relpath(p, out) for p in paths] == [loc.path for loc in locations]
    assert all(
        Path(p).read_bytes() == Path(store.uri(loc)).read_bytes()
        for p, loc in zip(paths, locations, strict=True)
    )
    flat = store.retrieve(
        locations, str(tmp_path / "flat"), preserve_path=False, transfer="symlink"
    )
    assert all(os.path.islink(p) and os.path.dirname(p) == str(tmp_path / "flat") for p in flat)
    with pytest.raises(DatastoreError, match="taken"):
        store.retrieve(locations, str(out))
    with pytest.raises(DatastoreError, match="move"):
        store.retrieve(locations, str(tmp_path / "x"), transfer="move")


def test_zarr_ingest_and_checksum_of_directories(tmp_path) -> None:
    """A zarr store (a directory) can be ingested by copy; its checksum covers every file."""
    from spherex_dask.io import ZarrFormatter

    source = str(tmp_path / "in" / "image.zarr")
    ZarrFormatter().write(_image(), source)
    store = FileDatastore(str(tmp_path / "repo"), checksum="md5")
    [location] = store.prepare_ingest([(source, raw_ref(1, 1))], transfer="auto")
    assert location.formatter == "zarr"
    assert location.path.endswith(".zarr")
    xr.testing.assert_identical(store.get(raw_ref(1, 1), location).load(), _image())
    store.verify(location)
    chunk = next(p for p in Path(store.uri(location)).rglob("c/*") if p.is_file())
    chunk.write_bytes(chunk.read_bytes() + b"x")
    with pytest.raises(ChecksumError):
        store.verify(location)
