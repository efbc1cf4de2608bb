# SPDX-License-Identifier: BSD-3-Clause
"""The demo pipeline on a local Dask cluster against a hand-written astropy/numpy loop.

Usage::

    python benchmarks/pipeline.py [--quick] [--workdir DIR] [--keep] [--profile DIR]

It prints, in one run (setup -- simulating files, creating and filling repositories, building
graphs for the runs -- is never timed; the page cache is warm for every reader):

1. The demo pipeline (``DarkSubtraction.yaml#processing``: dark subtraction only) on 24 quanta
   of 2040 x 2040 (4 observations x 6 detectors) with 2 local workers, timed

   - as the whole ``spherex-dask run -p ... -b REPO -i rawexpr,calib -o OUT -j 2 --no-progress
     --register-dataset-types`` command (a subprocess: interpreter start, imports, graph build,
     cluster start, run, registration, cluster shutdown; the command forks its workers from a
     server that imports their libraries while the command starts), and the full pipeline
     (subtract + stack) the same way as a reference;
   - as the library call ``run_quantum_graph`` alone (graph built and cluster started
     beforehand, with distributed's default spawned workers; the cluster start is reported on
     its own row);

   against a hand-written loop doing the same reads (``fits.getdata`` of the raw IMAGE, FLAGS,
   VARIANCE and the dark IMAGE, VARIANCE), subtractions (image - dark, variance + dark
   variance) and writes (``xarray.Dataset.to_zarr``, zarr v3, one chunk per plane and zarr's
   default codecs -- bytes + zstd level 0 -- as the pipeline's zarr formatter writes),
   run serially and as a 2-process ``ProcessPoolExecutor`` (pool start included). Goal: the
   whole ``run`` command within 1.3x of the pool. The command and the pool are measured in
   5 paired rounds (1 with ``--quick``), back to back and in mirrored order (pool, command,
   pool as a command; then the reverse), and the goal's ratio is the median of the rounds'
   ratios: the host's speed drifts by more than the goal's margin within minutes. Reference
   rows: the pool loop run as a whole command too (``python benchmarks/pipeline.py
   --baseline-pool ...``, interpreter start and imports included; in the same rounds), and
   the pool loop writing its stores with this package's direct zarr
   writer (``spherex_dask.io.formatters._zarr_write``) instead of ``to_zarr``, which isolates
   the framework's own cost. The pipeline's outputs hold the same three planes; their
   ``wavelength``/``bandwidth`` are stored as the WCS-WAVE control grid (group attribute
   ``spectral_coordinates``), and the check of the first output compares them with a
   per-pixel bilinear interpolation of the raw file's table. The median quantum duration
   (provenance records) is compared with the median item time of the pool.
2. Per-quantum framework overhead at 300 quanta of 256 x 256 (50 exposures x 6 detectors):
   ``(run_quantum_graph wall time - pool wall time) / quanta``, both on 2 warm processes (the
   cluster already running, the pool's processes started and their imports done), the pool
   running the loop of 1. Goal <= 5 ms. The same against the pool with this package's zarr
   writer (the framework's net overhead), and the share spent outside the quanta (wall time -
   sum of quantum durations from the provenance records / 2) are printed as references.
3. Quantum-graph build times (``build_quantum_graph``, processing subset) at 10,002 and
   100,002 quanta (1,667 and 16,667 exposures x 6 detectors) on SQLite, the registry filled
   directly through ``insert_dimension_records`` / ``insert_datasets`` with 6 darks certified
   in a CALIBRATION collection (no files). Goals: < 5 s and < 60 s. The full pipeline
   (subtract + stack) is built as a reference. Which prerequisite lookup the builder used
   (batched ``Registry.find_datasets`` or one ``find_dataset`` per lookup) is printed.
4. Peak memory: of each worker during the library run of 1 (``ru_maxrss`` via
   ``client.run``), and of the ``run`` command's client process (which also hosts the
   scheduler and the nannies) and its workers (sampled every 50 ms with psutil, in one more
   run of the command that is not timed: the sampler takes about 5% of a core), next to the
   peak of the baseline pool's processes.

The package is byte-compiled first (see ``_common.byte_compile_package``): with
``PYTHONDONTWRITEBYTECODE`` set and an editable install, the command, its fork server and
its workers would otherwise compile the package's modules from source in every run, which
an installed package never does.

``--quick`` runs 2 quanta of 256 x 256, 12 of 64 x 64 and graphs of 102 and 1,002 quanta
(seconds; the goals are then only indicative). Every timed step starts after ``os.sync()``, so that none pays for the writeback of an earlier
step's files. The last row gives the load average: on a shared machine, other processes slow
the framework and the baselines alike, but not always evenly.

``--profile DIR`` also writes cProfile statistics of the client side of the library runs and
of the graph builds, and distributed's worker profile (HTML), into ``DIR`` (timings of
profiled steps are inflated). In the table ``ratio`` is framework time / baseline time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import Result, byte_compile_package, cli_command, median, print_table, say, timed

if TYPE_CHECKING:
    import distributed

    from spherex_dask.butler import Butler
    from spherex_dask.registry import Registry

RAW_RUN, DARK_RUN, CALIB = "rawexpr", "darkr", "calib"
WORKERS = 2


def pipeline_file(subset: str = "") -> str:
    """The path of the built-in DarkSubtraction pipeline, with ``#subset`` when given."""
    path = resources.files("spherex_dask.pipelines").joinpath("DarkSubtraction.yaml")
    return f"{path}#{subset}" if subset else str(path)


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes for one run of the benchmark."""

    big_exposures: int
    big_detectors: tuple[int, ...]
    big_size: int
    small_exposures: int
    small_size: int
    graph_exposures: tuple[int, ...]
    graph_goals: tuple[float, ...]
    full_pipeline: bool
    rounds: int


FULL = Plan(4, (1, 2, 3, 4, 5, 6), 2040, 50, 256, (1667, 16667), (5.0, 60.0), True, 5)
QUICK = Plan(1, (1, 2), 256, 2, 64, (17, 167), (5.0, 60.0), False, 1)


@dataclass(frozen=True, slots=True)
class Item:
    """One quantum's files for the baseline loop: raw and dark in, a zarr store out."""

    raw: str
    dark: str
    out: str


@dataclass(frozen=True, slots=True)
class Repo:
    """A repository filled with simulated raws and certified darks, and its baseline items."""

    root: Path
    items: tuple[Item, ...]


def settle() -> None:
    """Flush dirty pages before a timed step, so that no step pays for an earlier one's writes.

    Outputs are not deleted between timed steps either, but kept (each step writes into a
    directory of its own) until the working directory goes at the end: on this machine's
    disk (ext4 mounted with ``discard``), deleting a step's 600 MB of stores just before the
    next timed step slowed that step by 0.3-1.0 s, even after ``sync``.
    """
    os.sync()


# -- the hand-written baseline -----------------------------------------------------------------
def _spectral_planes(path: str, shape: tuple[int, int]) -> dict[str, Any]:
    """Per-pixel wavelength and bandwidth, bilinear in the WCS-WAVE table (as the pipeline)."""
    import numpy as np
    from astropy.io import fits

    table = fits.getdata(path, "WCS-WAVE")
    xc, yc = np.asarray(table["X"][0], float), np.asarray(table["Y"][0], float)
    values = np.asarray(table["VALUES"][0], float).reshape(yc.size, xc.size, 2)
    py, px = np.arange(shape[0], dtype=float), np.arange(shape[1], dtype=float)
    iy = np.clip(np.searchsorted(yc, py, side="right") - 1, 0, yc.size - 2)
    wy = ((py - yc[iy]) / (yc[iy + 1] - yc[iy]))[:, None]
    planes = {}
    for k, name in enumerate(("wavelength", "bandwidth")):
        rows = np.stack([np.interp(px, xc, row) for row in values[..., k]])
        planes[name] = (("y", "x"), (rows[iy] * (1 - wy) + rows[iy + 1] * wy).astype("f4"))
    return planes


def subtract_one(item: Item, direct: bool = False) -> tuple[float, float]:
    """Read, subtract and write one quantum by hand; return (seconds, peak RSS MiB of process).

    ``direct`` writes the store with this package's zarr writer instead of ``to_zarr``.
    """
    import warnings

    import numpy as np
    import xarray as xr
    from astropy.io import fits

    start = time.perf_counter()
    image = fits.getdata(item.raw, "IMAGE", memmap=False)
    flags = fits.getdata(item.raw, "FLAGS", memmap=False)
    variance = fits.getdata(item.raw, "VARIANCE", memmap=False)
    dark = fits.getdata(item.dark, "IMAGE", memmap=False)
    dark_variance = fits.getdata(item.dark, "VARIANCE", memmap=False)
    dims = ("y", "x")
    ny, nx = image.shape
    data = {
        "image": (dims, image - dark),
        "flags": (dims, flags),
        "variance": (dims, variance + dark_variance),
    }
    coords = {"y": np.arange(ny), "x": np.arange(nx)}
    ds = xr.Dataset(data, coords=coords)
    encoding = {name: {"chunks": (ny, nx)} for name in ds.variables if ds[name].ndim == 2}
    if direct:
        from spherex_dask.io.formatters._zarr_write import write_direct

        write_direct(ds, item.out, encoding)
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            ds.to_zarr(item.out, mode="w-", zarr_format=3, consolidated=True, encoding=encoding)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _direct(item: Item) -> tuple[float, float]:
    return subtract_one(item, direct=True)


def baseline_serial(items: Sequence[Item]) -> tuple[float, list[float]]:
    """Wall time of the loop in this process, and each item's time."""
    settle()
    start = time.perf_counter()
    times = [subtract_one(item)[0] for item in items]
    return time.perf_counter() - start, times


def baseline_pool(
    items: Sequence[Item], *, direct: bool = False, warm: Sequence[Item] = ()
) -> tuple[float, list[tuple[float, float]]]:
    """Wall time of the loop on a 2-process pool (its start included unless ``warm`` is given:
    then the pool first runs ``warm`` untimed), and each item's (seconds, process peak MiB)."""
    fn: Callable[[Item], tuple[float, float]] = _direct if direct else subtract_one
    settle()
    start = time.perf_counter()
    with ProcessPoolExecutor(WORKERS) as pool:
        if warm:
            list(pool.map(fn, warm))
            settle()
            start = time.perf_counter()
        results = list(pool.map(fn, items))
        seconds = time.perf_counter() - start
    return seconds, results


def baseline_command(items: Sequence[Item], workdir: Path) -> float:
    """Wall time of ``python benchmarks/pipeline.py --baseline-pool ITEMS`` (a whole command)."""
    spec = workdir / "baseline-items.json"
    spec.write_text(json.dumps([asdict(i) for i in items]))
    command = [sys.executable, __file__, "--baseline-pool", str(spec)]
    settle()
    seconds, result = timed(lambda: subprocess.run(command, capture_output=True, text=True))
    if result.returncode != 0:
        raise RuntimeError(f"baseline command failed:\n{result.stderr[-3000:]}")
    return seconds


def _items_to(items: Sequence[Item], directory: Path) -> list[Item]:
    """The same items writing into ``directory`` (made; it must not exist, see settle)."""
    directory.mkdir(parents=True)
    return [Item(i.raw, i.dark, str(directory / Path(i.out).name)) for i in items]


# -- setup -------------------------------------------------------------------------------------
def make_repo(root: Path, *, exposures: int, detectors: Sequence[int], size: int) -> Repo:
    """Simulate, create a repository, ingest raws and darks (symlinks), certify the darks."""
    from spherex_dask.butler import Butler
    from spherex_dask.ingest import ingest_simulated
    from spherex_dask.sim import simulate
    from spherex_dask.types import CollectionType, Timespan

    sim = simulate(root / "incoming", exposures=exposures, detectors=detectors, size=size, seed=3)
    with Butler.create(root / "repo") as butler:
        ingest_simulated(butler, sim.root, ingest_type="raw", run=RAW_RUN, progress=False)
        darks = ingest_simulated(butler, sim.root, ingest_type="dark", run=DARK_RUN, progress=False)
        butler.registry.register_collection(CALIB, CollectionType.CALIBRATION)
        butler.registry.certify(CALIB, darks, Timespan(sim.timespan.begin, None))
    dark = {f.detector: str(f.path) for f in sim.files if f.kind == "dark"}
    items = tuple(
        Item(str(f.path), dark[f.detector], f"{f.path.stem}.zarr")
        for f in sim.files
        if f.kind == "raw"
    )
    return Repo(root / "repo", items)


# -- the framework -----------------------------------------------------------------------------
class TreeSampler:
    """Samples the RSS of a process and of its descendants until stopped (peaks in MiB)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.interval = interval
        self.main = 0.0
        self.children: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.main = max(self.main, self.process.memory_info().rss / 2**20)
                children = self.process.children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:  # one that exits while sampled must not hide the others
                try:
                    rss = child.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.children[child.pid] = max(self.children.get(child.pid, 0.0), rss)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True, slots=True)
class CliRun:
    """One ``spherex-dask run``: wall time, the run's own time as printed, and the sampled
    peaks (NaN when the run was not sampled)."""

    seconds: float
    run_seconds: float
    client_mb: float = float("nan")
    worker_mb: float = float("nan")


def cli_run(repo: Path, pipeline: str, output: str, *, sample: bool = False) -> CliRun:
    """Run the whole ``spherex-dask run`` command (its outputs are kept, see settle).

    ``sample`` samples the memory of the command's process tree while it runs. Timed runs
    are not sampled: the sampler's scans of ``/proc`` take about 5% of a core, which on two
    cores the command would lose to it.
    """
    command = [*cli_command(), "run", "-p", pipeline, "-b", str(repo), "-o", output,
               "-i", f"{RAW_RUN},{CALIB}", "-j", str(WORKERS), "--no-progress",
               "--register-dataset-types"]  # fmt: skip
    settle()
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid) if sample else None
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{stdout}\n{stderr}")
    found = re.search(r"written in ([\d.]+) s", stdout)
    run_seconds = float(found.group(1)) if found else float("nan")
    if sampler is None:
        return CliRun(seconds, run_seconds)
    sampler.stop()
    workers = max(sampler.children.values(), default=0.0)
    return CliRun(seconds, run_seconds, sampler.main, workers)


@contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """cProfile the block into ``directory/name.prof`` when ``directory`` is given."""
    if directory is None:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(directory / f"{name}.prof")


@dataclass(frozen=True, slots=True)
class LibraryRun:
    """One ``run_quantum_graph`` call: wall time, quanta, and the quanta's own durations."""

    seconds: float
    quanta: int
    durations: list[float]


def library_run(
    butler: Butler,
    client: distributed.Client,
    pipeline: str,
    output: str,
    *,
    profile: Path | None = None,
) -> LibraryRun:
    """Time ``run_quantum_graph`` alone (graph and output collections made beforehand)."""
    from spherex_dask.pipeline import (
        Pipeline,
        apply_outputs,
        build_quantum_graph,
        plan_outputs,
        run_quantum_graph,
    )

    plan = plan_outputs(butler.registry, inputs=[RAW_RUN, CALIB], output=output)
    graph = build_quantum_graph(
        Pipeline.from_yaml(pipeline),
        butler.registry,
        input_collections=plan.inputs,
        output_run=plan.run,
    )
    apply_outputs(butler.registry, plan)
    settle()
    with profiled(profile, output):
        seconds, summary = timed(
            lambda: run_quantum_graph(
                graph, butler, client, progress=False, register_dataset_types=True
            )
        )
    if not summary.ok or sum(t.succeeded for t in summary.tasks) != len(graph):
        raise RuntimeError(f"library run {output} did not succeed:\n{summary.format()}")
    records = butler.registry.query_quanta(collections=[plan.run])
    durations = [(r.end - r.start).total_seconds() for r in records if r.start and r.end]
    return LibraryRun(seconds, len(graph), durations)


def check_output(butler: Butler, output: str, item: Item) -> None:
    """The first quantum's dark_subtracted image equals the baseline loop's for the same files."""
    import numpy as np
    import xarray as xr

    ref = sorted(
        butler.registry.query_datasets("dark_subtracted", collections=[output]),
        key=lambda r: (r.data_id["exposure"], r.data_id["detector"]),
    )[0]
    ours = butler.get(ref)
    theirs = xr.open_zarr(item.out, zarr_format=3)
    planes = _spectral_planes(item.raw, ours["image"].shape)
    for name in ("image", "flags", "variance", "wavelength", "bandwidth"):
        want = planes[name][1] if name in planes else theirs[name].values
        if not np.allclose(ours[name].values, want, rtol=1e-6, equal_nan=True):
            raise RuntimeError(f"{name} of {ref.data_id} differs from the baseline's {item.out}")


def worker_peak_mb(client: distributed.Client) -> list[float]:
    """Peak RSS (ru_maxrss) of each worker process so far, in MiB."""

    def peak() -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return sorted(client.run(peak).values())


# -- 1 and 4: the demo pipeline at full size ------------------------------------------------------
def _row(
    metric: str,
    seconds: float,
    base: float,
    goal: str = "-",
    passed: bool | None = None,
    *,
    unit: str = "s",
) -> Result:
    return Result(
        metric=metric,
        value=f"{seconds:.2f} {unit}",
        baseline=f"{base:.2f} {unit}",
        ratio=f"{seconds / base:.2f}",
        goal=goal,
        passed=passed,
    )


def big_baselines(workdir: Path, repo: Repo) -> dict[str, Any]:
    """The baseline loops on the full-size items (serial, pool, pool with the direct zarr
    writer); the pool is measured again, paired with the command, by :func:`paired_rounds`."""
    out: dict[str, Any] = {}
    n = len(repo.items)
    subtract_one(_items_to(repo.items[:1], workdir / "baseline" / "warm")[0])  # imports
    items = _items_to(repo.items, workdir / "baseline" / "serial")
    out["serial"], times = baseline_serial(items)
    say(f"baseline serial loop, {n} quanta: {out['serial']:.2f} s ({median(times):.3f} s each)")
    items = _items_to(repo.items, workdir / "baseline" / "pool")
    out["pool"], results = baseline_pool(items)
    out["pool_mb"] = max(mb for _, mb in results)
    out["pool_item"] = median([seconds for seconds, _ in results])
    out["check"] = items[0]
    say(f"baseline pool of 2, {n} quanta: {out['pool']:.2f} s")
    items = _items_to(repo.items, workdir / "baseline" / "direct")
    out["direct"], _ = baseline_pool(items, direct=True)
    say(f"baseline pool of 2 with spherex_dask's zarr writer: {out['direct']:.2f} s")
    return out


@dataclass(frozen=True, slots=True)
class Rounds:
    """The goal's two sides (and the pool as a command) measured back to back, per round."""

    pool: tuple[float, ...]
    command: tuple[float, ...]
    pool_command: tuple[float, ...]
    runs: tuple[CliRun, ...]

    def ratios(self, baseline: Sequence[float]) -> list[float]:
        """Command time / baseline time of each round."""
        return [c / b for c, b in zip(self.command, baseline, strict=True)]


def paired_rounds(workdir: Path, repo: Repo, rounds: int) -> Rounds:
    """``rounds`` rounds of: the pool, the whole ``run`` command, the pool as a command.

    The machine's speed drifts (other load on a shared host): the same pool loop took 4.0 s
    and 6.6 s an hour apart. Each round measures the command between its two baselines, in
    mirrored order from one round to the next (pool, command, pool command; then pool command,
    command, pool), so that each ratio compares like with like; the table reports the
    median of the rounds' ratios and their range.
    """
    pool: list[float] = []
    command: list[float] = []
    pool_command: list[float] = []
    runs: list[CliRun] = []

    def run_pool(i: int) -> None:
        items = _items_to(repo.items, workdir / "baseline" / f"round-{i}-pool")
        pool.append(baseline_pool(items)[0])

    def run_command(i: int) -> None:
        runs.append(cli_run(repo.root, pipeline_file("processing"), f"cli-processing-{i}"))
        command.append(runs[-1].seconds)

    def run_pool_command(i: int) -> None:
        items = _items_to(repo.items, workdir / "baseline" / f"round-{i}-command")
        pool_command.append(baseline_command(items, workdir))

    steps = [run_pool, run_command, run_pool_command]
    for i in range(rounds):
        for step in steps if i % 2 == 0 else steps[::-1]:
            step(i)
        r = runs[-1]
        say(
            f"round {i + 1}/{rounds}: pool {pool[-1]:.2f} s, spherex-dask run {r.seconds:.2f} s "
            f"(run_quantum_graph {r.run_seconds:.2f} s), pool as a command "
            f"{pool_command[-1]:.2f} s"
        )
    return Rounds(tuple(pool), tuple(command), tuple(pool_command), tuple(runs))


def sampled_run(repo: Repo) -> CliRun:
    """One more (untimed) ``run`` of the processing subset, its memory sampled."""
    r = cli_run(repo.root, pipeline_file("processing"), "cli-memory", sample=True)
    say(f"spherex-dask run, sampled: client {r.client_mb:,.0f} MiB, worker {r.worker_mb:,.0f} MiB")
    return r


def full_pipeline_run(repo: Repo) -> CliRun:
    """The whole ``run`` command on the full pipeline (subtract + stack), a reference."""
    r = cli_run(repo.root, pipeline_file(), "cli-full")
    say(
        f"spherex-dask run (full pipeline): {r.seconds:.2f} s, of which run_quantum_graph "
        f"{r.run_seconds:.2f} s"
    )
    return r


def _ratio_row(
    metric: str,
    values: Sequence[float],
    ratios: Sequence[float],
    base: Sequence[float],
    goal: str = "-",
    passed: bool | None = None,
) -> Result:
    """A row whose ratio is the median of ``ratios`` (paired rounds), with their range."""
    spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    row = _row(metric, median(values), median(base), goal, passed)
    return replace(row, ratio=f"{median(ratios):.3f}{spread}")


def big_rows(
    n: int,
    base: dict[str, Any],
    rounds: Rounds,
    full: CliRun | None,
    lib: LibraryRun,
    start: float,
) -> list[Result]:
    """Rows of section 1."""
    ratios = rounds.ratios(rounds.pool)
    pool = median([base["pool"], *rounds.pool])
    runs = rounds.runs
    quanta = median([r.run_seconds for r in runs])
    rows = [
        _ratio_row(
            f"1. spherex-dask run (subtract), {n} quanta, 2 workers vs pool, "
            f"median of {len(ratios)} paired rounds",
            rounds.command,
            ratios,
            rounds.pool,
            "ratio <= 1.3",
            median(ratios) <= 1.3,
        ),
        _ratio_row(
            "   same vs pool as a whole command",
            rounds.command,
            rounds.ratios(rounds.pool_command),
            rounds.pool_command,
        ),
        _row(
            "   same vs pool with spherex_dask's zarr writer",
            median(rounds.command),
            base["direct"],
        ),
        _row("   same vs serial loop", median(rounds.command), base["serial"]),
        Result(metric="   of which run_quantum_graph (as printed)", value=f"{quanta:.2f} s"),
        Result(
            metric="   rest: interpreter, imports, graph build, cluster start and stop",
            value=f"{median([r.seconds - r.run_seconds for r in runs]):.2f} s",
        ),
        _row("   run_quantum_graph alone (cluster up) vs pool", lib.seconds, pool),
        _row("   same vs pool with spherex_dask's zarr writer", lib.seconds, base["direct"]),
        Result(metric="   local cluster start (2 workers)", value=f"{start:.2f} s"),
        _row(
            "   median quantum duration (provenance) vs pool item",
            median(lib.durations),
            base["pool_item"],
        ),
    ]
    if full is not None:
        rows.append(
            _row(
                "   spherex-dask run, full pipeline (subtract + stack) vs pool", full.seconds, pool
            )
        )
    return rows


def memory_rows(base: dict[str, Any], sampled: CliRun, workers_mb: list[float]) -> list[Result]:
    """Rows of section 4 (peaks during the full-size runs of section 1, and of the sampled
    command)."""
    pool = f"{base['pool_mb']:,.0f} MiB"
    worker_mb, client_mb = sampled.worker_mb, sampled.client_mb
    return [
        Result(
            metric="4. worker peak RSS, run_quantum_graph of 1 (max of 2)",
            value=f"{max(workers_mb):,.0f} MiB",
            baseline=pool,
            ratio=f"{max(workers_mb) / base['pool_mb']:.2f}",
        ),
        Result(
            metric="   worker peak RSS, run command of 1 (sampled)",
            value=f"{worker_mb:,.0f} MiB",
            baseline=pool,
            ratio=f"{worker_mb / base['pool_mb']:.2f}",
        ),
        Result(
            metric="   client process peak RSS, run command of 1 (sampled)",
            value=f"{client_mb:,.0f} MiB",
        ),
    ]


# -- 2: per-quantum overhead -----------------------------------------------------------------------
def overhead_baselines(workdir: Path, repo: Repo) -> dict[str, Any]:
    """The warm-pool loops (to_zarr, and this package's zarr writer) on the small items."""
    out: dict[str, Any] = {}
    for key, direct in (("pool", False), ("direct", True)):
        items = _items_to(repo.items, workdir / "overhead" / key)
        warm = _items_to(repo.items[: 2 * WORKERS], workdir / "overhead" / f"{key}-warm")
        out[key], results = baseline_pool(items, direct=direct, warm=warm)
        out[f"{key}_item"] = median([s for s, _ in results])
        say(
            f"baseline warm pool of 2{' (direct zarr writer)' if direct else ''}, "
            f"{len(items)} quanta: {out[key]:.2f} s"
        )
    return out


def overhead_rows(size: int, base: dict[str, Any], lib: LibraryRun) -> list[Result]:
    """Rows of section 2."""
    n = lib.quanta
    per = (lib.seconds - base["pool"]) / n * 1e3
    net = (lib.seconds - base["direct"]) / n * 1e3
    outside = (lib.seconds - sum(lib.durations) / WORKERS) / n * 1e3
    return [
        Result(
            metric=f"2. overhead per quantum, {n} quanta of {size}x{size}: "
            "(run_quantum_graph - warm pool) / quanta",
            value=f"{per:.1f} ms",
            goal="<= 5 ms",
            passed=per <= 5.0,
        ),
        _row("   run_quantum_graph (cluster up) vs warm pool", lib.seconds, base["pool"]),
        Result(
            metric="   same against a warm pool with spherex_dask's zarr writer (net overhead)",
            value=f"{net:.1f} ms",
        ),
        _row(
            "   run_quantum_graph vs warm pool with spherex_dask's zarr writer",
            lib.seconds,
            base["direct"],
        ),
        Result(
            metric="   outside the quanta: (wall - sum of quantum durations / 2) / quanta",
            value=f"{outside:.1f} ms",
        ),
        _row(
            "   median quantum duration (provenance) vs pool item (to_zarr)",
            median(lib.durations) * 1e3,
            base["pool_item"] * 1e3,
            unit="ms",
        ),
    ]


# -- 3: quantum-graph build ------------------------------------------------------------------------
CADENCE = timedelta(seconds=144)
EXPOSURE_TIME = timedelta(seconds=112)
PERIOD = timedelta(days=3.5)


def _exposure(i: int, per_period: int, t0: Any) -> dict[str, Any]:
    """The record of exposure ``i + 1`` (one every 144 s from ``t0``)."""
    from spherex_dask.types import Timespan

    begin, period = t0 + i * CADENCE, f"P{i // per_period:04d}"
    return {"instrument": "SPHEREx", "id": i + 1, "obs_id": f"{period}_{i + 1:07d}_1",
            "planning_period": period, "large_slew": i + 1, "small_slew": 1,
            "exposure_time": 112.0, "ra": (i * 0.1) % 360, "dec": -5.0, "roll": 0.0,
            "survey": "wide", "timespan": Timespan(begin, begin + EXPOSURE_TIME)}  # fmt: skip


def fill_registry(registry: Registry, exposures: int) -> None:
    """``exposures`` x 6 raws and 6 darks certified in ``calib``, straight into the registry."""
    from spherex_dask import ingest
    from spherex_dask.types import CollectionType, Timespan, parse_time

    t0, instrument = parse_time("2025-05-01"), {"instrument": ingest.INSTRUMENT}
    ingest.register_instrument(registry)  # instrument, detectors, raw/dark dataset types
    per_period = PERIOD // CADENCE
    periods = [
        instrument
        | {"name": f"P{k:04d}", "timespan": Timespan(t0 + k * PERIOD, t0 + (k + 1) * PERIOD)}
        for k in range(-(-exposures // per_period))
    ]
    registry.insert_dimension_records("planning_period", periods)
    registry.insert_dimension_records(
        "exposure", [_exposure(i, per_period, t0) for i in range(exposures)]
    )
    registry.register_run(RAW_RUN)
    registry.register_run(DARK_RUN)
    raws = [
        instrument | {"exposure": i + 1, "detector": d}
        for i in range(exposures)
        for d in range(1, 7)
    ]
    registry.insert_datasets("raw", raws, RAW_RUN)
    darks = [instrument | {"detector": d} for d in range(1, 7)]
    refs = registry.insert_datasets("dark", darks, DARK_RUN)
    registry.register_collection(CALIB, CollectionType.CALIBRATION)
    registry.certify(CALIB, refs, Timespan(t0 - timedelta(days=1), None))


def _build(
    registry: Registry, spec: str, exposures: int, profile: Path | None
) -> tuple[float, Any]:
    """Seconds to build the graph of pipeline ``spec`` (checked: every raw has its quantum)."""
    from spherex_dask.pipeline import Pipeline, build_quantum_graph

    pipeline = Pipeline.from_yaml(spec)
    name = f"qgraph-{spec.partition('#')[2] or 'full'}-{exposures}"
    with profiled(profile, name):
        seconds, graph = timed(
            lambda: build_quantum_graph(
                pipeline, registry, input_collections=[RAW_RUN, CALIB], output_run="bench/run"
            )
        )
    if graph.skipped or len(graph.quanta_for_task("subtract")) != 6 * exposures:
        raise RuntimeError(f"{name}: {len(graph)} quanta, {len(graph.skipped)} skipped")
    return seconds, graph


def graph_builds(workdir: Path, plan: Plan, profile: Path | None) -> list[Result]:
    """Section 3: build times of the processing subset (goals) and the full pipeline."""
    from spherex_dask.registry import Registry

    batched = hasattr(Registry, "find_datasets")
    lookup = "batched Registry.find_datasets" if batched else "find_dataset per lookup"
    say(f"graph builds: prerequisites looked up with {lookup}")
    rows = []
    for exposures, goal in zip(plan.graph_exposures, plan.graph_goals, strict=True):
        path = workdir / f"graph-{exposures}.sqlite3"
        with Registry.create(f"sqlite:///{path}") as registry:
            seconds, _ = timed(lambda r=registry, e=exposures: fill_registry(r, e))
            say(f"filled a registry with {exposures:,} x 6 raws in {seconds:.1f} s")
            seconds, graph = _build(registry, pipeline_file("processing"), exposures, profile)
            say(f"  built the processing subset: {len(graph):,} quanta in {seconds:.2f} s")
            metric = f"3. quantum graph build, {len(graph):,} quanta (subtract), SQLite"
            rows.append(
                Result(metric=metric, value=f"{seconds:.2f} s", goal=f"< {goal:g} s",
                       passed=seconds < goal)
            )  # fmt: skip
            seconds, graph = _build(registry, pipeline_file(), exposures, profile)
            say(f"  built the full pipeline: {len(graph):,} quanta in {seconds:.2f} s")
            metric = f"   same, full pipeline ({len(graph):,} quanta, with stacks)"
            rows.append(Result(metric=metric, value=f"{seconds:.2f} s"))
        path.unlink()
    rows.append(Result(metric="   prerequisite lookups", value=lookup))
    return rows


# -- main ----------------------------------------------------------------------------------------
def framework_runs(
    big: Repo, small: Repo, check: Item, profile: Path | None
) -> tuple[LibraryRun, float, list[float], LibraryRun]:
    """The library runs on one local cluster: full-size (and worker peaks), then overhead."""
    from spherex_dask.butler import Butler
    from spherex_dask.pipeline._cluster import make_client

    processing = pipeline_file("processing")
    start, client = timed(lambda: make_client(n_workers=WORKERS))
    say(f"local cluster of {WORKERS} workers started in {start:.2f} s")
    with client:
        with Butler(big.root) as butler:
            lib = library_run(butler, client, processing, "lib-processing", profile=profile)
            workers_mb = worker_peak_mb(client)
            say(
                f"run_quantum_graph, {lib.quanta} quanta: {lib.seconds:.2f} s; worker peaks "
                f"{', '.join(f'{mb:,.0f}' for mb in workers_mb)} MiB"
            )
            check_output(butler, "lib-processing", check)
        with Butler(small.root) as butler:
            small_lib = library_run(butler, client, processing, "lib-overhead", profile=profile)
            say(f"run_quantum_graph, {small_lib.quanta} quanta: {small_lib.seconds:.2f} s")
        if profile is not None:
            client.profile(filename=str(profile / "workers.html"))
    return lib, start, workers_mb, small_lib


def run(workdir: Path, plan: Plan, profile: Path | None) -> list[Result]:
    """Every measurement, in order; returns the table rows."""
    load = os.getloadavg()[0]
    cached = byte_compile_package()
    say(f"package bytecode {'was cached' if cached else 'compiled now'} (see _common.py)")
    seconds, big = timed(
        lambda: make_repo(
            workdir / "big",
            exposures=plan.big_exposures,
            detectors=plan.big_detectors,
            size=plan.big_size,
        )
    )
    say(f"setup: {len(big.items)} quanta of {plan.big_size}x{plan.big_size} in {seconds:.1f} s")
    seconds, small = timed(
        lambda: make_repo(
            workdir / "small",
            exposures=plan.small_exposures,
            detectors=range(1, 7),
            size=plan.small_size,
        )
    )
    size = plan.small_size
    say(f"setup: {len(small.items)} quanta of {size}x{size} in {seconds:.1f} s")
    # The pools fork this process: run them before any thread (cluster, sampler) starts.
    base = big_baselines(workdir, big)
    small_base = overhead_baselines(workdir, small)
    rounds = paired_rounds(workdir, big, plan.rounds)
    sampled = sampled_run(big)
    full = full_pipeline_run(big) if plan.full_pipeline else None
    lib, start, workers_mb, small_lib = framework_runs(big, small, base["check"], profile)
    rows = big_rows(len(big.items), base, rounds, full, lib, start)
    rows += overhead_rows(plan.small_size, small_base, small_lib)
    rows += graph_builds(workdir, plan, profile)
    rows += memory_rows(base, sampled, workers_mb)
    rows.append(
        Result(
            metric=f"load average (1 min) at start / end, {os.cpu_count()} CPUs",
            value=f"{load:.1f} / {os.getloadavg()[0]:.1f}",
        )
    )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the benchmark in a temporary directory, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    parser.add_argument("--baseline-pool", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_pool is not None:  # the pool loop as a whole command (see baseline_command)
        baseline_pool([Item(**d) for d in json.loads(args.baseline_pool.read_text())])
        return
    plan = QUICK if args.quick else FULL
    for directory in (args.workdir, args.profile):
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="spherex-pipeline-bench-", dir=args.workdir))
    say(f"working in {workdir} ({'quick' if args.quick else 'full'} run, {os.cpu_count()} CPUs)")
    try:
        seconds, rows = timed(lambda: run(workdir, plan, args.profile))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(
        rows,
        title=f"benchmarks/pipeline.py ({seconds:.0f} s; ratio = framework time / baseline time)",
    )


if __name__ == "__main__":
    main()
