# SPDX-License-Identifier: BSD-3-Clause
"""Running a quantum graph on a ``distributed`` cluster.

Lowering
    The whole graph becomes one Dask graph, submitted in one call (``client.get(..., sync=False)``,
    as a one-layer ``HighLevelGraph``, which dask does not tokenize):
    one Dask task per quantum, ``execute_quantum(job, datastore, task, *upstream_results)``,
    whose arguments name the keys of the quanta making its inputs; the datastore and each task
    object are single graph nodes, shipped once per worker. Measured on 2 local workers with
    2,000 trivial quanta: submitting the graph takes 0.06 s (5 s when handed over as a plain
    dict, which dask names by tokenizing every job).
    A quantum is one Dask task rather than a chunked sub-graph: its lazy inputs are computed on
    the worker with the synchronous scheduler, so pixels never travel through the scheduler
    and the framework overhead stays per quantum (see ``benchmarks/pipeline``).

Faults
    A task raising makes its quantum ``failed`` (the worker returns the traceback, and removes
    what it wrote); its downstream quanta return ``skipped`` without running; the others go on.
    A worker that dies is handled by ``distributed``: its tasks are rerun elsewhere (up to
    ``distributed.scheduler.allowed-failures`` times; after that the quantum is ``failed``).

Registration
    Workers never open the registry. As results arrive (``as_completed``), the client
    registers the outputs of succeeded quanta and one provenance record per quantum, in
    batches, one transaction each. Files are written atomically before their results are
    returned, so nothing half-written is ever registered; if a batch cannot be registered its
    files are removed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..types import QuantumRecord
from ._init_outputs import check_init_outputs, write_init_outputs
from ._prepare import (
    check_output_storage_classes,
    check_outputs,
    make_jobs,
    register_output_types,
)
from ._summary import RunSummary, TaskRunSummary
from ._worker import QuantumJob, QuantumResult, execute_quantum, format_error, unimportable

if TYPE_CHECKING:
    import distributed

    from ..butler import Butler
    from ..io import FileDatastore
    from ..registry import Registry
    from ._graph import Quantum, QuantumGraph

__all__ = ["check_graph", "lower_graph", "run_quantum_graph"]

logger = logging.getLogger(__name__)

#: Register at least every this many seconds while results arrive.
FLUSH_INTERVAL = 2.0


def lower_graph(
    graph: QuantumGraph,
    jobs: Mapping[uuid.UUID, QuantumJob],
    datastore: FileDatastore,
    *,
    token: str | None = None,
) -> tuple[dict[str, Any], dict[uuid.UUID, str]]:
    """The Dask graph of a quantum graph, and the key of each quantum.

    Keys are ``<task label>-<quantum id>-<token>`` (the dashboard groups them by task
    label); ``token`` keeps two executions of one graph apart on a shared scheduler.
    """
    token = token or uuid.uuid4().hex[:8]
    store_key = f"datastore-{token}"
    dsk: dict[str, Any] = {store_key: datastore}
    task_keys = {}
    pipeline = graph.pipeline
    for label in {q.task_label for q in graph}:
        task_keys[label] = f"task-{label}-{token}"
        dsk[task_keys[label]] = pipeline.make_task(label)
    keys = {q.id: f"{q.task_label}-{q.id}-{token}" for q in graph}
    for q in graph:
        upstream = [keys[d] for d in sorted(graph.dependencies(q.id))]
        dsk[keys[q.id]] = (
            execute_quantum,
            jobs[q.id],
            store_key,
            task_keys[q.task_label],
            *upstream,
        )
    return dsk, keys


def check_graph(
    graph: QuantumGraph,
    butler: Butler,
    *,
    register_dataset_types: bool = False,
    output_format: str | None = None,
) -> None:
    """Check that ``graph`` can run in ``butler``'s repository (before any collection is made).

    Output dataset types must be registered (``register_dataset_types`` registers them),
    file templates must give them unique paths, the output format must exist, no output
    may already exist in the output run, and an existing output run must have been made with
    the graph's task configs (its ``<label>_config`` datasets).

    Raises
    ------
    MissingDatasetTypeError, DatasetTypeConflictError, TemplateError, UnknownFormatterError,
    DatasetConflictError, PipelineError
    """
    if output_format is not None:
        butler.datastore.formatters[output_format]  # an unknown name raises here
    check_output_storage_classes(graph, butler.datastore)
    register_output_types(graph, butler.registry, register=register_dataset_types)
    check_outputs(graph, butler.registry, butler.datastore)
    check_init_outputs(graph, butler)


def run_quantum_graph(
    graph: QuantumGraph,
    butler: Butler,
    client: distributed.Client,
    *,
    progress: bool = True,
    register_batch_size: int = 100,
    output_format: str | None = None,
    register_dataset_types: bool = False,
) -> RunSummary:
    """Run every quantum of ``graph`` on ``client``'s cluster and register what they make.

    Parameters
    ----------
    graph
        The quanta to run; outputs go to ``graph.output_run`` (created if needed).
    butler
        The repository (its registry is used by this process only).
    client
        A connected ``distributed.Client``.
    progress
        Show a progress bar over quanta (terminal or notebook).
    register_batch_size
        Register after this many quanta have finished (or every few seconds).
    output_format
        Formatter for the outputs it can write (``"zarr"``, ``"fits"``); default per
        storage class (zarr for images).
    register_dataset_types
        Register output dataset types that are not registered yet (otherwise an error).

    Returns
    -------
    RunSummary
        Counts per task, the failed and skipped quanta, outputs, bytes and wall time.

    Raises
    ------
    MissingDatasetTypeError
        If an output dataset type is unregistered and ``register_dataset_types`` is false.
    DatasetConflictError
        If outputs of the graph already exist in the output run.
    DatasetNotFoundError
        If an input is registered without a stored file.
    """
    started = time.perf_counter()
    registry, datastore = butler.registry, butler.datastore
    check_graph(
        graph, butler, register_dataset_types=register_dataset_types, output_format=output_format
    )
    if len(graph):
        check_workers_import(client, graph)
    registry.register_run(graph.output_run)
    dashboard = _dashboard(client)
    recorder = _Recorder(graph, registry, datastore, batch_size=register_batch_size)
    if len(graph):
        jobs = make_jobs(graph, registry, datastore, output_format=output_format)
        dsk, keys = lower_graph(graph, jobs, datastore)
    write_init_outputs(graph, butler)  # once nothing is left to check
    if len(graph):
        _run(client, dsk, keys, graph, recorder, progress=progress)
    summary = recorder.summary(time.perf_counter() - started, dashboard)
    logger.info("%s", summary.format().splitlines()[0])
    return summary


def check_workers_import(client: distributed.Client, graph: QuantumGraph) -> None:
    """Check that the cluster's workers can import the graph's task modules.

    A worker that cannot unpickle a task logs the error and drops it, and the run would wait
    for ever. Workers that join later (an adaptive or dask-jobqueue cluster) are not checked.

    Raises
    ------
    PipelineError
        Naming the workers and the modules they cannot import.
    """
    from ..errors import PipelineError

    modules = set()
    for label in {q.task_label for q in graph}:
        task = graph.pipeline.make_task(label)
        modules.update({type(task).__module__, type(task.config).__module__})
    answers = client.run(unimportable, sorted(modules))
    failing = {worker: errors for worker, errors in answers.items() if errors}
    if failing:
        worker, errors = next(iter(failing.items()))
        raise PipelineError(
            f"{len(failing)} of the cluster's {len(answers)} worker(s) cannot import the "
            f"pipeline's task modules (worker {worker}: {'; '.join(errors)}): {_IMPORT_HINT}. "
            "Nothing was run."
        )


def _dashboard(client: distributed.Client) -> str | None:
    from ._cluster import dashboard_link

    link = dashboard_link(client)
    if link:
        logger.info("Dask dashboard: %s", link)
    return link


def _run(
    client: distributed.Client,
    dsk: dict[str, Any],
    keys: Mapping[uuid.UUID, str],
    graph: QuantumGraph,
    recorder: _Recorder,
    *,
    progress: bool,
) -> None:
    from dask.highlevelgraph import HighLevelGraph
    from distributed import as_completed

    from .._progress import progress_bar as tqdm

    by_key = {key: qid for qid, key in keys.items()}
    # Handed over as a plain dict, the graph would be wrapped in an expression named by a
    # deterministic token of every task's arguments: dask would walk every job (refs, data
    # IDs, locations), about 1.3 s for 1,000 quanta and 9 s for 5,000, before submitting
    # anything. A high-level graph is named by a random token instead; the keys are ours.
    layer: dict[Any, Any] = dsk  # dask's Key mapping is invariant in its key type
    hlg = HighLevelGraph.from_collections(f"quanta-{uuid.uuid4().hex}", layer, dependencies=())
    futures = client.get(hlg, list(keys.values()), sync=False)
    by_qid = {by_key[f.key]: f for f in futures}
    bar = tqdm(total=len(futures), desc="quanta", unit="quantum", disable=not progress)
    try:
        for future, result in as_completed(
            futures, loop=client.loop, with_results=True, raise_errors=False
        ):
            qid = by_key[future.key]
            if not isinstance(result, QuantumResult):
                result = _dask_failure(graph, graph[qid], _exception(result), by_qid)
            recorder.add(graph[qid], result)
            bar.update()
            if result.status != "succeeded":
                bar.set_postfix(failed=recorder.failed, skipped=recorder.skipped, refresh=False)
        recorder.flush()
    except BaseException:
        client.cancel(futures)
        recorder.flush_after_interrupt()
        raise
    finally:
        bar.close()


def _exception(result: object) -> BaseException:
    """The exception of a future that ``as_completed(raise_errors=False)`` yields without a
    result: a ``(type, value, traceback)`` tuple for an errored one (a ``KilledWorker``, a
    task graph the scheduler could not deserialize), the ``CancelledError`` of a cancelled one.
    """
    if isinstance(result, BaseException):
        return result
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[1], BaseException):
        return result[1].with_traceback(result[2])
    return RuntimeError(f"Dask returned {result!r} instead of the quantum's result.")


def _dask_failure(
    graph: QuantumGraph,
    quantum: Quantum,
    error: BaseException,
    futures: Mapping[uuid.UUID, distributed.Future],
) -> QuantumResult:
    """The result of a quantum whose Dask task errored (a worker died too often, a cancel)."""
    upstream = [d for d in graph.dependencies(quantum.id) if futures[d].status == "error"]
    common: dict[str, Any] = {
        "quantum_id": quantum.id,
        "task_label": quantum.task_label,
        "data_id": quantum.data_id,
    }
    if upstream:
        names = "; ".join(f"{graph[d].task_label} {graph[d].data_id!r} failed" for d in upstream)
        return QuantumResult(**common, status="skipped", error=f"upstream quantum {names}")
    text = format_error(error)
    if isinstance(error, ImportError) or "deserializ" in str(error):
        head, sep, rest = text.partition("\n")
        text = f"{head} ({_IMPORT_HINT}){sep}{rest}"
    return QuantumResult(**common, status="failed", error=text)


#: Added to an ImportError of a Dask task, or to the scheduler's "Error during
#: deserialization of the task graph": the usual cause, and what to do.
_IMPORT_HINT = (
    "the task's module must be importable on the Dask workers and scheduler: install it in "
    "their environment or put its directory on their PYTHONPATH"
)


class _Recorder:
    """Collects results and registers them in batches (outputs + provenance, one transaction)."""

    def __init__(
        self, graph: QuantumGraph, registry: Registry, datastore: FileDatastore, *, batch_size: int
    ) -> None:
        self.graph, self.registry, self.datastore = graph, registry, datastore
        self.batch_size = max(1, batch_size)
        self.pending: list[tuple[Quantum, QuantumResult]] = []
        self.last_flush = time.monotonic()
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.failures: list[QuantumRecord] = []
        self.skips: list[QuantumRecord] = []
        self.failed = self.skipped = 0

    def add(self, quantum: Quantum, result: QuantumResult) -> None:
        self.pending.append((quantum, result))
        self.failed += result.status == "failed"
        self.skipped += result.status == "skipped"
        if (
            len(self.pending) >= self.batch_size
            or time.monotonic() - self.last_flush > FLUSH_INTERVAL
        ):
            self.flush()

    def record(self, quantum: Quantum, result: QuantumResult) -> QuantumRecord:
        ok = result.status == "succeeded"
        return QuantumRecord(
            id=quantum.id,
            run=self.graph.output_run,
            task_label=quantum.task_label,
            data_id=quantum.data_id,
            status=result.status,
            start=result.start,
            end=result.end,
            worker=result.worker,
            error=result.error,
            inputs=tuple(r.id for r in (*quantum.input_refs(), *quantum.prerequisite_refs())),
            outputs=tuple(r.id for r in quantum.output_refs()) if ok else (),
        )

    def flush(self) -> None:
        """Register the pending results; on failure remove their files and re-raise."""
        batch, self.pending = self.pending, []
        self.last_flush = time.monotonic()
        if not batch:
            return
        done = [(q, r) for q, r in batch if r.status == "succeeded"]
        refs = [ref for q, _ in done for ref in q.output_refs()]
        locations = [loc for _, r in done for loc in r.locations]
        records = [self.record(q, r) for q, r in batch]
        try:
            with self.registry.transaction():
                if refs:
                    self.registry.import_datasets(refs)
                    self.registry.insert_locations(locations)
                self.registry.insert_quanta(records)
        except BaseException:
            self.datastore.remove(locations)
            raise
        self._count(batch, records)
        logger.debug("Registered %d quanta (%d outputs).", len(batch), len(refs))

    def flush_after_interrupt(self) -> None:
        """Register what finished before an interruption (best effort; never masks the error)."""
        try:
            self.flush()
        except Exception:
            logger.exception("Could not register the quanta finished before the interruption.")

    def _count(
        self, batch: list[tuple[Quantum, QuantumResult]], records: list[QuantumRecord]
    ) -> None:
        for (quantum, result), record in zip(batch, records, strict=True):
            counts = self.counts[quantum.task_label]
            counts[result.status] += 1
            if result.status == "succeeded":
                counts["outputs"] += len(record.outputs)
                counts["bytes"] += result.bytes_written
            elif result.status == "failed":
                self.failures.append(record)
            else:
                self.skips.append(record)

    def summary(self, wall_time: float, dashboard: str | None) -> RunSummary:
        labels = [lbl for lbl in self.graph.task_labels if lbl in self.counts]
        tasks = tuple(
            TaskRunSummary(
                task=label,
                succeeded=self.counts[label]["succeeded"],
                failed=self.counts[label]["failed"],
                skipped=self.counts[label]["skipped"],
                outputs=self.counts[label]["outputs"],
                bytes=self.counts[label]["bytes"],
            )
            for label in labels
        )
        return RunSummary(
            run=self.graph.output_run,
            tasks=tasks,
            failures=tuple(self.failures),
            skipped=tuple(self.skips),
            wall_time=wall_time,
            not_in_graph=len(self.graph.skipped),
            already_done=sum(s.kind == "outputs_exist" for s in self.graph.skipped),
            dashboard=dashboard,
        )
