# SPDX-License-Identifier: BSD-3-Clause
"""Building a quantum graph from a pipeline and what the registry holds.

For each task, in pipeline order:

1. Rows (data IDs over the task's and its regular inputs' dimensions, implied ones included)
   come from one ``query_data_ids`` call constrained by the inputs that already exist (and by
   ``where``/``data_id``), or, for a task whose inputs are all made upstream, from the data IDs
   of the upstream quanta.  Rows whose upstream-made inputs are not produced are dropped.
2. Rows are grouped by the task's dimensions: one group per quantum; a fan-in input
   (``multiple=True``) collects every dataset of its group.
3. Input refs come from one ``query_datasets`` call per input dataset type (joined in Python
   by data ID) or from the upstream quanta's output refs; prerequisites are looked up by the
   quantum's data ID (a calibration by the exposure's time); outputs get deterministic refs.

A quantum that cannot run (a missing prerequisite or input, or a skipped upstream quantum) is
recorded in ``graph.skipped`` with the reason, and so are the quanta that need its outputs. A
fan-in is the exception: it runs without the datasets a skipped upstream quantum would have
made, as long as at least its connection's ``minimum`` remain, and ``Quantum.left_out`` says
which it runs without.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .._gc import paused_gc
from ..errors import (
    DatasetTypeConflictError,
    MissingDatasetTypeError,
    MissingPrerequisiteError,
    PipelineError,
    UnknownNameError,
)
from ..types import DataId, DatasetRef, DatasetType
from ._graph import Quantum, QuantumGraph, SkippedQuantum
from ._prerequisites import PrerequisiteFinder
from ._records import RecordCache

if TYPE_CHECKING:
    from ..registry import Registry
    from ._connections import ResolvedConnection
    from ._pipeline import Pipeline, TaskNode

__all__ = ["build_quantum_graph"]

logger = logging.getLogger(__name__)

Key = tuple[Any, ...]


@dataclass(slots=True)
class _Produced:
    """A dataset an upstream quantum will write (or that already exists, ``quantum_id=None``)."""

    ref: DatasetRef
    full: Mapping[str, Any]
    quantum_id: uuid.UUID | None
    skipped: SkippedQuantum | None = None


@dataclass(slots=True)
class _Group:
    """The rows of one quantum: its full data ID and, per input, the keys of its datasets."""

    full: dict[str, Any]
    keys: dict[str, dict[Key, None]] = field(default_factory=dict)


def build_quantum_graph(
    pipeline: Pipeline,
    registry: Registry,
    *,
    input_collections: Sequence[str],
    output_run: str,
    where: str = "",
    bind: Mapping[str, Any] | None = None,
    data_id: Mapping[str, Any] | None = None,
    fail_on_missing: bool = False,
    skip_existing_in: Sequence[str] | None = None,
) -> QuantumGraph:
    """Build the graph of quanta that ``pipeline`` can run on the data in ``input_collections``.

    Parameters
    ----------
    pipeline
        The pipeline to run.
    registry
        The registry to query (or a Butler, whose registry is used); it is not modified.
    input_collections
        Collections searched, in order, for inputs and prerequisites.
    output_run
        The RUN collection the outputs will be written to (their refs are made here).
    where, bind, data_id
        Restrict the data IDs (a query expression, its bind values, a partial data ID).
    fail_on_missing
        Raise instead of skipping a quantum whose prerequisite is missing.
    skip_existing_in
        Collections in which existing outputs mark a quantum as done (skipped; its outputs
        are used by downstream quanta).

    Raises
    ------
    MissingPrerequisiteError
        With ``fail_on_missing``, for the first quantum without its prerequisite.
    MissingDatasetTypeError
        If an input or prerequisite dataset type is not registered.
    DatasetTypeConflictError
        If a registered dataset type differs from the pipeline's definition.
    """
    registry = getattr(registry, "registry", registry)  # a Butler: use its registry
    if not input_collections:
        raise PipelineError(
            "No input collections given; name at least one (e.g. -i rawexpr,darkr)."
        )
    builder = _Builder(
        pipeline,
        registry,
        input_collections=tuple(input_collections),
        output_run=output_run,
        where=where,
        bind=dict(bind or {}),
        data_id=dict(data_id or {}),
        fail_on_missing=fail_on_missing,
        skip_existing_in=tuple(skip_existing_in or ()),
    )
    with paused_gc():
        return builder.build()


class _Builder:
    def __init__(
        self,
        pipeline: Pipeline,
        registry: Registry,
        *,
        input_collections: tuple[str, ...],
        output_run: str,
        where: str,
        bind: dict[str, Any],
        data_id: dict[str, Any],
        fail_on_missing: bool,
        skip_existing_in: tuple[str, ...],
    ) -> None:
        self.pipeline = pipeline
        self.registry = registry
        self.universe = registry.universe
        self.collections = input_collections
        self.output_run = output_run
        self.where, self.bind = where, bind
        self.data_id = {k: self.universe.coerce_value(k, v) for k, v in data_id.items()}
        self.fail_on_missing = fail_on_missing
        self.skip_existing_in = skip_existing_in
        self.records = RecordCache(registry, self.data_id)
        self.types = self._dataset_types()
        self.produced: dict[str, dict[Key, _Produced]] = {}
        self.external: dict[str, dict[Key, DatasetRef]] = {}
        self.quanta: list[Quantum] = []
        self.dependencies: dict[uuid.UUID, set[uuid.UUID]] = {}
        self.skipped: list[SkippedQuantum] = []
        self.stale: list[SkippedQuantum] = []
        self.recorded: dict[str, dict[uuid.UUID, frozenset[uuid.UUID]]] = {}
        self.prerequisites = PrerequisiteFinder(registry, self.records, input_collections)

    # -- dataset types ------------------------------------------------------------------
    def _dataset_types(self) -> dict[str, DatasetType]:
        """The definitions used for refs: the registry's when registered, checked for agreement."""
        result = {}
        outputs = self.pipeline.dataset_types("output")
        for name, ours in self.pipeline.dataset_types().items():
            try:
                theirs = self.registry.get_dataset_type(name)
            except MissingDatasetTypeError as err:
                if name in outputs:
                    result[name] = ours
                    continue
                err.add_note(
                    f"The pipeline needs {name!r} as an input; register it or ingest data first."
                )
                raise
            if (
                set(theirs.dimensions) != set(ours.dimensions)
                or theirs.storage_class != ours.storage_class
            ):
                users = ", ".join(
                    f"{node.label}.{conn.attribute}"
                    for node in self.pipeline
                    for conn in node.connections.values()
                    if conn.name == name
                )
                raise DatasetTypeConflictError(
                    f"Dataset type {name!r} is registered with dimensions {theirs.dimensions} and "
                    f"storage class {theirs.storage_class!r}, but the pipeline ({users}) uses "
                    f"dimensions {ours.dimensions} and storage class {ours.storage_class!r}; "
                    "rename the pipeline's through config.connections or fix the task."
                )
            result[name] = theirs
        return result

    # -- main loop ------------------------------------------------------------------------
    def build(self) -> QuantumGraph:
        for node in self.pipeline:
            before_q, before_s = len(self.quanta), len(self.skipped)
            self._build_task(node)
            logger.info(
                "Task %s: %d quanta, %d skipped.",
                node.label,
                len(self.quanta) - before_q,
                len(self.skipped) - before_s,
            )
        missing = [s for s in self.skipped if s.kind != "outputs_exist"]
        if missing:
            logger.warning(
                "%d quanta cannot run and were skipped (first: %s on %r: %s).",
                len(missing),
                missing[0].task_label,
                missing[0].data_id,
                missing[0].reason,
            )
        if self.stale:
            first = self.stale[0]
            logger.warning(
                "%d quanta were left out because their outputs exist, although these were made "
                "without inputs that exist now (first: %s on %r: %s).",
                len(self.stale),
                first.task_label,
                first.data_id,
                first.reason,
            )
        if not self.quanta:
            logger.warning("The quantum graph is empty: no data IDs have all the inputs needed.")
        return QuantumGraph(
            self.quanta,
            dependencies=self.dependencies,
            skipped=self.skipped,
            pipeline_yaml=self.pipeline.to_yaml(),
            input_collections=self.collections,
            output_run=self.output_run,
            metadata={
                "where": self.where,
                "data_id": self.data_id,
                "skip_existing_in": list(self.skip_existing_in),
                "created": datetime.now(UTC).isoformat(),
            },
        )

    def _build_task(self, node: TaskNode) -> None:
        task_dims = self.universe.sorted(node.dimensions)
        rows = self._rows(node)
        for conn in node.outputs.values():
            self.produced.setdefault(conn.name, {})
        keep = task_dims + self.universe.implied(task_dims)
        groups: dict[Key, _Group] = {}
        for row in rows:
            try:
                qkey = tuple(row[d] for d in task_dims)
            except KeyError as err:
                raise PipelineError(
                    f"Task {node.label!r}: cannot tell the value of dimension {err} from data ID {row!r}."
                ) from None
            group = groups.get(qkey)
            if group is None:
                group = groups[qkey] = _Group({d: row[d] for d in keep if d in row})
            for attr, conn in node.inputs.items():
                group.keys.setdefault(attr, {})[_key(row, conn, node)] = None
        for conn in node.prerequisites.values():
            self.prerequisites.prefetch(conn, (g.full for g in groups.values()))
        for qkey in sorted(groups):
            self._make_quantum(node, DataId(dict(zip(task_dims, qkey, strict=True))), groups[qkey])

    # -- rows -----------------------------------------------------------------------------
    def _rows(self, node: TaskNode) -> list[dict[str, Any]]:
        inputs = list(node.inputs.values())
        external = [c for c in inputs if c.name not in self.produced]
        internal = [c for c in inputs if c.name in self.produced]
        if external:
            # Ask only for dimensions no other one implies (planning_period comes with exposure):
            # the registry would join an implied dimension's own table as an unrelated factor.
            wanted = {*node.dimensions, *(d for c in inputs for d in c.dimensions)}
            implied_by_others = {i for d in wanted for i in self.universe[d].implies}
            dims = self.universe.sorted(wanted - implied_by_others)
            implied = self.universe.implied(dims)
            found = self.registry.query_data_ids(
                dims,
                where=self.where,
                bind=self.bind,
                data_id=self.data_id or None,
                datasets=[c.name for c in external],
                collections=self.collections,
            )
            rows = [self.records.complete(d.to_dict(), implied) for d in found]
        else:
            driver = max(internal, key=lambda c: len(c.dimensions))
            rows = [dict(p.full) for p in self.produced[driver.name].values()]
            rows = [r for r in rows if all(r.get(k, v) == v for k, v in self.data_id.items())]
        for conn in internal:
            produced = self.produced[conn.name]
            rows = [r for r in rows if _key(r, conn, node) in produced]
        return rows

    # -- one quantum ----------------------------------------------------------------------
    def _make_quantum(self, node: TaskNode, data_id: DataId, group: _Group) -> None:
        qid = Quantum.make_id(node.label, data_id, self.output_run)
        deps: set[uuid.UUID] = set()
        inputs: dict[str, tuple[DatasetRef, ...]] = {}
        skip: SkippedQuantum | None = None
        left_out: list[str] = []
        for attr, conn in node.inputs.items():
            refs, problems, missing = [], [], []
            for key in sorted(group.keys[attr]):
                ref, problem = self._input_ref(node, data_id, conn, key, deps)
                if ref is not None:
                    refs.append(ref)
                elif problem is not None:
                    problems.append(problem)
                    missing.append(key)
            if problems and conn.multiple and len(refs) >= conn.minimum:
                left_out.extend(self._left_out(conn, key) for key in missing)
            elif problems:
                skip = skip or _too_few(conn, refs, problems)
            inputs[attr] = tuple(refs)
        prerequisites: dict[str, tuple[DatasetRef, ...]] = {}
        if skip is None:
            for attr, conn in node.prerequisites.items():
                ref, problem = self._prerequisite(node, data_id, conn, group.full)
                skip = skip or problem
                prerequisites[attr] = (ref,) if ref is not None else ()
        outputs = {
            attr: (self._output_ref(node, conn, group.full),) for attr, conn in node.outputs.items()
        }
        if skip is None:
            skip = self._existing(node, data_id, outputs)
            if skip is not None:
                skip = self._note_new_inputs(node, skip, inputs, outputs)
        if skip is not None:
            self.skipped.append(skip)
        else:
            quantum = Quantum(
                id=qid,
                task_label=node.label,
                data_id=data_id,
                inputs=inputs,
                prerequisites=prerequisites,
                outputs=outputs,
                left_out=tuple(left_out),
            )
            if left_out:
                logger.info(
                    "Task %s, quantum %r runs without %d input(s): %s",
                    node.label,
                    data_id,
                    len(left_out),
                    "; ".join(left_out),
                )
            self.quanta.append(quantum)
            self.dependencies[qid] = deps
        for attr, conn in node.outputs.items():
            ref = outputs[attr][0]
            existing = skip is not None and skip.kind == "outputs_exist"
            self.produced.setdefault(conn.name, {})[_key(group.full, conn, node)] = _Produced(
                ref=self._existing_ref(conn, ref) if existing else ref,
                full=group.full,
                quantum_id=None if skip is not None else qid,
                skipped=None if skip is None or existing else skip,
            )

    def _input_ref(
        self,
        node: TaskNode,
        data_id: DataId,
        conn: ResolvedConnection,
        key: Key,
        deps: set[uuid.UUID],
    ) -> tuple[DatasetRef | None, SkippedQuantum | None]:
        produced = self.produced.get(conn.name)
        if produced is not None:
            entry = produced[key]
            if entry.skipped is not None:
                up = entry.skipped
                reason = (
                    f"input {conn.name} {entry.ref.data_id!r} will not be produced: upstream quantum "
                    f"{up.task_label} {up.data_id!r} was skipped ({up.kind}: {up.reason})"
                )
                return None, SkippedQuantum(
                    task_label=node.label, data_id=data_id, kind="upstream_skipped", reason=reason
                )
            if entry.quantum_id is not None:
                deps.add(entry.quantum_id)
            return entry.ref, None
        ref = self._external_refs(conn).get(key)
        if ref is None:
            reason = (
                f"input {conn.name} {dict(zip(conn.dimensions, key, strict=True))!r} not found in "
                f"collections {list(self.collections)}"
            )
            return None, SkippedQuantum(
                task_label=node.label, data_id=data_id, kind="missing_input", reason=reason
            )
        return ref, None

    def _left_out(self, conn: ResolvedConnection, key: Key) -> str:
        """One line on an input a fan-in quantum runs without."""
        what = f"{conn.name} {DataId(dict(zip(conn.dimensions, key, strict=True)))!r}"
        entry = self.produced.get(conn.name, {}).get(key)
        if entry is not None and entry.skipped is not None:
            up = entry.skipped
            return f"{what}: its {up.task_label} quantum was skipped ({up.kind})"
        return f"{what}: not found in collections {list(self.collections)}"

    def _external_refs(self, conn: ResolvedConnection) -> dict[Key, DatasetRef]:
        """All datasets of one input type in the input collections (one query), by data ID."""
        refs = self.external.get(conn.name)
        if refs is None:
            found = self._query_datasets(conn.name, self.collections, where=self.where)
            refs = self.external[conn.name] = {
                tuple(r.data_id[d] for d in conn.dimensions): r for r in found
            }
        return refs

    def _query_datasets(
        self, name: str, collections: Sequence[str], *, where: str
    ) -> list[DatasetRef]:
        kwargs: dict[str, Any] = {"collections": list(collections), "data_id": self.data_id or None}
        try:
            return list(
                self.registry.query_datasets(
                    name, where=where, bind=self.bind, find_first=True, **kwargs
                )
            )
        except UnknownNameError:
            # ``where`` names a dimension this dataset type cannot reach; the data-ID query
            # already applied it, so fetch without it and let the join by data ID filter.
            logger.debug("Querying %s without the where clause it cannot use.", name)
            return list(self.registry.query_datasets(name, find_first=True, **kwargs))

    def _prerequisite(
        self, node: TaskNode, data_id: DataId, conn: ResolvedConnection, full: Mapping[str, Any]
    ) -> tuple[DatasetRef | None, SkippedQuantum | None]:
        ref, (key, timespan) = self.prerequisites.find(conn, full)
        if ref is not None:
            return ref, None
        reason = (
            f"no {conn.name} {DataId(dict(zip(conn.dimensions, key, strict=True)))!r} in "
            f"collections {list(self.collections)}"
        )
        if timespan is not None:
            reason += f" valid in {timespan}"
        if self.fail_on_missing:
            raise MissingPrerequisiteError(
                f"Task {node.label!r}, quantum {data_id!r}: prerequisite {conn.attribute!r}: "
                f"{reason}. Certify or ingest one, or build without --fail-on-missing "
                "(fail_on_missing=False) to skip such quanta."
            )
        return None, SkippedQuantum(
            task_label=node.label, data_id=data_id, kind="missing_prerequisite", reason=reason
        )

    def _output_ref(
        self, node: TaskNode, conn: ResolvedConnection, full: Mapping[str, Any]
    ) -> DatasetRef:
        values = dict(zip(conn.dimensions, _key(full, conn, node), strict=True))
        return DatasetRef.make(self.types[conn.name], DataId(values), self.output_run)

    # -- skip existing --------------------------------------------------------------------
    def _existing_outputs(self, name: str, dimensions: tuple[str, ...]) -> dict[Key, DatasetRef]:
        cache = self.external.get(f"existing:{name}")
        if cache is None:
            try:
                found = self._query_datasets(name, self.skip_existing_in, where="")
            except MissingDatasetTypeError:
                found = []
            cache = self.external[f"existing:{name}"] = {
                tuple(r.data_id[d] for d in dimensions): r for r in found
            }
        return cache

    def _existing(
        self, node: TaskNode, data_id: DataId, outputs: Mapping[str, tuple[DatasetRef, ...]]
    ) -> SkippedQuantum | None:
        if not self.skip_existing_in or not outputs:
            return None
        for attr, conn in node.outputs.items():
            key = tuple(outputs[attr][0].data_id[d] for d in conn.dimensions)
            if key not in self._existing_outputs(conn.name, conn.dimensions):
                return None
        reason = f"all outputs already exist in {list(self.skip_existing_in)}"
        return SkippedQuantum(
            task_label=node.label, data_id=data_id, kind="outputs_exist", reason=reason
        )

    def _note_new_inputs(
        self,
        node: TaskNode,
        skip: SkippedQuantum,
        inputs: Mapping[str, tuple[DatasetRef, ...]],
        outputs: Mapping[str, tuple[DatasetRef, ...]],
    ) -> SkippedQuantum:
        """``skip`` (outputs exist), saying so when its outputs were made without inputs that
        exist now: a stack made before a missing exposure could be processed."""
        made_from = self._recorded_inputs(node.label)
        existing = [self._existing_ref(c, outputs[a][0]) for a, c in node.outputs.items()]
        recorded = next((made_from[r.id] for r in existing if r.id in made_from), None)
        if recorded is None:  # no provenance (outputs ingested or put by hand): nothing to say
            return skip
        wanted = {r.id for refs in inputs.values() for r in refs}
        new = wanted - recorded
        if not new:
            return skip
        reason = (
            f"{skip.reason}; they were made from {len(wanted & recorded)} of the {len(wanted)} "
            f"inputs that exist now (remake them with --replace-run)"
        )
        stale = replace(skip, reason=reason)
        self.stale.append(stale)
        return stale

    def _recorded_inputs(self, label: str) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
        """Output id -> input ids of the succeeded quanta of task ``label`` in the
        skip-existing collections (one provenance query per task)."""
        cache = self.recorded.get(label)
        if cache is None:
            cache = self.recorded[label] = {}
            records = self.registry.query_quanta(
                collections=list(self.skip_existing_in), task_label=label, status="succeeded"
            )
            for record in records:
                for output in record.outputs:
                    cache[output] = frozenset(record.inputs)
        return cache

    def _existing_ref(self, conn: ResolvedConnection, ref: DatasetRef) -> DatasetRef:
        key = tuple(ref.data_id[d] for d in conn.dimensions)
        return self._existing_outputs(conn.name, conn.dimensions)[key]


def _key(row: Mapping[str, Any], conn: ResolvedConnection, node: TaskNode) -> Key:
    try:
        return tuple(row[d] for d in conn.dimensions)
    except KeyError as err:
        raise PipelineError(
            f"Task {node.label!r}, connection {conn.attribute!r}: data ID {dict(row)!r} has no value "
            f"for dimension {err}; the registry returned no implied value for it."
        ) from None


def _too_few(
    conn: ResolvedConnection, refs: Sequence[DatasetRef], problems: Sequence[SkippedQuantum]
) -> SkippedQuantum:
    """Why a quantum is skipped when some of an input's datasets cannot be had: the first
    problem, with the count a fan-in was short of its minimum."""
    first = problems[0]
    if not conn.multiple:
        return first
    wanted = len(refs) + len(problems)
    reason = (
        f"only {len(refs)} of {wanted} {conn.name} input(s) can be had, fewer than the "
        f"minimum of {conn.minimum}; first missing: {first.reason}"
    )
    return SkippedQuantum(
        task_label=first.task_label, data_id=first.data_id, kind=first.kind, reason=reason
    )
