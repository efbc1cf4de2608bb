# SPDX-License-Identifier: BSD-3-Clause
"""Registry operations at mission scale, with a plain-DBAPI baseline measured in the same run.

Usage::

    python benchmarks/registry.py [--n 1000000] [--backend sqlite|postgresql|both]

For each backend it prints:

- the bulk insert rate of N ``raw`` datasets through ``Registry.insert_datasets`` (goal on
  SQLite: >= 50,000/s) next to a baseline: the same rows inserted into the same schema with
  the bare driver (``sqlite3`` / ``psycopg`` ``executemany``), and their ratio;
- the same rate per CPU second of this process (steadier on a shared machine), and the rate
  of ``Registry.import_datasets`` for refs made elsewhere (up to 200,000);
- the median ``find_dataset`` latency at N datasets (goal < 1 ms);
- ``query_datasets`` returning 10,000 of N with ``detector = 3 AND exposure >= lo AND exposure <= hi``
  (goal < 100 ms);
- the dimension-record sync rate, for new records and for re-syncing identical ones.

PostgreSQL runs in a throw-away schema of ``--pg-url`` (default: env
``SPHEREX_DASK_TEST_PG_URL`` or ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from spherex_dask.registry import Registry
from spherex_dask.types import DataId, DatasetRef, DatasetType, Timespan, parse_time

INSTRUMENT = "SPHEREx"
DETECTORS = range(1, 7)
T0 = parse_time("2025-05-01")
RAW = DatasetType(
    name="raw", dimensions=("instrument", "exposure", "detector"), storage_class="SpectralImage"
)
DEFAULT_PG_URL = os.environ.get(
    "SPHEREX_DASK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def exposure_records(count: int) -> Iterator[dict[str, Any]]:
    """Exposure records 1..count, 600 a day, in planning periods of 2,000."""
    for i in range(1, count + 1):
        begin = T0 + (i - 1) * (T0 - parse_time("2025-04-30")) / 600
        yield {
            "instrument": INSTRUMENT,
            "id": i,
            "obs_id": f"P{i // 2000:04d}_{i:07d}_1",
            "planning_period": f"P{i // 2000:04d}",
            "large_slew": i,
            "small_slew": 1,
            "exposure_time": 112.0,
            "ra": (i * 0.1) % 360,
            "dec": -5.0,
            "roll": 0.0,
            "survey": "wide",
            "timespan": Timespan(begin, begin + (T0 - parse_time("2025-04-30")) / 1000),
        }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive slices of ``items``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def setup_dimensions(registry: Registry, exposures: int) -> dict[str, float]:
    """Insert instrument, detectors and planning periods; time the exposure sync."""
    registry.insert_dimension_records("instrument", [{"name": INSTRUMENT, "detector_max": 6}])
    registry.insert_dimension_records(
        "detector", [{"instrument": INSTRUMENT, "id": d, "band": d} for d in DETECTORS]
    )
    periods = sorted({r["planning_period"] for r in exposure_records(exposures)})
    registry.insert_dimension_records(
        "planning_period", [{"instrument": INSTRUMENT, "name": p} for p in periods]
    )
    records = list(exposure_records(exposures))
    new, _ = timed(
        lambda: [registry.sync_dimension_records("exposure", b) for b in batches(records, 20_000)]
    )
    again, _ = timed(
        lambda: [registry.sync_dimension_records("exposure", b) for b in batches(records, 20_000)]
    )
    return {"sync_new": exposures / new, "sync_existing": exposures / again}


def raw_data_ids(start: int, stop: int) -> list[dict[str, Any]]:
    """Data IDs of raw datasets number ``start`` to ``stop - 1``."""
    return [
        {
            "instrument": INSTRUMENT,
            "exposure": i // len(DETECTORS) + 1,
            "detector": i % len(DETECTORS) + 1,
        }
        for i in range(start, stop)
    ]


def insert_datasets(registry: Registry, n: int, batch: int) -> tuple[float, float]:
    """Insert n raw datasets in calls of ``batch``; return datasets per wall and CPU second.

    The CPU rate (this process only, so SQLite's work but not PostgreSQL's) is steadier than
    the wall-clock rate on a machine shared with other jobs.
    """
    registry.register_dataset_type(RAW)
    registry.register_run("bench/raw")
    total = cpu = 0.0
    for start in range(0, n, batch):
        ids = raw_data_ids(start, min(start + batch, n))
        cpu_start = time.process_time()
        seconds, _ = timed(lambda ids=ids: registry.insert_datasets("raw", ids, "bench/raw"))
        cpu += time.process_time() - cpu_start
        total += seconds
    return n / total, n / cpu


def import_datasets(registry: Registry, n: int, batch: int) -> float:
    """Import n refs made elsewhere (deterministic ids, as workers make them); datasets/s."""
    registry.register_run("bench/imported")
    dataset_type = registry.get_dataset_type("raw")
    total = 0.0
    for start in range(0, n, batch):
        refs = [
            DatasetRef.make(dataset_type, DataId(d), "bench/imported")
            for d in raw_data_ids(start, min(start + batch, n))
        ]
        seconds, _ = timed(lambda refs=refs: registry.import_datasets(refs))
        total += seconds
    return n / total


def baseline_rows(
    n: int, uuid_to_db: Callable[[uuid.UUID], Any]
) -> Iterator[list[tuple[Any, ...]]]:
    """The same dataset rows as Registry.insert_datasets writes, in the same batches."""
    rows = []
    for i in range(n):
        exposure, detector = i // len(DETECTORS) + 1, i % len(DETECTORS) + 1
        rows.append(
            (
                uuid_to_db(uuid.uuid4()),
                1,
                1,
                detector,
                exposure,
                f"P{exposure // 2000:04d}",
                INSTRUMENT,
            )
        )
        if len(rows) == 120_000:
            yield rows
            rows = []
    if rows:
        yield rows


def baseline_insert(registry: Registry, n: int) -> float:
    """Rows/s of a bare-driver executemany into an identical, empty dataset table."""
    columns = "id, dataset_type_id, run_id, detector, exposure, planning_period, instrument"
    engine = registry._db.engine
    ddl = str(CreateTable(registry._db.tables.dataset).compile(engine))
    with engine.begin() as conn:
        conn.exec_driver_sql(re.sub(r"CREATE TABLE \S*dataset\b", "CREATE TABLE baseline", ddl))
        conn.exec_driver_sql(
            "CREATE UNIQUE INDEX baseline_unique ON baseline "
            "(run_id, dataset_type_id, detector, exposure, planning_period, instrument)"
        )
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        marks = ", ".join(["?" if registry._db.is_sqlite else "%s"] * 7)
        total = 0.0
        to_db = (lambda u: u.hex) if registry._db.is_sqlite else (lambda u: u)
        for rows in baseline_rows(n, to_db):
            start = time.perf_counter()
            cursor = dbapi.cursor()
            if registry._db.is_sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(f"INSERT INTO baseline ({columns}) VALUES ({marks})", rows)
            dbapi.commit()
            total += time.perf_counter() - start
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE baseline")
    return n / total


def find_latency(registry: Registry, n: int, samples: int = 2000) -> tuple[float, float]:
    """Median and 95th-percentile find_dataset latency in ms."""
    exposures = n // len(DETECTORS)
    rng = random.Random(1)
    times = []
    for _ in range(samples):
        data_id = {
            "instrument": INSTRUMENT,
            "exposure": rng.randint(1, exposures),
            "detector": rng.choice(DETECTORS),
        }
        seconds, ref = timed(
            lambda d=data_id: registry.find_dataset("raw", d, collections="bench/raw")
        )
        assert ref is not None
        times.append(seconds * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times))]


def query_time(
    registry: Registry, n: int, wanted: int = 10_000, repeats: int = 5
) -> tuple[float, int]:
    """Median ms of a query_datasets call returning ``wanted`` rows (detector + exposure range)."""
    lo = max(1, n // len(DETECTORS) // 2 - wanted // 2)
    times, count = [], 0
    for _ in range(repeats):
        seconds, count = timed(
            lambda: sum(
                1
                for _ in registry.query_datasets(
                    "raw",
                    collections="bench/raw",
                    where="detector = 3 AND exposure >= lo AND exposure <= hi",
                    bind={"lo": lo, "hi": lo + wanted - 1},
                )
            )
        )
        times.append(seconds * 1e3)
    return statistics.median(times), count


@contextmanager
def backend(name: str, pg_url: str) -> Iterator[str]:
    """A registry URL for a fresh database of ``name``, removed afterwards."""
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'registry.sqlite3'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{pg_url}?schema={schema}"
    finally:
        engine = sa.create_engine(pg_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


def run(name: str, n: int, batch: int, pg_url: str) -> None:
    """Run every measurement on one backend and print the results."""
    with backend(name, pg_url) as url, Registry.create(url) as registry:
        exposures = -(-n // len(DETECTORS))
        sync = setup_dimensions(registry, exposures)
        rate, cpu_rate = insert_datasets(registry, n, batch)
        imported = import_datasets(registry, min(n, 200_000), batch)
        if not registry._db.is_sqlite:
            with registry._db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        base = baseline_insert(registry, n)
        median, p95 = find_latency(registry, n)
        query_ms, count = query_time(registry, n)
        print(f"\n== {name}: {n:,} datasets ({exposures:,} exposures x 6 detectors) ==")
        print(f"bulk insert          {rate:>12,.0f} datasets/s   (goal >= 50,000/s on SQLite)")
        print(f"  per CPU second       {cpu_rate:>10,.0f} datasets/s   (this process only)")
        print(f"import_datasets      {imported:>12,.0f} datasets/s   ({min(n, 200_000):,} refs)")
        print(
            f"  bare-driver baseline {base:>10,.0f} rows/s       ratio registry/baseline = {rate / base:.2f}"
        )
        print(f"find_dataset         {median:>12.3f} ms median    p95 {p95:.3f} ms (goal < 1 ms)")
        print(f"query_datasets       {query_ms:>12.1f} ms for {count:,} rows (goal < 100 ms)")
        print(f"sync new records     {sync['sync_new']:>12,.0f} records/s")
        print(f"sync existing        {sync['sync_existing']:>12,.0f} records/s (verify only)")


def main() -> None:
    """Parse the command line and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of datasets")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--batch", type=int, default=120_000, help="datasets per insert_datasets call"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for name in names:
        run(name, args.n, args.batch, args.pg_url)


if __name__ == "__main__":
    main()
