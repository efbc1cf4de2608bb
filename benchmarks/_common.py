# SPDX-License-Identifier: BSD-3-Clause
"""Small helpers shared by the benchmark scripts: timing, medians, peak memory, the result table.

Import it from a script in this directory as ``from _common import ...`` (running
``python benchmarks/x.py`` puts ``benchmarks/`` first on ``sys.path``).
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Result",
    "byte_compile_package",
    "cli_command",
    "median",
    "peak_rss_mb",
    "print_table",
    "repeat",
    "say",
    "status",
    "timed",
]


def say(text: str) -> None:
    """Progress line (flushed so that a slow step shows where it is)."""
    print(text, flush=True)


def cli_command() -> list[str]:
    """The ``spherex-dask`` console script of this interpreter (or ``python -m spherex_dask``)."""
    script = Path(sys.executable).with_name("spherex-dask")
    return [str(script)] if script.exists() else [sys.executable, "-m", "spherex_dask"]


def byte_compile_package() -> bool:
    """Byte-compile ``spherex_dask`` (as ``pip install`` does); return whether its bytecode was
    all cached already.

    Benchmarks that time whole commands call this first. Where ``PYTHONDONTWRITEBYTECODE`` is
    set and the package is installed in editable mode, Python would otherwise compile every
    module of the package from source in every command (and in every fresh worker process),
    which an installed package never does.
    """
    import compileall
    import importlib.util

    import spherex_dask

    package = Path(spherex_dask.__file__).parent
    sources = list(package.rglob("*.py"))
    cached = all(Path(importlib.util.cache_from_source(str(s))).exists() for s in sources)
    compileall.compile_dir(str(package), quiet=1)
    return cached


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def repeat(fn: Callable[[], Any], n: int, *, warmup: int = 0) -> list[float]:
    """Seconds taken by each of ``n`` calls of ``fn()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return [timed(fn)[0] for _ in range(n)]


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return statistics.median(values)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def status(passed: bool | None) -> str:
    """``PASS``, ``MISS`` or ``-`` (no goal)."""
    return "-" if passed is None else ("PASS" if passed else "MISS")


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One line of the final table; ``passed`` is None when the metric has no goal."""

    metric: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    goal: str = "-"
    passed: bool | None = None


def print_table(rows: Sequence[Result], *, title: str = "Results", file: Any = None) -> None:
    """Print ``rows`` as an aligned plain-text table."""
    out = file or sys.stdout
    header = ("metric", "value", "baseline", "ratio", "goal", "status")
    cells = [header] + [
        (r.metric, r.value, r.baseline, r.ratio, r.goal, status(r.passed)) for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(f"\n== {title} ==", file=out)
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if i == 0:
            print(line, file=out)
    out.flush()
