# SPDX-License-Identifier: BSD-3-Clause
"""Start-up time of the ``spherex-dask`` command line, against the bare interpreter.

Usage::

    python benchmarks/cli.py [--quick] [--runs N] [--workdir DIR] [--keep]

It times whole commands as subprocesses (the median of ``--runs`` runs, default 15, 3 with
``--quick``), in rotating order:

1. ``spherex-dask --help`` (goal: < 0.5 s);
2. a small query, ``spherex-dask query-datasets REPO raw --collections rawexpr`` on a
   repository of 12 small raws (goal: < 0.5 s), and ``query-collections REPO`` as a second
   one;
3. two baselines: ``python -c pass`` (the interpreter's start) and ``python -c "import
   sqlalchemy"`` (the registry's SQL toolkit, whose import is most of a query's time).

It also reports which heavy libraries each command imported (numpy, pandas, xarray, dask,
distributed, astropy, zarr, bokeh): a command that only reads the registry should import none.

Bytecode: the package is byte-compiled before the timings (``compileall``), as ``pip
install`` does for a regular install and as Python does on first import. Where
``PYTHONDONTWRITEBYTECODE`` is set and the package is installed in editable mode (as on the
project's CI machine), Python would otherwise compile every module of the package from
source on every command, about 0.1 s of a query here; the first line of output says whether
the bytecode was there already.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from _common import Result, byte_compile_package, cli_command, median, print_table, say, timed

HEAVY = ("numpy", "pandas", "xarray", "dask", "distributed", "astropy", "zarr", "bokeh")

#: Runs a command like the console script, then prints the heavy modules it imported.
PROBE = """\
import json, sys
args, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["spherex-dask", *args]
from spherex_dask.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in watched if m in sys.modules)
print("HEAVY=" + json.dumps(heavy), file=sys.stderr)
"""


def make_repo(workdir: Path) -> Path:
    """A repository with 2 exposures x 6 detectors of 16 x 16 raws (untimed setup)."""
    from spherex_dask import ingest, sim
    from spherex_dask.butler import Butler

    simulation = sim.simulate(workdir / "incoming", exposures=2, size=16, seed=4)
    root = workdir / "repo"
    with Butler.create(root) as butler:
        ingest.ingest_simulated(butler, simulation.root, ingest_type="raw", progress=False)
    return root


def time_commands(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Seconds of each run of each command, in rotating order (one warm-up run each)."""
    for argv in commands.values():
        subprocess.run(argv, capture_output=True, check=True)
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            elapsed, _ = timed(
                lambda n=name: subprocess.run(commands[n], capture_output=True, check=True)
            )
            seconds[name].append(elapsed)
    return seconds


def heavy_imports(args: Sequence[str]) -> list[str]:
    """The heavy libraries ``spherex-dask ARGS`` imports."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args)), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY="))
    return list(json.loads(line.removeprefix("HEAVY=")))


def run(workdir: Path, runs: int) -> list[Result]:
    """Every measurement; returns the table rows."""
    cached = byte_compile_package()
    say(f"package bytecode {'was cached' if cached else 'compiled now'} (see the docstring)")
    repo = str(make_repo(workdir))
    cli = cli_command()
    queries = {
        "help": ["--help"],
        "query": ["query-datasets", repo, "raw", "--collections", "rawexpr"],
        "collections": ["query-collections", repo],
    }
    commands = {name: [*cli, *args] for name, args in queries.items()}
    commands["python"] = [sys.executable, "-c", "pass"]
    commands["sqlalchemy"] = [sys.executable, "-c", "import sqlalchemy"]
    seconds = time_commands(commands, runs)
    t = {name: median(values) for name, values in seconds.items()}
    for name, values in seconds.items():
        say(
            f"{name}: median {t[name] * 1e3:.0f} ms ({min(values) * 1e3:.0f}-{max(values) * 1e3:.0f})"
        )
    heavy = {name: heavy_imports(args) for name, args in queries.items()}
    say(f"heavy libraries imported: {heavy}")
    base = f"{t['python'] * 1e3:.0f} ms"

    def row(metric: str, name: str, goal: float | None = None) -> Result:
        ms = t[name] * 1e3
        return Result(
            metric=metric,
            value=f"{ms:.0f} ms",
            baseline=base,
            ratio=f"{t[name] / t['python']:.1f}",
            goal="-" if goal is None else f"< {goal * 1e3:.0f} ms",
            passed=None if goal is None else t[name] < goal,
        )

    return [
        row("spherex-dask --help, median", "help", 0.5),
        row("spherex-dask query-datasets (12 raws), median", "query", 0.5),
        row("spherex-dask query-collections, median", "collections"),
        row("  reference: python -c 'import sqlalchemy'", "sqlalchemy"),
        Result(
            metric="heavy libraries imported (--help / query / collections)",
            value=" / ".join(",".join(heavy[n]) or "none" for n in queries),
            goal="none",
            passed=not any(heavy.values()),
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the benchmark in a temporary directory, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of each command")
    parser.add_argument("--runs", type=int, default=None, help="runs of each command (15)")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 15)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="spherex-cli-bench-", dir=args.workdir))
    say(f"working in {workdir} ({runs} runs of each command, {os.cpu_count()} CPUs)")
    try:
        seconds, rows = timed(lambda: run(workdir, runs))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(
        rows, title=f"benchmarks/cli.py ({seconds:.0f} s; ratio = command time / python -c pass)"
    )


if __name__ == "__main__":
    main()
