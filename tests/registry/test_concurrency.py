# SPDX-License-Identifier: BSD-3-Clause
"""Several processes writing to one repository at once, on both backends."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import pytest

from spherex_dask.registry import Registry
from spherex_dask.testing.registry import concurrent_insert_worker, populate

PROCESSES = 4
PER_PROCESS = 5000


def run_concurrently(registry: Registry) -> None:
    """Start the writer processes at once and check every dataset arrived."""
    populate(registry, exposures=PER_PROCESS // 6 + 1)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    errors = ctx.Queue()
    runs = [f"concurrent/run{i}" for i in range(PROCESSES)]
    procs = [
        ctx.Process(
            target=concurrent_insert_worker,
            args=(registry.url, run, PER_PROCESS, 250, barrier, errors),
        )
        for run in runs
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    assert [p.exitcode for p in procs] == [0] * PROCESSES, "\n".join(messages)
    for run in runs:
        assert sum(1 for _ in registry.query_datasets("raw", collections=run)) == PER_PROCESS
    assert sorted(registry.query_collections("concurrent/*")) == runs


def test_concurrent_writers_sqlite(make_sqlite_registry: Callable[..., Registry]) -> None:
    """Four processes insert 5,000 datasets each into one SQLite repository without losses."""
    run_concurrently(make_sqlite_registry())


@pytest.mark.postgres
def test_concurrent_writers_postgresql(make_pg_registry: Callable[..., Registry]) -> None:
    """Four processes insert 5,000 datasets each into one PostgreSQL repository without losses."""
    run_concurrently(make_pg_registry())
