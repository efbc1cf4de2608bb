"""Smoke test: ``benchmarks/pipeline.py --quick`` runs, prints its table and cleans up (no timing checks)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATUS = re.compile(r"\s(PASS|MISS|-)$")
TITLE = "== benchmarks/pipeline.py"


def _table(stdout: str) -> list[str]:
    """The lines of the final table (after its title and header rule)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TITLE))
    assert lines[start + 1].split() == ["metric", "value", "baseline", "ratio", "goal", "status"]
    assert set(lines[start + 2]) <= {"-", " "}
    return [line for line in lines[start + 3 :] if line.strip()]


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_benchmark_quick(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/pipeline.py", "--quick", "--workdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert TITLE in result.stdout, result.stdout[-3000:]
    rows = _table(result.stdout)
    for expected in (
        "1. spherex-dask run (subtract)",
        "run_quantum_graph alone",
        "vs pool as a whole command",
        "2. overhead per quantum",
        "3. quantum graph build",
        "prerequisite lookups",
        "4. worker peak RSS",
        "client process peak RSS",
    ):
        assert any(expected in row for row in rows), f"no {expected!r} row in:\n{result.stdout}"
    assert sum(row.startswith("3. quantum graph build") for row in rows) == 2
    assert all(STATUS.search(row) for row in rows), result.stdout
    assert list(tmp_path.iterdir()) == [], "the benchmark left files behind"
