# SPDX-License-Identifier: BSD-3-Clause
"""The Intake 2 datatype and reader."""

from __future__ import annotations

import pickle
import subprocess
import sys

import dask.array as da
import intake
import pytest
import xarray as xr
from intake.readers.readers import BaseReader
from intake.readers.utils import subclasses

from spherex_dask.errors import QuerySyntaxError
from spherex_dask.intake import SpherexDatasets, SpherexSource, SpherexXarrayReader


def _reader(repo, **kwargs) -> SpherexXarrayReader:
    return SpherexXarrayReader(data=SpherexDatasets("raw", repo=str(repo), **kwargs))


def test_read_is_lazy_and_equals_the_old_driver(repo, no_compute):
    """read() gives the same lazy stacked Dataset as the old API's to_dask()."""
    with no_compute():
        ds = _reader(repo, collections=["rawexpr"]).read()
    assert ds.image.dims == ("exposure", "detector", "y", "x")
    assert isinstance(ds.image.data, da.Array)
    old = SpherexSource("raw", str(repo), collections="rawexpr").to_dask()
    xr.testing.assert_identical(ds.compute(), old.compute())


def test_search_and_read_kwargs_narrow(repo, no_compute):
    """search() and read(detector=...) AND conditions into the registry query."""
    reader = _reader(repo, collections=["rawexpr"])
    with no_compute():
        by_search = reader.search("detector = 2").read()
        by_kwargs = reader.read(detector=2)
    assert dict(by_search.sizes) == {"exposure": 2, "y": 32, "x": 32}
    xr.testing.assert_identical(by_search, by_kwargs)


def test_search_checks_the_expression(repo):
    """A bad expression fails at search time with the registry's error."""
    with pytest.raises(QuerySyntaxError, match="column"):
        _reader(repo, collections=["rawexpr"]).search("detector = = 1")


def test_discover_opens_one_dataset(repo, no_compute):
    """discover() is a cheap preview: the first dataset only, lazily."""
    with no_compute():
        first = _reader(repo, collections=["rawexpr"]).discover()
    assert first.image.dims == ("y", "x")


def test_reader_found_from_datatype(repo):
    """Intake 2 knows the reader for the datatype (subclass registration)."""
    assert SpherexXarrayReader in subclasses(BaseReader)
    data = SpherexDatasets("dark", repo=str(repo), collections=["darkr"])
    reader = data.to_reader(outtype="xarray:Dataset")
    assert isinstance(reader, SpherexXarrayReader)
    assert reader.read().image.dims == ("detector", "y", "x")


def test_import_intake_registers_reader_via_entry_point():
    """`import intake` imports the reader (intake.imports) without pulling in xarray."""
    code = (
        "import sys, intake\n"
        "assert 'spherex_dask.intake._v2' in sys.modules\n"
        "assert 'xarray' not in sys.modules and 'sqlalchemy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reader_pickles(repo):
    """The reader and its datatype pickle (for Dask workers)."""
    reader = _reader(repo, collections=["rawexpr"], where="detector = 1")
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.kwargs["data"].where == "detector = 1"
    assert dict(copy.read().sizes) == {"exposure": 2, "y": 32, "x": 32}


def test_reader_in_catalog_round_trip(repo, tmp_path):
    """A reader put in an Intake 2 catalog comes back working from YAML."""
    cat = intake.entry.Catalog()
    cat["raw"] = _reader(repo, collections=["rawexpr"])
    path = tmp_path / "cat.yaml"
    cat.to_yaml_file(str(path))
    loaded = intake.open_catalog(str(path))
    assert loaded["raw"].read().image.dims == ("exposure", "detector", "y", "x")
