"""Smoke tests: ``benchmarks/io.py --quick`` and ``benchmarks/cli.py`` run, print their tables and
clean up (no timing checks)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATUS = re.compile(r"\s(PASS|MISS|-)$")


def _table(stdout: str, title: str) -> list[str]:
    """The lines of the final table (after its title and header rule)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"== {title}"))
    assert lines[start + 1].split()[:6] == [
        "metric",
        "value",
        "baseline",
        "ratio",
        "goal",
        "status",
    ]
    assert set(lines[start + 2]) <= {"-", " "}
    return [line for line in lines[start + 3 :] if line.strip()]


@pytest.mark.slow
def test_io_benchmark_quick(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/io.py", "--quick", "--workdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _table(result.stdout, "benchmarks/io.py")
    for expected in (
        "small files, ingest_simulated, symlink",
        "small files, Butler.ingest, copy",
        "full files, Butler.ingest, symlink",
        "lazy open (2040, 2040)",
        "lazy open reads no pixels",
        "vs fits.getdata",
        "peak RSS",
    ):
        assert any(expected in row for row in rows), f"no {expected!r} row in:\n{result.stdout}"
    assert all(STATUS.search(row) for row in rows), result.stdout
    assert list(tmp_path.iterdir()) == [], "the benchmark left files behind"


@pytest.mark.slow
def test_cli_benchmark_quick(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/cli.py", "--runs", "1", "--workdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _table(result.stdout, "benchmarks/cli.py")
    for expected in ("--help", "query-datasets", "query-collections", "import sqlalchemy"):
        assert any(expected in row for row in rows), f"no {expected!r} row in:\n{result.stdout}"
    heavy = next(row for row in rows if row.startswith("heavy libraries imported"))
    assert "none / none / none" in heavy, heavy  # registry commands import no array stack
    assert all(STATUS.search(row) for row in rows), result.stdout
    assert list(tmp_path.iterdir()) == [], "the benchmark left files behind"
