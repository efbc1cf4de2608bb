"""Smoke tests: each benchmark script runs in its quick mode, prints its table and cleans up.

No timing is checked (tests never assert wall-clock times); the rows and their status column
are.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATUS = re.compile(r"\s(PASS|MISS|-)$")


def run_benchmark(script: str, *args: str, workdir: Path) -> list[str]:
    """Run ``benchmarks/SCRIPT ARGS --workdir WORKDIR``; return the rows of its final table.

    Also checks the exit status, the table's header, every row's status column, and that
    nothing was left in ``workdir``.
    """
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args, "--workdir", str(workdir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    title = f"== benchmarks/{script}"
    start = next((i for i, line in enumerate(lines) if line.startswith(title)), None)
    assert start is not None, result.stdout[-3000:]
    assert lines[start + 1].split()[:6] == [
        "metric",
        "value",
        "baseline",
        "ratio",
        "goal",
        "status",
    ]
    assert set(lines[start + 2]) <= {"-", " "}
    rows = [line for line in lines[start + 3 :] if line.strip()]
    assert all(STATUS.search(row) for row in rows), result.stdout
    assert list(workdir.iterdir()) == [], "the benchmark left files behind"
    return rows


def assert_rows(rows: list[str], *expected: str) -> None:
    for text in expected:
        assert any(text in row for row in rows), f"no {text!r} row in:\n" + "\n".join(rows)


@pytest.mark.slow
def test_io_benchmark_quick(tmp_path: Path) -> None:
    rows = run_benchmark("io.py", "--quick", workdir=tmp_path)
    assert_rows(
        rows,
        "small files, ingest_simulated, symlink",
        "small files, Butler.ingest, copy",
        "full files, Butler.ingest, symlink",
        "lazy open (2040, 2040)",
        "lazy open reads no pixels",
        "vs fits.getdata",
        "peak RSS",
    )


@pytest.mark.slow
def test_cli_benchmark_quick(tmp_path: Path) -> None:
    rows = run_benchmark("cli.py", "--runs", "1", workdir=tmp_path)
    assert_rows(rows, "--help", "query-datasets", "query-collections", "import sqlalchemy")
    heavy = next(row for row in rows if row.startswith("heavy libraries imported"))
    assert "none / none / none" in heavy, heavy  # registry commands import no array stack


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_benchmark_quick(tmp_path: Path) -> None:
    rows = run_benchmark("pipeline.py", "--quick", workdir=tmp_path)
    assert_rows(
        rows,
        "1. spherex-dask run (subtract)",
        "run_quantum_graph alone",
        "vs pool as a whole command",
        "2. overhead per quantum",
        "3. quantum graph build",
        "prerequisite lookups",
        "4. worker peak RSS",
        "client process peak RSS",
    )
    assert sum(row.startswith("3. quantum graph build") for row in rows) == 2
