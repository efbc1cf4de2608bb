# SPDX-License-Identifier: BSD-3-Clause
"""The formatter and storage-class registries, and checks run over every registered formatter."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from spherex_dask.errors import FileMissingError, FormatterError, UnknownFormatterError
from spherex_dask.io import (
    FitsImageFormatter,
    FormatterRegistry,
    JsonFormatter,
    SupportsReadParameters,
    default_formatters,
    default_storage_classes,
)

FORMATTERS = default_formatters()


@pytest.mark.parametrize("name", sorted(FORMATTERS))
def test_every_registered_formatter(name, tmp_path) -> None:
    """Each formatter: known storage classes, unique extensions, pickles, clean errors."""
    formatter = FORMATTERS[name]
    storage_classes = default_storage_classes()
    assert formatter.name == name
    assert all(sc in storage_classes for sc in formatter.storage_classes)
    assert pickle.loads(pickle.dumps(formatter)) == formatter
    others = {e for n, f in FORMATTERS.items() if n != name for e in f.extensions}
    assert not set(formatter.extensions) & others
    missing = str(tmp_path / f"missing{formatter.extensions[0]}")
    with pytest.raises(FileMissingError, match="missing"):
        formatter.read(missing)
    assert not formatter.can_read(missing)
    with pytest.raises(FormatterError, match="not_a_parameter"):
        formatter.read(missing, parameters={"not_a_parameter": 1})
    if isinstance(formatter, SupportsReadParameters):
        assert formatter.supported_parameters()


def test_every_storage_class_has_its_formatters() -> None:
    """Default and ingest formatters of each storage class exist and serve it."""
    for storage_class in default_storage_classes().values():
        for name in (storage_class.default_formatter, *storage_class.ingest_formatters):
            assert storage_class.name in FORMATTERS[name].storage_classes


def test_registry_is_fresh_and_guards_names() -> None:
    """Registries are independent; a taken name needs replace=True; unknown names list options."""
    registry = FormatterRegistry()
    registry.register(JsonFormatter())
    assert "fits" not in registry
    assert "fits" in default_formatters()

    class OtherJson(JsonFormatter):
        pass

    with pytest.raises(FormatterError, match="already registered"):
        registry.register(OtherJson())
    registry.register(OtherJson(), replace=True)
    assert isinstance(registry["json"], OtherJson)
    with pytest.raises(UnknownFormatterError, match="registered: json"):
        registry["hdf5"]


def test_guess_by_content(tmp_path, level2) -> None:
    """guess() picks the formatter whose can_read accepts the file, whatever its name."""
    path, _ = level2("renamed.dat")
    assert isinstance(FORMATTERS.guess(path), FitsImageFormatter)
    assert FORMATTERS.guess(path, storage_class="SpectralImage").name == "fits"
    with pytest.raises(UnknownFormatterError, match="tried: ecsv, parquet"):
        FORMATTERS.guess(path, storage_class="AstropyTable")


def test_storage_class_validate() -> None:
    """validate() accepts the declared type and names both types otherwise."""
    spectral = default_storage_classes()["SpectralImage"]
    spectral.validate(xr.Dataset({"image": (("y", "x"), np.zeros((1, 1)))}))
    with pytest.raises(FormatterError, match=r"xarray.Dataset"):
        spectral.validate(np.zeros(3))
    with pytest.raises(UnknownFormatterError, match="known: AstropyTable"):
        default_storage_classes()["Cube"]


def test_io_import_is_light_and_layered() -> None:
    """Importing spherex_dask.io loads no heavy library, SQL or registry/pipeline code."""
    code = (
        "import sys, spherex_dask.io; "
        "bad = [m for m in ('xarray', 'astropy', 'dask', 'zarr', 'sqlalchemy', "
        "'spherex_dask.registry', 'spherex_dask.pipeline') if m in sys.modules]; print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
