"""The main job (``spherex-dask demo``) end to end, on small images."""

from __future__ import annotations

from pathlib import Path

import intake
import pytest
from click.testing import CliRunner

from spherex_dask.butler import Butler
from spherex_dask.cli import cli


@pytest.mark.integration
def test_demo_runs_and_verifies(tmp_path: Path) -> None:
    """demo simulates, ingests, certifies, runs on a local cluster and checks raw - dark."""
    repo = tmp_path / "demo-repo"
    result = CliRunner().invoke(
        cli,
        ["demo", str(repo), "--exposures", "2", "--detectors", "1,2", "--size", "32",
         "--no-progress"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "Verified 4 dark_subtracted images" in result.output
    assert "dashboard" in result.output
    butler = Butler(repo, collections=["demo"])
    stacks = list(butler.query_datasets("dark_subtracted_stack"))
    assert len(stacks) == 2
    assert butler.get(stacks[0]).image.shape == (32, 32)
    assert len(list(butler.registry.query_quanta(collections=["demo"]))) == 6
    # The Intake catalog it writes, as the printed lines open it.
    catalog = repo / "catalog.yaml"
    assert f"intake.open_catalog({str(catalog)!r})" in result.output
    subtracted = intake.open_catalog(str(catalog)).dark_subtracted.to_dask()
    assert dict(subtracted.image.sizes) == {"exposure": 2, "detector": 2, "y": 32, "x": 32}
    again = CliRunner().invoke(cli, ["demo", str(repo), "--size", "32"])
    assert again.exit_code != 0
    assert "already holds a repository" in again.output
