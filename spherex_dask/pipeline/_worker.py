# SPDX-License-Identifier: BSD-3-Clause
"""What runs on a Dask worker for one quantum: read inputs, call the task, write outputs.

A worker never opens the SQL registry. It gets a :class:`QuantumJob` (the refs, the locations
of the inputs that existed before the run, the expanded output refs), the datastore and the
task, plus the :class:`QuantumResult` of each upstream quantum (which carry the locations of
the outputs it reads). It returns a small :class:`QuantumResult`; the client registers what
was written. Everything here is plain Python, testable without a cluster.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import DatasetNotFoundError, DatastoreError
from ..types import DataId, DatasetLocation, DatasetRef

if TYPE_CHECKING:
    from ..io import FileDatastore
    from ._task import PipelineTask

__all__ = ["QuantumJob", "QuantumResult", "execute_quantum", "format_error", "unimportable"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantumJob:
    """Everything a worker needs to run one quantum (small, picklable, no registry).

    ``inputs`` and ``prerequisites`` map a connection attribute to its refs (``multiple``
    names the fan-in attributes, which ``run`` receives as lists); ``outputs`` maps an output
    attribute to its ref, its data ID expanded with records for the file template;
    ``locations`` holds the stored files of the inputs made before this run.
    """

    quantum_id: uuid.UUID
    task_label: str
    data_id: DataId
    inputs: Mapping[str, tuple[DatasetRef, ...]]
    prerequisites: Mapping[str, tuple[DatasetRef, ...]]
    multiple: frozenset[str]
    outputs: Mapping[str, DatasetRef]
    locations: Mapping[uuid.UUID, tuple[DatasetLocation, ...]] = field(default_factory=dict)
    output_format: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantumResult:
    """How one quantum ended: ``succeeded`` (with its outputs' locations), ``failed`` (with the
    error: first line the exception, then the traceback) or ``skipped`` (an upstream quantum
    did not succeed; ``error`` says which)."""

    quantum_id: uuid.UUID
    task_label: str
    data_id: DataId
    status: str
    locations: tuple[DatasetLocation, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    worker: str = ""
    error: str = ""

    @property
    def bytes_written(self) -> int:
        """Total size of the files written (unknown sizes count as 0)."""
        return sum(max(loc.size, 0) for loc in self.locations)


def format_error(err: BaseException) -> str:
    """``"Type: message"`` on the first line, a blank line, then the full traceback.

    Examples
    --------
    >>> format_error(ValueError("boom\\nsecond line")).splitlines()[0]
    'ValueError: boom'
    """
    head = traceback.format_exception_only(err)[0].strip().splitlines()[0]
    return head + "\n\n" + "".join(traceback.format_exception(err)).rstrip()


def unimportable(modules: Sequence[str]) -> list[str]:
    """``"module: error"`` for each of ``modules`` this process cannot import (run on the
    workers before a graph is submitted: a worker that cannot unpickle a task would never
    run it, and the run would wait for ever)."""
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # any import-time error counts
            failed.append(f"{name}: {type(err).__name__}: {err}")
    return failed


def worker_address() -> str:
    """The address of the Dask worker running this code, else ``host:pid``."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def execute_quantum(
    job: QuantumJob,
    datastore: FileDatastore,
    task: PipelineTask,
    *upstream: QuantumResult,
) -> QuantumResult:
    """Run one quantum; never raises for a task or I/O error (the result says ``failed``).

    Lazy inputs are computed with Dask's synchronous scheduler inside this call (the quantum
    is one Dask task: no nested graph is sent back to the cluster). Outputs are written
    atomically; if anything fails, the outputs already written are removed.

    Parameters
    ----------
    job
        The quantum to run.
    datastore
        Where inputs are read from and outputs written to.
    task
        The task instance (configured) of the quantum's label.
    *upstream
        Results of the quanta that make this quantum's inputs.
    """
    start = datetime.now(UTC)
    common: dict[str, Any] = {
        "quantum_id": job.quantum_id,
        "task_label": job.task_label,
        "data_id": job.data_id,
    }
    blocked = [u for u in upstream if u.status != "succeeded"]
    if blocked:
        reasons = "; ".join(f"{u.task_label} {u.data_id!r} {u.status}" for u in blocked)
        return QuantumResult(
            **common, status="skipped", start=start, end=start, error=f"upstream quantum {reasons}"
        )
    locations: dict[uuid.UUID, list[DatasetLocation]] = {
        k: list(v) for k, v in job.locations.items()
    }
    for result in upstream:
        for loc in result.locations:
            locations.setdefault(loc.dataset_id, []).append(loc)
    written: list[DatasetLocation] = []
    try:
        import dask

        with dask.config.set(scheduler="synchronous"):
            inputs = read_inputs(job, datastore, locations)
            outputs = task.run_quantum(inputs, data_id=job.data_id)
            for attr, ref in job.outputs.items():
                written.append(put_output(datastore, outputs[attr], ref, job.output_format))
    except Exception as err:
        _remove_quietly(datastore, written)
        return QuantumResult(
            **common,
            status="failed",
            start=start,
            end=datetime.now(UTC),
            worker=worker_address(),
            error=format_error(err),
        )
    return QuantumResult(
        **common,
        status="succeeded",
        locations=tuple(written),
        start=start,
        end=datetime.now(UTC),
        worker=worker_address(),
    )


def read_inputs(
    job: QuantumJob,
    datastore: FileDatastore,
    locations: Mapping[uuid.UUID, Sequence[DatasetLocation]],
) -> dict[str, Any]:
    """The objects ``run`` receives: lazy datasets keyed by connection attribute.

    Raises
    ------
    DatasetNotFoundError
        If an input has no known location (it was neither stored before nor written upstream).
    """
    result: dict[str, Any] = {}
    for attr, refs in (*job.inputs.items(), *job.prerequisites.items()):
        objs = []
        for ref in refs:
            found = locations.get(ref.id)
            if not found:
                raise DatasetNotFoundError(
                    f"Input {attr!r} of task {job.task_label!r} on {job.data_id!r}: dataset "
                    f"{ref.dataset_type.name} {ref.data_id!r} ({ref.id}) has no stored file."
                )
            objs.append(datastore.get(ref, found))
        result[attr] = objs if attr in job.multiple else objs[0]
    return result


def put_output(
    datastore: FileDatastore, obj: Any, ref: DatasetRef, output_format: str | None
) -> DatasetLocation:
    """Write one output; a file left at its path by an interrupted attempt is replaced.

    The client checks before the run that no output of the graph is registered in the output
    RUN, so a file already at an output's path was written by an attempt that never got
    registered (a killed worker, an interrupted run).
    """
    formatter = _formatter_for(datastore, ref, output_format)
    try:
        return datastore.put(obj, ref, formatter=formatter)
    except DatastoreError as err:
        orphan = _orphan_path(datastore, err)
        if orphan is None:
            raise
    logger.warning("Replacing %s, left unregistered by an interrupted attempt.", orphan)
    datastore.remove(DatasetLocation(dataset_id=ref.id, path=orphan, formatter=formatter or ""))
    return datastore.put(obj, ref, formatter=formatter)


def _formatter_for(
    datastore: FileDatastore, ref: DatasetRef, output_format: str | None
) -> str | None:
    """``output_format`` if it can write this dataset's storage class, else the default."""
    if output_format is None:
        return None
    formatter = datastore.formatters[output_format]
    return output_format if ref.dataset_type.storage_class in formatter.storage_classes else None


def _orphan_path(datastore: FileDatastore, err: DatastoreError) -> str | None:
    """The root-relative path of the existing file ``put`` refused to overwrite, if that was it."""
    cause = err.__cause__
    if not isinstance(cause, FileExistsError) or not cause.args:
        return None
    final = str(cause.args[0])
    prefix = datastore.root.rstrip("/") + "/"
    return final[len(prefix) :] if final.startswith(prefix) else None


def _remove_quietly(datastore: FileDatastore, locations: Sequence[DatasetLocation]) -> None:
    try:
        datastore.remove(locations)
    except Exception:
        logger.exception("Could not remove the outputs of a failed quantum: %s", locations)
