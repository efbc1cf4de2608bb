"""The Butler facade over a real SQLite registry and a local datastore."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from spherex_dask.butler import Butler, FileDataset
from spherex_dask.errors import (
    ChecksumError,
    DataIdError,
    DatasetNotFoundError,
    DatastoreError,
    FileMissingError,
    FormatterError,
    IngestError,
    MissingCollectionError,
)
from spherex_dask.ingest import ingest_simulated, register_instrument
from spherex_dask.sim import simulate
from spherex_dask.types import DatasetType

SIZE = 32


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory):
    return simulate(tmp_path_factory.mktemp("sim"), exposures=2, detectors=(1, 2), size=SIZE, seed=5)


@pytest.fixture
def butler(tmp_path: Path, sim) -> Butler:
    b = Butler.create(tmp_path / "repo", checksum="blake2b")
    ingest_simulated(b, sim.root, ingest_type="raw", transfer="symlink")
    ingest_simulated(b, sim.root, ingest_type="dark", transfer="copy")
    b.collections = ["rawexpr", "darkr"]
    return b


def raw_id(sim, detector: int = 1) -> dict:
    return {"instrument": "SPHEREx", "exposure": sim.exposures[0].exposure_id, "detector": detector}


def raw_path(sim, detector: int = 1) -> Path:
    exposure = sim.exposures[0]
    return next(
        f.path for f in sim.files
        if f.kind == "raw" and f.detector == detector and f.exposure == exposure
    )


def test_get_is_lazy_and_equals_astropy(butler: Butler, sim) -> None:
    """get returns a dask-backed Dataset whose pixels equal the file's."""
    ds = butler.get("raw", raw_id(sim))
    assert isinstance(ds, xr.Dataset)
    assert ds.image.chunks is not None
    np.testing.assert_array_equal(ds.image.values, fits.getdata(raw_path(sim), "IMAGE"))


def test_get_component_and_bbox(butler: Butler, sim) -> None:
    """raw.flags reads one component; parameters={'bbox': ...} reads one region."""
    flags = butler.get("raw.flags", raw_id(sim))
    np.testing.assert_array_equal(flags.values, fits.getdata(raw_path(sim), "FLAGS"))
    part = butler.get("raw", raw_id(sim), parameters={"bbox": (4, 12, 0, 8)})
    assert part.image.shape == (8, 8)
    np.testing.assert_array_equal(part.image.values, fits.getdata(raw_path(sim), "IMAGE")[4:12, 0:8])


def test_get_by_obs_id_alternate_key(butler: Butler, sim) -> None:
    """An exposure can be named by its obs_id string."""
    ds = butler.get("raw", instrument="SPHEREx", exposure=sim.exposures[0].obs_id, detector=1)
    assert ds.image.shape == (SIZE, SIZE)


def test_wrong_data_id_is_a_clear_error(butler: Butler, sim) -> None:
    """A data ID with no dataset names what was searched."""
    with pytest.raises(DatasetNotFoundError, match="rawexpr") as caught:
        butler.get("raw", raw_id(sim, detector=1) | {"exposure": 1})
    # The exposure does not exist at all: the error says so, and how to list the known ones.
    assert "exposure=1 has no dimension record" in str(caught.value)
    assert "query-dimension-records REPO exposure" in str(caught.value)
    assert not butler.exists("raw", raw_id(sim) | {"detector": 6})
    # Detector 6 exists (the instrument has six), with no dataset: the general advice.
    with pytest.raises(DatasetNotFoundError, match="check the data ID and collections"):
        butler.get("raw", raw_id(sim) | {"detector": 6})
    typo = {k: v for k, v in raw_id(sim).items() if k != "detector"} | {"detectr": 1}
    with pytest.raises(DataIdError, match="Unknown dimension 'detectr'"):
        butler.get("raw", typo)


def test_put_get_round_trip_zarr(butler: Butler, sim) -> None:
    """put writes a new dataset (zarr for images by default) that get reads back."""
    dt = DatasetType(name="calexp", dimensions=("instrument", "exposure", "detector"),
                     storage_class="SpectralImage")
    raw = butler.get("raw", raw_id(sim))
    ref = butler.put(raw, dt, raw_id(sim), run="out")
    back = butler.get(ref)
    np.testing.assert_array_equal(back.image.values, raw.image.values)
    assert butler.exists("calexp", raw_id(sim), collections=["out"])
    uri = butler.get_uri("calexp", raw_id(sim), collections="out")
    assert xr.open_zarr(uri).image.shape == (SIZE, SIZE)


def test_missing_file_and_checksum_errors(butler: Butler, sim, tmp_path: Path) -> None:
    """A deleted file, an altered file and a corrupt file each get a clear error on get."""
    dark_uri = Path(butler.get_uri("dark", instrument="SPHEREx", detector=1))
    data = bytearray(dark_uri.read_bytes())
    data[-100] ^= 0xFF
    dark_uri.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=dark_uri.name):
        butler.datastore.verify(butler.registry.get_locations(
            [butler.find_dataset("dark", instrument="SPHEREx", detector=1).id]).popitem()[1][0])
    with pytest.raises(ChecksumError, match=dark_uri.name):
        butler.get("dark", instrument="SPHEREx", detector=1, verify=True)
    butler.get("dark", instrument="SPHEREx", detector=1)  # lazy reads are not verified
    dark_uri.write_bytes(b"SIMPLE  = not really a FITS file")
    with pytest.raises((FormatterError, ChecksumError), match=dark_uri.name):
        butler.get("dark", instrument="SPHEREx", detector=1).image.values  # noqa: B018
    dark_uri.unlink()
    with pytest.raises(FileMissingError, match=dark_uri.name):
        butler.get("dark", instrument="SPHEREx", detector=1)


def test_ingest_is_all_or_nothing(tmp_path: Path, sim) -> None:
    """A duplicate, unreadable or unknown file fails the whole ingest and changes nothing."""
    butler = Butler.create(tmp_path / "repo")
    register_instrument(butler.registry)
    ingest_simulated(butler, sim.root, ingest_type="raw")  # records for exposures
    good = FileDataset(path=str(raw_path(sim, 1)), dataset_type="raw", data_id=raw_id(sim, 1))
    dup = FileDataset(path=str(raw_path(sim, 2)), dataset_type="raw", data_id=raw_id(sim, 1))
    with pytest.raises(IngestError, match=raw_path(sim, 2).name):
        butler.ingest(good, dup, transfer="copy", run="again")
    missing = FileDataset(path=str(tmp_path / "nope.fits"), dataset_type="raw",
                          data_id=raw_id(sim, 2))
    with pytest.raises(IngestError, match=r"nope\.fits"):
        butler.ingest(good, missing, transfer="copy", run="again")
    bad_id = FileDataset(path=str(raw_path(sim, 2)), dataset_type="raw",
                         data_id=raw_id(sim, 2) | {"exposure": 99})
    with pytest.raises(IngestError, match="99"):
        butler.ingest(good, bad_id, transfer="copy", run="again")
    assert "again" not in butler.registry.query_collections("*")
    assert not (tmp_path / "repo" / "again").exists() or not any(
        p.is_file() for p in (tmp_path / "repo" / "again").rglob("*"))


@pytest.mark.parametrize("transfer", ["copy", "move"])
def test_interrupt_after_the_commit_keeps_the_files(
    tmp_path: Path, sim, transfer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt (Ctrl-C, SIGTERM) that arrives after the registry committed and before
    the code after the transaction runs does not undo the transfers (or the put) of datasets
    that are registered: no registered dataset is left without its file."""
    import shutil
    from contextlib import contextmanager

    from spherex_dask.registry import Registry

    butler = Butler.create(tmp_path / "repo")
    register_instrument(butler.registry)
    ingest_simulated(butler, sim.root, ingest_type="raw", transfer="symlink")  # records
    butler.registry.register_dataset_type(
        DatasetType(name="meta", dimensions=("exposure", "detector"), storage_class="StructuredData")
    )
    source = tmp_path / "incoming.fits"
    shutil.copy(raw_path(sim, 1), source)
    committed = Registry.transaction

    @contextmanager
    def interrupted_after_commit(self: Registry):
        with committed(self):
            yield
        raise KeyboardInterrupt

    monkeypatch.setattr(Registry, "transaction", interrupted_after_commit)
    with pytest.raises(KeyboardInterrupt):
        butler.ingest(FileDataset(path=str(source), dataset_type="raw", data_id=raw_id(sim, 1)),
                      transfer=transfer, run="late")  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        butler.put({"gain": 1.5}, "meta", raw_id(sim, 1), run="late")
    monkeypatch.undo()
    butler.collections = ["late"]
    assert butler.exists("raw", raw_id(sim, 1))
    assert butler.get("raw", raw_id(sim, 1)).image.shape == (SIZE, SIZE)
    assert butler.get("meta", raw_id(sim, 1)) == {"gain": 1.5}


@pytest.mark.parametrize("transfer", ["copy", "symlink"])
def test_failed_ingest_simulated_leaves_no_records(tmp_path: Path, sim, transfer: str) -> None:
    """ingest_simulated is all or nothing, dimension records included: a truncated file
    among good ones leaves a fresh repository without instrument or exposure records."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for f in sim.files:
        if f.kind == "raw":
            (incoming / f.path.name).write_bytes(f.path.read_bytes())
    cut = incoming / raw_path(sim, 2).name
    cut.write_bytes(cut.read_bytes()[:5000])
    butler = Butler.create(tmp_path / "repo")
    with pytest.raises(IngestError, match=cut.name):
        ingest_simulated(butler, incoming, ingest_type="raw", transfer=transfer)
    for element in ("instrument", "detector", "planning_period", "exposure"):
        assert list(butler.registry.query_dimension_records(element)) == [], element
    assert butler.registry.query_collections("*") == []
    assert not any(p.is_file() for p in (tmp_path / "repo").rglob("*.fits"))
    (incoming / cut.name).write_bytes(raw_path(sim, 2).read_bytes())  # fixed: ingest works
    refs = ingest_simulated(butler, incoming, ingest_type="raw", transfer=transfer)
    assert len(refs) == len(list(incoming.iterdir()))
    assert len(list(butler.registry.query_dimension_records("exposure"))) == len(sim.exposures)


@pytest.mark.parametrize("transfer", ["copy", "symlink", "relsymlink", "hardlink", "move", "direct"])
def test_transfer_modes(tmp_path: Path, sim, transfer: str) -> None:
    """Every transfer mode leaves a readable dataset behind."""
    src = tmp_path / "src"
    src.mkdir()
    path = src / raw_path(sim).name
    path.write_bytes(raw_path(sim).read_bytes())
    butler = Butler.create(tmp_path / "repo")
    ingest_simulated(butler, sim.root, ingest_type="raw", run="records")
    (ref,) = butler.ingest(FileDataset(path=str(path), dataset_type="raw", data_id=raw_id(sim)),
                           transfer=transfer, run="t")
    uri = butler.get_uri(ref)
    assert butler.get(ref).image.shape == (SIZE, SIZE)
    if transfer == "direct":
        assert Path(uri) == path
    elif transfer == "move":
        assert not path.exists()
    elif "symlink" in transfer:
        assert os.path.islink(uri)


def test_prune_and_remove_runs(butler: Butler, sim) -> None:
    """prune_datasets and remove_runs remove entries and files."""
    ref = butler.find_dataset("raw", raw_id(sim))
    uri = Path(butler.get_uri(ref))
    butler.prune_datasets([ref])
    assert butler.find_dataset("raw", raw_id(sim)) is None
    assert not uri.exists()
    assert raw_path(sim).exists()
    n = butler.remove_runs(["rawexpr"])
    assert n == 3
    assert "rawexpr" not in butler.registry.query_collections("*")


def test_failed_export_leaves_nothing_and_can_be_retried(butler: Butler, tmp_path: Path) -> None:
    """An export stopped by a missing file leaves no copies behind (a retry into the same
    directory used to fail with 'is taken'); a second export into it is refused clearly."""
    refs = list(butler.query_datasets("raw", collections=["rawexpr"]))
    Path(butler.get_uri(refs[-1])).unlink()  # the last one's file is gone
    with pytest.raises(FileMissingError):
        butler.export(refs, tmp_path / "exp")
    assert [p for p in (tmp_path / "exp").rglob("*") if p.is_file()] == []
    butler.export(refs[:-1], tmp_path / "exp")
    assert len(Butler.create(tmp_path / "other").import_(tmp_path / "exp")) == len(refs) - 1
    with pytest.raises(DatastoreError, match="holds an export already"):
        butler.export(refs[:1], tmp_path / "exp")


def test_failed_import_registers_nothing(butler: Butler, tmp_path: Path) -> None:
    """An import that fails on a truncated file leaves no run, dataset type, dimension
    record or file behind in the target repository."""
    refs = list(butler.query_datasets("raw", collections=["rawexpr"]))
    butler.export(refs, tmp_path / "exp")
    damaged = sorted((tmp_path / "exp" / "files").rglob("*.fits"))[-1]
    with damaged.open("r+b") as f:
        f.truncate(1000)
    other = Butler.create(tmp_path / "other")
    with pytest.raises(IngestError, match=damaged.name):
        other.import_(tmp_path / "exp")
    assert other.registry.query_collections("*") == []
    assert other.registry.query_dataset_types("*") == []
    assert list(other.registry.query_dimension_records("exposure")) == []
    assert [p.name for p in (tmp_path / "other").iterdir() if p.is_dir()] == []


def test_get_of_a_pruned_ref_says_it_is_not_registered(butler: Butler, sim) -> None:
    """get(ref) of a purged dataset does not claim it is registered without a file."""
    ref = butler.find_dataset("raw", raw_id(sim))
    butler.prune_datasets([ref])
    with pytest.raises(DatasetNotFoundError, match=r"not in the registry.*pruned") as info:
        butler.get(ref)
    assert "is registered" not in str(info.value)
    unstored = butler.find_dataset("raw", raw_id(sim, 2))
    butler.prune_datasets([unstored], purge=False)
    with pytest.raises(DatasetNotFoundError, match="is registered but has no stored file"):
        butler.get(unstored)


def test_remove_runs_is_all_or_nothing(butler: Butler) -> None:
    """A bad name anywhere in remove_runs removes nothing, not the runs listed before it."""
    uri = Path(butler.get_uri(next(butler.query_datasets("dark", collections="darkr"))))
    with pytest.raises(MissingCollectionError, match="'darkrr'"):
        butler.remove_runs(["darkr", "darkrr"])
    assert "darkr" in butler.registry.query_collections("*")
    assert len(list(butler.query_datasets("dark", collections="darkr"))) == 2
    assert uri.exists()


def test_export_import(butler: Butler, tmp_path: Path) -> None:
    """export + import_ moves datasets with their ids and files to another repository; a second
    import of the same export says that the datasets exist, before copying anything."""
    from spherex_dask.errors import DatasetConflictError

    refs = list(butler.query_datasets("raw", collections=["rawexpr"]))
    butler.export(refs, tmp_path / "exp")
    other = Butler.create(tmp_path / "other")
    imported = other.import_(tmp_path / "exp")
    assert sorted(r.id for r in imported) == sorted(r.id for r in refs)
    files = sorted((tmp_path / "other").rglob("*.fits"))
    with pytest.raises(DatasetConflictError, match=r"(?s)exist in run 'rawexpr'.*export again"):
        other.import_(tmp_path / "exp")
    assert sorted((tmp_path / "other").rglob("*.fits")) == files
    np.testing.assert_array_equal(other.get(imported[0]).image.values,
                                  butler.get(imported[0]).image.values)


def test_import_checks_each_file_with_its_recorded_formatter(
    butler: Butler, sim, tmp_path: Path
) -> None:
    """FITS raws and a zarr store come in together, each checked as its recorded format; a
    damaged file in the export is named, with no advice about options import does not have,
    and nothing is registered."""
    dt = DatasetType(name="calexp", dimensions=("instrument", "exposure", "detector"),
                     storage_class="SpectralImage")  # fmt: skip
    made = butler.put(butler.get("raw", raw_id(sim)), dt, raw_id(sim), run="out")
    raws = list(butler.query_datasets("raw", collections=["rawexpr"]))
    butler.export([made, *raws], tmp_path / "exp")
    other = Butler.create(tmp_path / "other")
    other.import_(tmp_path / "exp")
    np.testing.assert_array_equal(other.get(made).image.values, butler.get(made).image.values)

    butler.export(raws, tmp_path / "exp2")
    damaged = next((tmp_path / "exp2").rglob("*.fits"))
    damaged.write_bytes(damaged.read_bytes()[:5000])
    third = Butler.create(tmp_path / "third")
    with pytest.raises(IngestError, match=rf"{damaged.name}.*not readable as 'fits'") as info:
        third.import_(tmp_path / "exp2")
    assert "formatter=" not in str(info.value)
    assert third.registry.query_dataset_types("*") == []
    assert not list((tmp_path / "third").rglob("*.fits"))


def test_export_import_keeps_certifications_and_tags(
    butler: Butler, sim, tmp_path: Path
) -> None:
    """Darks certified in a CALIBRATION collection (and raws tagged) come out of an import
    certified and tagged the same, so the calibration lookup works in the new repository;
    a certification overlapping one there fails the import, which then changes nothing."""
    from datetime import datetime

    from spherex_dask.errors import CalibrationConflictError
    from spherex_dask.types import CollectionType, Timespan

    registry = butler.registry
    darks = list(butler.query_datasets("dark", collections=["darkr"]))
    raws = list(butler.query_datasets("raw", collections=["rawexpr"]))
    registry.register_collection("calib", CollectionType.CALIBRATION)
    registry.certify("calib", darks[:1], Timespan(datetime(2025, 1, 1), datetime(2025, 3, 1)))
    registry.certify("calib", darks, Timespan(datetime(2025, 3, 1), None))
    registry.register_collection("best", CollectionType.TAGGED)
    registry.associate("best", raws[:1])
    butler.export(darks + raws, tmp_path / "exp")

    other = Butler.create(tmp_path / "other")
    other.import_(tmp_path / "exp")
    associations = registry.query_associations(darks + raws)
    assert len(associations) == 4
    assert other.registry.query_associations(darks + raws) == associations
    assert other.registry.get_collection_type("calib") is CollectionType.CALIBRATION
    dark_id = {"instrument": "SPHEREx", "detector": 1}
    when = Timespan(datetime(2025, 5, 1), datetime(2025, 5, 2))
    found = other.find_dataset("dark", dark_id, collections="calib", timespan=when)
    assert found == butler.find_dataset("dark", dark_id, collections="calib", timespan=when)
    assert found is not None
    assert [r.id for r in other.query_datasets("raw", collections="best")] == [raws[0].id]

    clash = Butler.create(tmp_path / "clash")
    ingest_simulated(clash, sim.root, ingest_type="dark", transfer="copy", run="mine")
    clash.registry.register_collection("calib", CollectionType.CALIBRATION)
    clash.registry.certify("calib", list(clash.query_datasets("dark", collections="mine")),
                           Timespan(None, None))  # fmt: skip
    before = clash.registry.query_collections()
    with pytest.raises(CalibrationConflictError):
        clash.import_(tmp_path / "exp")
    assert clash.registry.query_collections() == before
    assert not any(p.is_file() for p in (tmp_path / "clash").rglob("darkr/**/*"))


def test_export_import_keeps_chains(butler: Butler, tmp_path: Path) -> None:
    """Chains exported with the datasets are made by the import, inner chains first; a chain
    that exists with other members, or lists a collection that is nowhere, fails the whole
    import; ``chains=False`` imports the datasets alone."""
    from spherex_dask.errors import CollectionError, CollectionTypeError, MissingCollectionError
    from spherex_dask.types import CollectionType

    registry = butler.registry
    raws = list(butler.query_datasets("raw", collections=["rawexpr"]))
    registry.register_collection("inner", CollectionType.CHAINED)
    registry.set_collection_chain("inner", ["rawexpr"])
    registry.register_collection("outer", CollectionType.CHAINED)
    registry.set_collection_chain("outer", ["inner", "darkr"])
    darks = list(butler.query_datasets("dark", collections=["darkr"]))
    with pytest.raises(CollectionTypeError, match="'rawexpr' is a RUN collection"):
        butler.export(raws, tmp_path / "bad", chains=["rawexpr"])
    assert not (tmp_path / "bad").exists()
    butler.export(raws + darks, tmp_path / "exp", chains=["outer"])

    other = Butler.create(tmp_path / "other")
    other.import_(tmp_path / "exp")
    assert other.registry.get_collection_chain("outer") == ("inner", "darkr")
    assert other.registry.get_collection_chain("inner") == ("rawexpr",)
    assert other.find_dataset("raw", raws[0].data_id, collections="outer") == raws[0]

    clash = Butler.create(tmp_path / "clash")
    clash.registry.register_run("rawexpr")
    clash.registry.register_collection("inner", CollectionType.CHAINED)
    before = clash.registry.query_collections()
    with pytest.raises(CollectionError, match=r"'inner' exists .* as \[\]"):
        clash.import_(tmp_path / "exp")
    assert clash.registry.query_collections() == before
    assert not any(p.is_file() for p in (tmp_path / "clash").rglob("rawexpr/**/*"))
    assert len(clash.import_(tmp_path / "exp", chains=False)) == len(raws + darks)
    assert clash.registry.get_collection_chain("inner") == ()

    butler.export(raws, tmp_path / "raws-only", chains=["outer"])  # darkr's datasets stay
    index = tmp_path / "raws-only" / "export.json"
    saved = index.read_text()
    old = json.loads(saved)  # as written before the members' types were saved
    for chain in old["chains"]:
        del chain["member_types"]
    index.write_text(json.dumps(old))
    with pytest.raises(MissingCollectionError, match=r"'darkr'.* neither in the export"):
        Butler.create(tmp_path / "third").import_(tmp_path / "raws-only")
    index.write_text(saved)
    third = Butler(tmp_path / "third")
    assert len(third.import_(tmp_path / "raws-only")) == len(raws)
    assert third.registry.get_collection_chain("outer") == ("inner", "darkr")
    assert third.registry.get_collection_type("darkr") is CollectionType.RUN


def test_export_import_makes_chain_members_without_datasets(
    butler: Butler, tmp_path: Path
) -> None:
    """A chain's RUN, TAGGED and CALIBRATION members of which the export holds no dataset
    (left out by the dataset types chosen) are made empty by the import, so the chain can be
    made in a new repository; one that exists here is left as it is."""
    from spherex_dask.types import CollectionType

    registry = butler.registry
    raws = list(butler.query_datasets("raw", collections=["rawexpr"]))
    registry.register_collection("calib", CollectionType.CALIBRATION)
    registry.register_collection("best", CollectionType.TAGGED)
    registry.register_collection("out", CollectionType.CHAINED)
    registry.set_collection_chain("out", ["rawexpr", "darkr", "best", "calib"])
    butler.export(raws, tmp_path / "exp", chains=["out"])

    other = Butler.create(tmp_path / "other")
    assert len(other.import_(tmp_path / "exp")) == len(raws)
    assert other.registry.get_collection_chain("out") == ("rawexpr", "darkr", "best", "calib")
    kinds = {n: other.registry.get_collection_type(n) for n in ("darkr", "best", "calib")}
    assert kinds == {"darkr": CollectionType.RUN, "best": CollectionType.TAGGED,
                     "calib": CollectionType.CALIBRATION}  # fmt: skip
    assert other.find_dataset("raw", raws[0].data_id, collections="out") == raws[0]


def test_export_to_relative_directory(butler: Butler, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """export accepts a relative directory (as the CLI passes it), including one with '..'."""
    refs = list(butler.query_datasets("raw", collections=["rawexpr"]))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    index = butler.export(refs, "exp")
    assert index == tmp_path / "work" / "exp" / "export.json"
    butler.export(refs, "../exp2")
    other = Butler.create(tmp_path / "other")
    imported = other.import_("../exp2")
    assert sorted(r.id for r in imported) == sorted(r.id for r in refs)


@pytest.mark.parametrize("size", [5000, 2880 * 7])
def test_ingest_refuses_truncated_fits(tmp_path: Path, sim, size: int) -> None:
    """A truncated FITS file (mid-block, or at a block boundary inside an image's data) fails
    the ingest, naming the file; nothing is registered or copied."""
    butler = Butler.create(tmp_path / "repo")
    ingest_simulated(butler, sim.root, ingest_type="raw", run="records")
    cut = tmp_path / "cut.fits"
    cut.write_bytes(raw_path(sim, 2).read_bytes()[:size])
    good = FileDataset(path=str(raw_path(sim, 1)), dataset_type="raw", data_id=raw_id(sim, 1))
    bad = FileDataset(path=str(cut), dataset_type="raw", data_id=raw_id(sim, 2))
    with pytest.raises(IngestError, match=r"cut\.fits.*truncated"):
        butler.ingest(good, bad, transfer="copy", run="cut")
    assert "cut" not in butler.registry.query_collections("*")
    assert not (tmp_path / "repo" / "cut").exists()


KILLED_INGEST = """
import os, signal, sys
from spherex_dask.butler import Butler
from spherex_dask.ingest import ingest_simulated
from spherex_dask.registry import Registry

def killed(self, *args, **kwargs):  # the files are transferred; the registry is next
    os.kill(os.getpid(), signal.SIGKILL)

Registry.import_datasets = killed
ingest_simulated(Butler(sys.argv[1]), sys.argv[2], ingest_type="dark", transfer="copy")
"""


def test_retry_after_an_ingest_killed_before_registering(tmp_path: Path, sim) -> None:
    """An ingest killed (SIGKILL) between transferring files and registering them leaves
    unregistered files; the retry says so and what to do (not 'ingested already'), and
    once they are deleted as it says, the retry succeeds."""
    import subprocess
    import sys

    from spherex_dask.butler import remove_tree

    root = tmp_path / "repo"
    Butler.create(root).close()
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_INGEST, str(root), str(sim.root)], check=False
    )
    assert killed.returncode == -9
    assert list((root / "darkr").rglob("*.fits"))
    butler = Butler(root)
    with pytest.raises(IngestError) as info:
        ingest_simulated(butler, sim.root, ingest_type="dark", transfer="copy")
    note = "\n".join(getattr(info.value, "__notes__", []))
    assert "registered to no dataset (run 'darkr' does not exist)" in note
    assert "was killed after transferring its files" in note
    assert f"everything under {str(root / 'darkr')!r}" in note
    remove_tree(root / "darkr")
    refs = ingest_simulated(butler, sim.root, ingest_type="dark", transfer="copy")
    assert len(refs) == 2
    with pytest.raises(IngestError) as info:
        ingest_simulated(butler, sim.root, ingest_type="dark", transfer="copy")
    assert "2 of the 2 dataset(s) of this ingest are registered in run 'darkr' already" in (
        "\n".join(getattr(info.value, "__notes__", []))
    )
    butler.close()


def test_cleanup_question_compares_the_registered_path(butler: Butler) -> None:
    """The clean-up after a failed write keeps a file only if the registry holds that very
    location: a copy made for an id that was registered before, at another path (an import
    of a dataset that exists here), is still removed."""
    import dataclasses

    ref = next(iter(butler.query_datasets("raw", collections=["rawexpr"])))
    (stored,) = butler.registry.get_locations([ref.id])[ref.id]
    assert butler._registered([stored])
    assert not butler._registered([dataclasses.replace(stored, path=stored.path + ".copy")])
    assert not butler._registered([])


def test_calibration_lookup_that_finds_nothing_names_the_ranges(butler: Butler, sim) -> None:
    """A dark certified only for other times: the not-found error gives its validity range
    and the exposure's time that was looked up, and how to certify one."""
    from datetime import datetime

    from spherex_dask.types import CollectionType, Timespan

    darks = list(butler.query_datasets("dark", collections=["darkr"]))
    butler.registry.register_collection("later", CollectionType.CALIBRATION)
    butler.registry.certify("later", darks, Timespan(datetime(2030, 1, 1), None))
    with pytest.raises(DatasetNotFoundError) as info:
        butler.get("dark", raw_id(sim), collections="later")
    message = str(info.value)
    assert "certified only for [2030-01-01T00:00:00+00:00, +inf) in 'later'" in message
    assert "the lookup was for [2025-" in message
    assert "certify-calibrations" in message


def _irsa_level2(tmp_path: Path, edit: Callable[[fits.Header], None]) -> tuple[Any, Path]:
    """One simulated Level-2 file rewritten as IRSA lays them out (only VERSION in the primary
    header), its IMAGE header changed by ``edit``; the simulation and the directory."""
    made = simulate(tmp_path / "sim", exposures=1, detectors=(3,), size=SIZE, seed=2,
                    level2=True, naming="irsa")  # fmt: skip
    (original,) = [f.path for f in made.files if f.kind == "level2"]
    irsa = tmp_path / "irsa"
    irsa.mkdir()
    with fits.open(original) as hdul:
        edit(hdul["IMAGE"].header)
        primary = fits.PrimaryHDU()
        primary.header["VERSION"] = "20"
        fits.HDUList([primary, *hdul[1:]]).writeto(irsa / Path(original).name)
    return made, irsa


def test_ingest_level2_files_in_irsa_layout(tmp_path: Path) -> None:
    """IRSA's Level-2 files keep only VERSION in the primary header and the identifiers in
    the IMAGE header (SPHEREX.md): ingest-simulated takes them from there, the planning
    period and slews from OBSID, the start from MJD-OBS, and says that it assumed the
    exposure's length."""
    from datetime import timedelta

    from spherex_dask.errors import SpherexDaskWarning
    from spherex_dask.sim._instrument import EXPOSURE_TIME

    def edit(image: fits.Header) -> None:
        for key in ("DETECTOR", "OBSID", "EXPIDN", "MJD-OBS"):  # as SPHEREX.md lists them
            assert key in image, key
        for key in ("EXPTIME", "DATE-OBS", "DATE-END", "PLANPER", "LSLEW", "SSLEW"):
            image.remove(key, ignore_missing=True)

    made, irsa = _irsa_level2(tmp_path, edit)
    butler = Butler.create(tmp_path / "repo")
    with pytest.warns(SpherexDaskWarning, match=f"last {EXPOSURE_TIME:g} s"):
        (ref,) = ingest_simulated(butler, irsa, ingest_type="level2", transfer="copy")
    exposure = made.exposures[0]
    assert ref.data_id["detector"] == 3
    assert ref.data_id["exposure"] == exposure.exposure_id
    (record,) = butler.registry.query_dimension_records("exposure")
    assert record.values["obs_id"] == exposure.obs_id
    assert record.values["planning_period"] == exposure.obs_id[:10]
    begin = record.timespan.begin
    assert abs(begin - exposure.begin) < timedelta(milliseconds=1)
    assert record.timespan.end - begin == timedelta(seconds=EXPOSURE_TIME)
    assert butler.get(ref, collections="level2r").image.shape == (SIZE, SIZE)


def test_ingest_irsa_layout_takes_the_length_from_date_end(tmp_path: Path) -> None:
    """Without EXPTIME but with DATE-END, the exposure lasts from start to DATE-END, and
    nothing is said to be assumed."""
    import warnings
    from datetime import timedelta

    def edit(image: fits.Header) -> None:
        image["DATE-END"] = "2025-05-07T03:02:30.500"
        image["DATE-OBS"] = "2025-05-07T03:00:00.000"
        for key in ("EXPTIME", "PLANPER", "LSLEW", "SSLEW"):
            image.remove(key, ignore_missing=True)

    _, irsa = _irsa_level2(tmp_path, edit)
    butler = Butler.create(tmp_path / "repo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ingest_simulated(butler, irsa, ingest_type="level2", transfer="copy")
    (record,) = butler.registry.query_dimension_records("exposure")
    assert record.timespan.end - record.timespan.begin == timedelta(seconds=150.5)
    assert record.values["exposure_time"] == pytest.approx(150.5)
