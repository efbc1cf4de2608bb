# SPDX-License-Identifier: BSD-3-Clause
"""Catalog files: the committed ones in catalogs/, and export-catalog for any repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import dask.array as da
import intake
import pytest
import yaml
from click.testing import CliRunner
from intake.readers.readers import BaseReader

from spherex_dask.butler import Butler
from spherex_dask.cli import cli
from spherex_dask.errors import (
    ConfigError,
    DatasetTypeError,
    MissingCollectionError,
    MissingDatasetTypeError,
)
from spherex_dask.intake import REPO_ENV_VAR, export_catalog
from spherex_dask.types import DatasetType

CATALOGS = sorted((Path(__file__).parents[2] / "catalogs").glob("*.y*ml"))


def _read_entry(cat, name: str):
    """Read one entry lazily through whichever Intake API the catalog uses."""
    entry = cat[name]
    return entry.read() if isinstance(entry, BaseReader) else entry.to_dask()


def test_catalogs_directory_is_not_empty():
    """The committed catalogs exist (v1 at least)."""
    assert any(p.name == "spherex.yaml" for p in CATALOGS)


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small repository made by the main job, which the committed catalogs describe."""
    from spherex_dask.demo import run_demo

    root = tmp_path_factory.mktemp("demo") / "demo-repo"
    run_demo(
        root, exposures=2, detectors=(1, 2), size=16, workers=1, progress=False, echo=lambda _: None
    )
    return root


@pytest.mark.integration
@pytest.mark.parametrize("path", CATALOGS, ids=[p.name for p in CATALOGS])
def test_committed_catalog_opens_and_reads(path, demo_repo, monkeypatch, no_compute):
    """Every catalog in catalogs/ opens on a demo repository and reads every entry lazily."""
    monkeypatch.setenv(REPO_ENV_VAR, str(demo_repo))
    cat = intake.open_catalog(str(path))
    names = list(cat)
    assert {"raw", "dark", "dark_subtracted", "dark_subtracted_stack"} <= set(names)
    with no_compute():
        ds = _read_entry(cat, "raw")
        stack = _read_entry(cat, "dark_subtracted_stack")
    assert ds.image.dims == ("exposure", "detector", "y", "x")
    assert isinstance(ds.image.data, da.Array)
    assert stack.image.dims == ("detector", "y", "x")


@pytest.mark.parametrize("fmt", ["v1", "v2"])
def test_export_catalog_cli(fmt, repo, tmp_path, monkeypatch, no_compute):
    """export-catalog writes a catalog that finds its repository relative to itself."""
    monkeypatch.delenv(REPO_ENV_VAR, raising=False)
    out = tmp_path / "cats" / f"repo_{fmt}.yaml"
    result = CliRunner().invoke(
        cli, ["export-catalog", str(repo), str(out), "--format", fmt], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output
    cat = intake.open_catalog(str(out))
    assert sorted(cat) == ["dark", "raw"]
    with no_compute():
        dark = _read_entry(cat, "dark")
    assert dark.image.dims == ("detector", "y", "x")


def test_export_describes_each_entry(repo, tmp_path):
    """Entries carry description, dimensions and collections; --collections restricts."""
    out = export_catalog(repo, tmp_path / "c.yaml", collections=["rawexpr", "darkr"])
    text = out.read_text()
    assert text.startswith("# Intake catalog")
    sources = yaml.safe_load(text)["sources"]
    assert sources["raw"]["metadata"]["dimensions"] == ["instrument", "detector", "exposure"]
    assert sources["raw"]["args"]["collections"] == ["rawexpr", "darkr"]
    assert "calibration" in sources["dark"]["description"]
    only = export_catalog(repo, tmp_path / "d.yaml", dataset_types=["ra*"])
    assert list(yaml.safe_load(only.read_text())["sources"]) == ["raw"]


def test_export_cli_collections_option(repo, tmp_path):
    """--collections limits entries to dataset types present there."""
    out = tmp_path / "raw_only.yaml"
    result = CliRunner().invoke(
        cli, ["export-catalog", str(repo), str(out), "--collections", "rawexpr"]
    )
    assert result.exit_code == 0, result.output
    assert list(yaml.safe_load(out.read_text())["sources"]) == ["raw"]


def test_export_errors_are_actionable(repo, tmp_path):
    """Unknown collections, dataset types, formats and repositories raise clear errors."""
    with pytest.raises(MissingCollectionError, match="rawexpr"):
        export_catalog(repo, tmp_path / "x.yaml", collections=["nope"])
    with pytest.raises(MissingDatasetTypeError, match="raw"):
        export_catalog(repo, tmp_path / "x.yaml", dataset_types=["flat*"])
    with pytest.raises(ConfigError, match="v1"):
        export_catalog(repo, tmp_path / "x.yaml", format="v3")  # type: ignore[arg-type]
    result = CliRunner().invoke(cli, ["export-catalog", str(tmp_path / "none"), "o.yaml"])
    assert result.exit_code == 1
    assert "Error: No repository" in result.output


def test_entries_only_for_dataset_types_that_read_as_xarray(repo, tmp_path, monkeypatch):
    """A StructuredData (dict) dataset type gets no catalog entry (it crashed on read with
    "'dict' object has no attribute 'assign_coords'"); asking for it says to use Butler.get."""
    root = tmp_path / "repo"
    shutil.copytree(repo, root, symlinks=True)
    notes = DatasetType(
        name="notes", dimensions=("instrument", "detector"), storage_class="StructuredData"
    )
    with Butler(root, run="notes") as butler:
        butler.put({"seeing": 1.2}, notes, instrument="SPHEREx", detector=1)
    monkeypatch.delenv(REPO_ENV_VAR, raising=False)
    out = export_catalog(root, tmp_path / "c.yaml")
    cat = intake.open_catalog(str(out))
    assert sorted(cat) == ["dark", "raw"]
    for name in cat:
        _read_entry(cat, name)
    assert sorted(intake.open_spherex_dask_cat(str(root))) == ["dark", "raw"]
    with pytest.raises(MissingDatasetTypeError, match=r"StructuredData.*Butler\.get"):
        export_catalog(root, tmp_path / "n.yaml", dataset_types=["notes"])
    with pytest.raises(DatasetTypeError, match=r"'StructuredData'.*Butler\("):
        intake.open_spherex_dask("notes", str(root), collections="notes").to_dask()


def test_catalog_entry_override_and_env(repo, tmp_path, monkeypatch):
    """repo= on an entry beats $SPHEREX_DASK_REPO, which beats the catalog's default."""
    out = export_catalog(repo, tmp_path / "c.yaml")
    monkeypatch.setenv(REPO_ENV_VAR, "/no/such/repo")
    cat = intake.open_catalog(str(out))
    assert cat.raw.selection.repo == "/no/such/repo"
    with pytest.raises(ConfigError, match=REPO_ENV_VAR):
        cat.raw.to_dask()
    assert cat.raw(repo=str(repo)).discover()["npartitions"] == 4
