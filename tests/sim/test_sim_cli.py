# SPDX-License-Identifier: BSD-3-Clause
"""``spherex-dask simulate``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from spherex_dask.cli import cli
from spherex_dask.cli._simulate import parse_detectors
from spherex_dask.sim import DARK_REGEX, LEVEL2_REGEX, RAW_IRSA_REGEX, RAW_POC_REGEX


def test_simulate_command(tmp_path) -> None:
    runner = CliRunner()
    args = ["simulate", str(tmp_path), "--exposures", "2", "--detectors", "1,3-4", "--size", "16"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Wrote 9 files (6 raw, 3 dark, 0 level2) for 2 exposures" in result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert sum(bool(RAW_POC_REGEX.match(n)) for n in names) == 6
    assert sum(bool(DARK_REGEX.match(n)) for n in names) == 3
    again = runner.invoke(cli, args)
    assert again.exit_code == 1
    assert "--overwrite" in again.output
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0


def test_simulate_irsa_level2(tmp_path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(tmp_path),
            "-n",
            "1",
            "--detectors",
            "6",
            "--size",
            "16",
            "--level2",
            "--naming",
            "irsa",
            "--seed",
            "3",
            "--start",
            "2025-05-09T01:02:03",
            "--planning-period",
            "2025W19_2B",
        ],
    )
    assert result.exit_code == 0, result.output
    names = [p.name for p in tmp_path.iterdir()]
    assert sum(bool(LEVEL2_REGEX.match(n)) for n in names) == 1
    assert sum(bool(RAW_IRSA_REGEX.match(n)) for n in names) == 1
    assert "cal-drk-v1-2025-129_D6.fits" in names


@pytest.mark.parametrize(
    ("detectors", "message"), [("0-9", "subset"), ("a", "neither"), ("4-2", "empty")]
)
def test_simulate_bad_detectors(tmp_path, detectors: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", str(tmp_path), "--detectors", detectors])
    assert result.exit_code != 0
    assert message in result.output
    assert not list(tmp_path.iterdir())


def test_parse_detectors() -> None:
    assert parse_detectors("1-6") == (1, 2, 3, 4, 5, 6)
    assert parse_detectors(" 5, 1,3 ") == (1, 3, 5)
    with pytest.raises(ValueError, match="No detectors"):
        parse_detectors(",")


def test_help_does_not_import_numpy() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom spherex_dask.cli import cli\n"
        "r = CliRunner().invoke(cli, ['simulate', '--help'])\nassert r.exit_code == 0\n"
        "print('numpy' in sys.modules, 'astropy' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.split() == ["False", "False"]
