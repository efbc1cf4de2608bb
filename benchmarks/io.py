# SPDX-License-Identifier: BSD-3-Clause
"""Ingest, lazy-open and full-read speed of the Butler, with plain baselines measured in the same run.

Usage::

    python benchmarks/io.py [--quick] [--workdir DIR] [--cold] [--keep]

It prints:

1. the ingest rate of 10,000 small (16 x 16) raw files with ``transfer=symlink`` and ``copy``,
   through ``ingest.ingest_simulated`` (reads each file's primary header for the exposure
   records) and through ``Butler.ingest(*FileDataset)`` with the data IDs known (no header
   reads; the dimension records are synced beforehand, untimed), against a plain loop that
   symlinks/copies the same files into the same directory layout and inserts one row per file
   with ``sqlite3`` (``executemany``, committed). Goal: >= 1,000 files/s with symlink.
   Two reference rows without goals show what options cost: ``Butler.ingest`` into a
   repository created with ``checksum="blake2b"`` (opt-in; it reads every file), and the
   plain loop with an ``fsync`` per copied file (the datastore fsyncs copies).
2. the same for 48 full-size (2040 x 2040) raw files (8 exposures x 6 detectors);
3. the time to open a 2040 x 2040 raw lazily with ``Butler.get("raw", data_id)`` (first call,
   and the median of the others; goal < 20 ms), and whether that read no pixels (every
   variable is a dask array; the bytes read by the process during one open are reported);
4. the throughput of reading full images with ``Butler.get(...).image.values`` against
   ``astropy.io.fits.getdata(path, "IMAGE", memmap=False)`` on the same files, in alternating
   order (goal: within 1.2x of astropy); ``fits.getdata`` converted to native byte order (what
   the Butler returns) is a second reference without a goal, and so is the Butler's read
   without dask (``parameters={"chunks": False}``). ``--cold`` drops the page cache
   before each read (needs root).

Every timed ingest starts after ``os.sync()``, so that none pays for the writeback of the
files an earlier step wrote. In the table, ``ratio`` is always framework time / baseline
time: 1.0 is as fast as the baseline, 3.0 three times slower. Setup (simulating the files,
creating repositories) is never timed. Small files are made by simulating one 16 x 16
exposure per detector and rewriting its primary-header exposure cards for each further
exposure (simulating 10,000 files takes minutes); the IMAGE header and WCS keep the first
exposure's values.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from _common import Result, median, peak_rss_mb, print_table, say, timed
from astropy.io import fits

from spherex_dask import ingest, sim
from spherex_dask.butler import Butler, FileDataset

RUN = ingest.DEFAULT_RUNS["raw"]
MJD_ZERO = datetime(1858, 11, 17, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Source:
    """One file to ingest, with its data ID and primary header (known from setup)."""

    path: Path
    data_id: dict[str, Any]
    header: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Plan:
    """Counts for one run of the benchmark."""

    small_exposures: int
    big_exposures: int
    big_detectors: tuple[int, ...]
    big_size: int
    open_calls: int
    read_rounds: int


FULL = Plan(1667, 8, (1, 2, 3, 4, 5, 6), 2040, 48, 2)
QUICK = Plan(50, 1, (1, 2), 2040, 10, 1)


# -- setup: source files ---------------------------------------------------------------------
def _iso(time: datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time.microsecond // 1000:03d}"


def _mjd(time: datetime) -> float:
    return (time - MJD_ZERO).total_seconds() / 86400.0


def exposure_cards(exposure: sim.SimulatedExposure) -> dict[str, Any]:
    """The primary-header keywords of a raw file that depend on its exposure."""
    return {
        "OBSID": exposure.obs_id,
        "EXPIDN": exposure.exposure_id,
        "PLANPER": exposure.planning_period,
        "LSLEW": exposure.large_slew,
        "SSLEW": exposure.small_slew,
        "SURVEY": exposure.survey,
        "DATE-OBS": _iso(exposure.begin),
        "DATE-END": _iso(exposure.end),
        "MJD-OBS": _mjd(exposure.begin),
        "MJD-END": _mjd(exposure.end),
        "EXPTIME": exposure.exposure_time,
        "RA_BORE": exposure.ra,
        "DEC_BORE": exposure.dec,
        "ROLL": exposure.roll,
        "DATE": _iso(exposure.end),
    }


def patch_primary(data: bytes, values: Mapping[str, Any]) -> bytes:
    """``data`` (a FITS file) with the values of existing primary-header cards replaced."""
    out = bytearray(data)
    end = data.index(b"END" + b" " * 77)
    for start in range(0, end, 80):
        key = data[start : start + 8].decode("ascii").rstrip()
        if key in values:
            card = fits.Card(
                key, values[key], fits.Card.fromstring(data[start : start + 80]).comment
            )
            out[start : start + 80] = card.image.encode("ascii")
    return bytes(out)


def make_small_sources(workdir: Path, exposures: int) -> list[Source]:
    """``exposures`` x 6 small raw files in ``workdir/small`` (see the module docstring)."""
    template = sim.simulate(workdir / "template", exposures=1, size=16, seed=1)
    raws = {f.detector: f.path for f in template.files if f.kind == "raw"}
    headers = {d: dict(fits.getheader(p)) for d, p in raws.items()}
    data = {d: p.read_bytes() for d, p in raws.items()}
    target = workdir / "small"
    target.mkdir()
    sources = []
    for exposure in sim.make_exposures(exposures, seed=1):
        values = exposure_cards(exposure)
        for detector, template_bytes in data.items():
            path = target / sim.file_name("raw", naming="poc", detector=detector, exposure=exposure)
            path.write_bytes(patch_primary(template_bytes, values))
            data_id = {"instrument": ingest.INSTRUMENT, "exposure": exposure.exposure_id}
            sources.append(
                Source(path, data_id | {"detector": detector}, headers[detector] | values)
            )
    shutil.rmtree(workdir / "template")
    check = fits.getheader(sources[-1].path)
    if check["EXPIDN"] != sources[-1].data_id["exposure"]:
        raise RuntimeError(f"Rewriting the primary header of {sources[-1].path} failed")
    return sources


def make_big_sources(workdir: Path, plan: Plan) -> list[Source]:
    """Simulated full-size raw files (and darks, which the benchmark ignores) in ``workdir/big``."""
    simulation = sim.simulate(
        workdir / "big",
        exposures=plan.big_exposures,
        detectors=plan.big_detectors,
        size=plan.big_size,
        seed=2,
    )
    sources = []
    for f in simulation.files:
        if f.kind == "raw" and f.exposure is not None:
            data_id = {"instrument": ingest.INSTRUMENT, "exposure": f.exposure.exposure_id}
            header = dict(fits.getheader(f.path))
            sources.append(Source(f.path, data_id | {"detector": f.detector}, header))
    return sources


# -- ingest ----------------------------------------------------------------------------------
def new_repo(workdir: Path, name: str, *, checksum: str | None = None) -> Path:
    """A fresh repository under ``workdir/repos`` (default configuration unless ``checksum``)."""
    root = workdir / "repos" / name
    Butler.create(root, checksum=checksum).close()
    return root


def sync_records(butler: Butler, sources: Sequence[Source]) -> None:
    """Register the instrument and the sources' planning-period and exposure records."""
    ingest.register_instrument(butler.registry)
    periods: dict[str, dict[str, Any]] = {}
    exposures: dict[int, dict[str, Any]] = {}
    for source in sources:
        planning, exposure = ingest.exposure_records_from_header(source.header)
        periods[planning["name"]] = planning
        exposures[exposure["id"]] = exposure
    with butler.registry.transaction():
        butler.registry.sync_dimension_records("planning_period", list(periods.values()))
        butler.registry.sync_dimension_records("exposure", list(exposures.values()))


def ingest_from_headers(root: Path, directory: Path, transfer: str, count: int) -> float:
    """Seconds taken by ``ingest_simulated`` of every raw file in ``directory``."""
    with Butler(root) as butler:
        seconds, refs = timed(
            lambda: ingest.ingest_simulated(butler, directory, ingest_type="raw", transfer=transfer)
        )
    if len(refs) != count:
        raise RuntimeError(f"ingest_simulated ingested {len(refs)} files, expected {count}")
    return seconds


def ingest_known(root: Path, sources: Sequence[Source], transfer: str) -> float:
    """Seconds taken by ``Butler.ingest`` of ``sources`` with their data IDs (records synced first)."""
    with Butler(root, run=RUN) as butler:
        sync_records(butler, sources)
        datasets = [
            FileDataset(path=str(s.path), dataset_type="raw", data_id=s.data_id) for s in sources
        ]
        seconds, refs = timed(lambda: butler.ingest(*datasets, transfer=transfer, run=RUN))
    if len(refs) != len(sources):
        raise RuntimeError(f"Butler.ingest ingested {len(refs)} files, expected {len(sources)}")
    return seconds


BASELINE_SCHEMA = """
CREATE TABLE dataset (
    id TEXT PRIMARY KEY, dataset_type TEXT NOT NULL, run TEXT NOT NULL,
    instrument TEXT NOT NULL, exposure INTEGER NOT NULL, detector INTEGER NOT NULL,
    path TEXT NOT NULL, size INTEGER NOT NULL,
    UNIQUE (dataset_type, run, instrument, exposure, detector)
)"""
BASELINE_INSERT = "INSERT INTO dataset VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def copy_fsync(source: Path, target: Path) -> None:
    """Copy a file and flush it to disk, as the datastore does by default."""
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_loop(root: Path, sources: Sequence[Source], transfer: str) -> float:
    """Seconds to symlink/copy ``sources`` into the ``raw`` template's layout and insert rows.

    ``transfer`` is ``symlink``, ``copy`` or ``copy+fsync``.
    """
    root.mkdir(parents=True)
    connection = sqlite3.connect(root / "baseline.sqlite3")
    connection.execute(BASELINE_SCHEMA)
    connection.commit()
    place: Callable[[Path, Path], Any] = {
        "symlink": os.symlink,
        "copy": shutil.copyfile,
        "copy+fsync": copy_fsync,
    }[transfer]

    def run() -> None:
        made: set[Path] = set()
        rows = []
        for s in sources:
            obs_id, detector = s.header["OBSID"], s.data_id["detector"]
            directory = root / RUN / "raw" / s.header["PLANPER"] / obs_id
            if directory not in made:
                directory.mkdir(parents=True, exist_ok=True)
                made.add(directory)
            target = directory / f"raw_{obs_id}_D{detector}.fits"
            place(s.path, target)
            size = os.stat(s.path).st_size
            rows.append(
                (str(uuid.uuid4()), "raw", RUN, ingest.INSTRUMENT, s.data_id["exposure"],
                 detector, str(target.relative_to(root)), size)
            )  # fmt: skip
        with connection:
            connection.executemany(BASELINE_INSERT, rows)

    seconds, _ = timed(run)
    connection.close()
    return seconds


#: (label, API, repository checksum) of the framework ingests measured per transfer mode; the
#: default repository records no checksum; the blake2b row shows what opting in costs.
VARIANTS = {
    "symlink": [
        ("ingest_simulated", "ingest_simulated", None),
        ("Butler.ingest", "Butler.ingest", None),
        ("Butler.ingest, checksum=blake2b", "Butler.ingest", "blake2b"),
    ],
    "copy": [
        ("ingest_simulated", "ingest_simulated", None),
        ("Butler.ingest", "Butler.ingest", None),
    ],
}


def _rate_row(metric: str, n: int, seconds: float, base: float, *, goal: bool = False) -> Result:
    return Result(
        metric=metric,
        value=f"{n / seconds:,.0f} files/s",
        baseline=f"{n / base:,.0f} files/s",
        ratio=f"{seconds / base:.1f}",
        goal=">= 1,000 files/s" if goal else "-",
        passed=n / seconds >= 1000 if goal else None,
    )


def _baseline(workdir: Path, label: str, sources: Sequence[Source], transfer: str) -> float:
    os.sync()  # no timed step pays for the writeback of an earlier one's files
    seconds = plain_loop(workdir / "baseline" / f"{label}-{transfer}", sources, transfer)
    shutil.rmtree(workdir / "baseline")
    say(
        f"{label:>5} {transfer:<10} plain loop                    {len(sources) / seconds:>9,.0f} files/s"
    )
    return seconds


def ingest_suite(
    label: str, workdir: Path, sources: Sequence[Source], *, goal: bool
) -> tuple[list[Result], Path]:
    """Ingest rates of ``sources`` (symlink, copy; both APIs) against the plain loop.

    Returns the table rows and the repository ingested by ``ingest_simulated`` with symlinks
    (kept for the read benchmarks; the caller removes it).
    """
    n, directory = len(sources), sources[0].path.parent
    rows, kept, bases = [], workdir, {}
    for transfer, variants in VARIANTS.items():
        base = bases[transfer] = _baseline(workdir, label, sources, transfer)
        for name, api, checksum in variants:
            root = new_repo(workdir, f"{label}-{transfer}-{len(rows)}", checksum=checksum)
            os.sync()
            if api == "ingest_simulated":
                seconds = ingest_from_headers(root, directory, transfer, n)
            else:
                seconds = ingest_known(root, sources, transfer)
            say(f"{label:>5} {transfer:<10} {name:<29} {n / seconds:>9,.0f} files/s")
            if kept == workdir and transfer == "symlink" and api == "ingest_simulated":
                kept = root
            else:
                shutil.rmtree(root)
            metric = f"ingest {n:,} {label} files, {name}, {transfer}"
            rows.append(_rate_row(metric, n, seconds, base, goal=goal and transfer == "symlink"))
    fsynced = _baseline(workdir, label, sources, "copy+fsync")
    metric = f"plain loop, {n:,} {label} files, copy+fsync"
    rows.append(_rate_row(metric, n, fsynced, bases["copy"]))
    return rows, kept


# -- reading ---------------------------------------------------------------------------------
def bytes_read() -> int:
    """Bytes this process has read through system calls so far (``rchar``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def lazy_open(root: Path, sources: Sequence[Source], calls: int) -> list[Result]:
    """First and median time of ``Butler.get("raw", data_id)``, and whether it read pixels."""
    ids = [s.data_id for s in sources]
    with Butler(root, collections=RUN, writeable=False) as butler:

        def get(i: int) -> Any:
            return butler.get("raw", ids[i % len(ids)])

        first, _ = timed(lambda: get(0))
        later = [timed(lambda i=i: get(i))[0] for i in range(1, calls)]
        before = bytes_read()
        dataset = get(calls)
        read = bytes_read() - before
    lazy = all(isinstance(v.data, da.Array) for v in dataset.data_vars.values())
    image_bytes = dataset.image.nbytes
    say(f"lazy open: first {first * 1e3:.1f} ms, median {median(later) * 1e3:.2f} ms; "
        f"{read / 1024:.0f} KiB read by one open; dask-backed variables: {lazy}")  # fmt: skip
    return [
        Result(metric=f"lazy open {dataset.image.shape}, median of {len(later)}",
               value=f"{median(later) * 1e3:.2f} ms", goal="< 20 ms",
               passed=median(later) < 0.020),
        Result(metric="lazy open, first call", value=f"{first * 1e3:.1f} ms"),
        Result(metric="lazy open reads no pixels",
               value=f"{read / 1024:.0f} KiB read, dask={lazy}",
               baseline=f"image {image_bytes / 2**20:.1f} MiB",
               goal="dask, < 10% of image", passed=lazy and read < image_bytes / 10),
    ]  # fmt: skip


def drop_caches() -> None:
    """Flush and drop the page cache (root only)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _native(array: np.ndarray) -> np.ndarray:
    return array.astype(array.dtype.newbyteorder("="))


#: Read parameters of a whole-image read without dask (xarray's lazy arrays).
NO_DASK = {"chunks": False}


def full_reads(root: Path, sources: Sequence[Source], rounds: int, *, cold: bool) -> list[Result]:
    """Throughput of ``get(...).image.values`` against ``fits.getdata``, in rotating order.

    ``fits.getdata`` returns the big-endian pixels as stored; the Butler returns native byte
    order, so ``fits.getdata(...).astype(native)`` is timed too, as a second reference.
    """
    with Butler(root, collections=RUN, writeable=False) as butler:
        readers: dict[str, Callable[[Source], np.ndarray]] = {
            "butler": lambda s: butler.get("raw", s.data_id).image.values,
            "nodask": lambda s: butler.get("raw", s.data_id, parameters=NO_DASK).image.values,
            "astropy": lambda s: fits.getdata(s.path, "IMAGE", memmap=False),
            "native": lambda s: _native(fits.getdata(s.path, "IMAGE", memmap=False)),
        }
        first = sources[0]
        if not np.array_equal(readers["butler"](first), readers["astropy"](first)):
            raise RuntimeError(f"Butler and astropy read different pixels from {first.path}")
        spent = dict.fromkeys(readers, 0.0)
        names, count = list(readers), 0
        for r in range(rounds):
            for i, source in enumerate(sources):
                k = (i + r) % len(names)
                for name in names[k:] + names[:k]:
                    if cold:
                        drop_caches()
                    seconds, array = timed(lambda name=name, s=source: readers[name](s))
                    spent[name] += seconds
                count += 1
    mb = count * array.nbytes / 1e6
    rates = {k: mb / v for k, v in spent.items()}
    cache = "cold" if cold else "warm"
    say(f"full read ({cache} cache): get().image.values {rates['butler']:,.0f} MB/s, "
        f"with chunks=False {rates['nodask']:,.0f} MB/s, "
        f"fits.getdata {rates['astropy']:,.0f} MB/s, "
        f"fits.getdata + native order {rates['native']:,.0f} MB/s")  # fmt: skip
    ratio = spent["butler"] / spent["astropy"]
    native = spent["butler"] / spent["native"]
    return [
        Result(metric=f"full read of {count} images ({cache}) vs fits.getdata",
               value=f"{rates['butler']:,.0f} MB/s", baseline=f"{rates['astropy']:,.0f} MB/s",
               ratio=f"{ratio:.2f}", goal="ratio <= 1.2", passed=ratio <= 1.2),
        Result(metric="  same vs fits.getdata + native byte order",
               value=f"{rates['butler']:,.0f} MB/s", baseline=f"{rates['native']:,.0f} MB/s",
               ratio=f"{native:.2f}"),
        Result(metric="  get(..., parameters={'chunks': False}) (no dask) vs fits.getdata",
               value=f"{rates['nodask']:,.0f} MB/s", baseline=f"{rates['astropy']:,.0f} MB/s",
               ratio=f"{spent['nodask'] / spent['astropy']:.2f}"),
    ]  # fmt: skip


# -- main ------------------------------------------------------------------------------------
def run(workdir: Path, plan: Plan, *, cold: bool) -> list[Result]:
    """Every measurement, in order; returns the table rows."""
    seconds, small = timed(lambda: make_small_sources(workdir, plan.small_exposures))
    say(f"setup: {len(small):,} small files in {seconds:.1f} s")
    rows, kept = ingest_suite("small", workdir, small, goal=True)
    shutil.rmtree(kept)
    shutil.rmtree(workdir / "small")
    seconds, big = timed(lambda: make_big_sources(workdir, plan))
    say(f"setup: {len(big)} full-size files in {seconds:.1f} s")
    big_rows, kept = ingest_suite("full", workdir, big, goal=False)
    rows += big_rows
    rows += lazy_open(kept, big, plan.open_calls)
    rows += full_reads(kept, big, plan.read_rounds, cold=cold)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the benchmark in a temporary directory, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temp dir")
    parser.add_argument("--cold", action="store_true", help="drop the page cache before reads")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="spherex-io-bench-", dir=args.workdir))
    say(f"working in {workdir} ({'quick' if args.quick else 'full'} run)")
    try:
        seconds, rows = timed(lambda: run(workdir, plan, cold=args.cold))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    rows.append(Result(metric="peak RSS of this process", value=f"{peak_rss_mb():,.0f} MiB"))
    print_table(
        rows, title=f"benchmarks/io.py ({seconds:.0f} s; ratio = framework time / baseline time)"
    )


if __name__ == "__main__":
    main()
