# SPDX-License-Identifier: BSD-3-Clause
"""Client-side preparation of a run: checks against the registry, then one job per quantum.

Everything the workers need from the registry is looked up here, in a few bulk queries: the
stored locations of the inputs made before the run, and the dimension records the file
templates of the outputs use. Workers get :class:`~._worker.QuantumJob` objects and never open
the registry.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import (
    DatasetConflictError,
    DatasetNotFoundError,
    MissingDatasetTypeError,
    PipelineError,
    UnknownFormatterError,
)
from ..types import DataId, DatasetLocation, DatasetRef, DatasetType
from ._records import RecordCache
from ._worker import QuantumJob

if TYPE_CHECKING:
    from ..io import FileDatastore
    from ..registry import Registry
    from ._graph import QuantumGraph

__all__ = [
    "check_output_storage_classes",
    "check_outputs",
    "make_jobs",
    "register_output_types",
    "skip_existing_outputs",
]

logger = logging.getLogger(__name__)

#: Template fields that need no dimension record.
_PLAIN_FIELDS = frozenset({"run", "dataset_type", "id", "data_id"})


def _examples(items: Iterable[object], n: int = 5) -> str:
    items = list(items)
    text = "; ".join(str(i) for i in items[:n])
    return text + (f"; ... ({len(items)} in all)" if len(items) > n else "")


def check_output_storage_classes(graph: QuantumGraph, datastore: FileDatastore) -> None:
    """Check that the datastore knows the storage class of every output of ``graph``.

    Done before any output dataset type is registered: a type registered with a mistyped
    storage class would fail every quantum, and stay in the registry to conflict with the
    corrected task.

    Raises
    ------
    UnknownFormatterError
        Naming the task, the output connection, the storage class and the known ones.
    """
    names = {r.dataset_type.name for r in graph.output_refs()}
    unknown = [
        f"task {node.label!r} output {conn.attribute!r} ({conn.name}): {conn.dataset_type.storage_class!r}"
        for node in graph.pipeline
        for conn in node.outputs.values()
        if conn.name in names
        and conn.dataset_type.storage_class not in datastore.storage_classes
    ]
    if unknown:
        raise UnknownFormatterError(
            f"Unknown storage class for {'; '.join(unknown)}. Known storage classes: "
            f"{', '.join(sorted(datastore.storage_classes))}; fix the task's Output declaration. "
            "Nothing was registered or run."
        )


def register_output_types(graph: QuantumGraph, registry: Registry, *, register: bool) -> None:
    """Check (or, with ``register``, register) the dataset types of the graph's outputs.

    Raises
    ------
    MissingDatasetTypeError
        Naming the unregistered output dataset types, when ``register`` is false.
    DatasetTypeConflictError
        If one is registered with other dimensions or storage class.
    """
    types = {r.dataset_type.name: r.dataset_type for r in graph.output_refs()}
    missing: list[DatasetType] = []
    for dt in types.values():
        try:
            registry.get_dataset_type(dt.name)
        except MissingDatasetTypeError:
            missing.append(dt)
    if missing and not register:
        raise MissingDatasetTypeError(
            "Output dataset type(s) not registered: "
            f"{', '.join(f'{d.name} {d.dimensions} {d.storage_class}' for d in missing)}. "
            "Rerun with --register-dataset-types (register_dataset_types=True), or register "
            "them with `spherex-dask register-dataset-type`."
        )
    for dt in missing:
        registry.register_dataset_type(dt)
        logger.info("Registered dataset type %s.", dt.name)


def check_outputs(graph: QuantumGraph, registry: Registry, datastore: FileDatastore) -> None:
    """Check the output templates and that no output exists in the output run yet.

    Raises
    ------
    DatasetConflictError
        If outputs of the graph are already registered in the output run.
    TemplateError
        If a file template cannot give an output dataset type unique paths.
    """
    refs = graph.output_refs()
    types = {r.dataset_type.name: r.dataset_type for r in refs}
    for dt in types.values():
        datastore.templates.validate(dt)
    existing: set[tuple[str, tuple[object, ...]]] = set()
    if not registry.query_collections(graph.output_run):
        return  # a new run holds nothing yet
    for name, dt in types.items():
        try:
            found = registry.query_datasets(name, collections=[graph.output_run], find_first=False)
            existing.update((name, _key(r, dt)) for r in found)
        except MissingDatasetTypeError:
            continue
    clash = [r for r in refs if (r.dataset_type.name, _key(r, r.dataset_type)) in existing]
    if clash:
        raise DatasetConflictError(
            f"{len(clash)} output(s) of this graph already exist in run {graph.output_run!r} "
            f"({_examples(f'{r.dataset_type.name} {r.data_id!r}' for r in clash)}). Add "
            "--skip-existing to run only what is missing, or write to a new run."
        )


def skip_existing_outputs(graph: QuantumGraph, registry: Registry) -> QuantumGraph:
    """The graph without the quanta whose outputs are all registered already (a saved graph
    run again to finish it: ``run -g GRAPH --skip-existing``).

    Output refs have deterministic ids, so an output made by an earlier execution of the
    same graph is registered under the id the graph gives it; the remaining quanta read it
    from the registry like any other input. The quanta left out are listed in the new graph's
    ``skipped`` (kind ``outputs_exist``).
    """
    from ._graph import QuantumGraph, SkippedQuantum

    refs = graph.output_refs()
    registered: set[uuid.UUID] = set()
    if registry.query_collections(graph.output_run):
        for name in {r.dataset_type.name for r in refs}:
            try:
                found = registry.query_datasets(name, collections=[graph.output_run])
            except MissingDatasetTypeError:
                continue
            registered.update(r.id for r in found)
    done = [q for q in graph if all(r.id in registered for r in q.output_refs())]
    if not done:
        return graph
    reason = f"all outputs already exist in {[graph.output_run]}"
    skipped = [
        SkippedQuantum(task_label=q.task_label, data_id=q.data_id, kind="outputs_exist",
                       reason=reason)
        for q in done
    ]
    done_ids = {q.id for q in done}
    kept = [q for q in graph if q.id not in done_ids]
    metadata = dict(graph.metadata, skip_existing_in=[graph.output_run])
    return QuantumGraph(
        kept,
        skipped=(*graph.skipped, *skipped),
        pipeline_yaml=graph.pipeline_yaml,
        input_collections=graph.input_collections,
        output_run=graph.output_run,
        metadata=metadata,
    )


def _key(ref: DatasetRef, dt: DatasetType) -> tuple[object, ...]:
    return tuple(ref.data_id[d] for d in dt.dimensions)


def input_locations(
    graph: QuantumGraph, registry: Registry
) -> dict[uuid.UUID, tuple[DatasetLocation, ...]]:
    """Stored locations of the datasets the graph reads but does not make.

    Raises
    ------
    DatasetNotFoundError
        If some are not registered (a saved graph built against another repository, or
        inputs removed since), or registered without a stored file (pruned with ``unstore``).
    """
    initial = graph.initial_inputs()
    found = registry.get_locations([r.id for r in initial])
    missing = [r for r in initial if not found.get(r.id)]
    # One query per dataset: only a few, on this error path.
    unregistered = [r for r in missing[:5] if not _is_registered(registry, r.id)]
    if unregistered:
        raise DatasetNotFoundError(
            f"{len(missing)} input dataset(s) of the quantum graph have no stored file in this "
            "repository, and some are not registered at all ("
            f"{_examples(f'{r.dataset_type.name} {r.data_id!r} in {r.run}' for r in unregistered)}"
            "): the graph was built against another repository, or they were removed since. "
            "Build the graph again from this repository."
        )
    if missing:
        raise DatasetNotFoundError(
            f"{len(missing)} input dataset(s) have no stored file "
            f"({_examples(f'{r.dataset_type.name} {r.data_id!r} in {r.run}' for r in missing)}); "
            "they were pruned with 'unstore' or removed outside the Butler."
        )
    return {i: tuple(locs) for i, locs in found.items()}


def _is_registered(registry: Registry, dataset_id: uuid.UUID) -> bool:
    try:
        registry.get_dataset(dataset_id)
    except DatasetNotFoundError:
        return False
    return True


def expand_outputs(
    graph: QuantumGraph, registry: Registry, datastore: FileDatastore
) -> dict[uuid.UUID, DatasetRef]:
    """Output refs with dimension records attached where their file template needs them."""
    cache = RecordCache(registry, {})
    universe = registry.universe
    out: dict[uuid.UUID, DatasetRef] = {}
    for ref in graph.output_refs():
        fields = datastore.templates.get(ref.dataset_type.name).fields
        needed = {f.partition(".")[0] for f in fields} - _PLAIN_FIELDS
        if needed <= set(ref.data_id):
            out[ref.id] = ref
            continue
        values = dict(ref.data_id.to_dict())
        cache.complete(values, universe.implied(universe.sorted(values)))
        records = {}
        for element in universe.sorted(values):
            record = cache.record(element, values)
            if record is not None:
                records[element] = record
        data_id = DataId(ref.data_id.to_dict(), records=records)
        out[ref.id] = DatasetRef(
            id=ref.id, dataset_type=ref.dataset_type, data_id=data_id, run=ref.run
        )
    return out


def make_jobs(
    graph: QuantumGraph,
    registry: Registry,
    datastore: FileDatastore,
    *,
    output_format: str | None = None,
) -> dict[uuid.UUID, QuantumJob]:
    """One :class:`QuantumJob` per quantum, in graph order (see the module docstring)."""
    pipeline = graph.pipeline
    locations = input_locations(graph, registry)
    outputs = expand_outputs(graph, registry, datastore)
    multiple = {
        node.label: frozenset(a for a, c in node.inputs.items() if c.multiple) for node in pipeline
    }
    jobs = {}
    for q in graph:
        reads = (*q.input_refs(), *q.prerequisite_refs())
        jobs[q.id] = QuantumJob(
            quantum_id=q.id,
            task_label=q.task_label,
            data_id=q.data_id,
            inputs=dict(q.inputs),
            prerequisites=dict(q.prerequisites),
            multiple=multiple[q.task_label],
            outputs=_single_outputs(q.outputs, outputs),
            locations={r.id: locations[r.id] for r in reads if r.id in locations},
            output_format=output_format,
        )
    return jobs


def _single_outputs(
    outputs: Mapping[str, tuple[DatasetRef, ...]], expanded: Mapping[uuid.UUID, DatasetRef]
) -> dict[str, DatasetRef]:
    result = {}
    for attr, refs in outputs.items():
        if len(refs) != 1:
            raise PipelineError(
                f"Output {attr!r} has {len(refs)} refs in the graph; a quantum writes one dataset "
                "per output connection."
            )
        result[attr] = expanded[refs[0].id]
    return result
