# SPDX-License-Identifier: BSD-3-Clause
"""Quanta and the quantum graph: what will run, on which data, in which order."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PipelineError
from ..types import DataId, DatasetRef, DatasetType

if TYPE_CHECKING:
    from ._pipeline import Pipeline

__all__ = [
    "SKIP_KINDS",
    "SUMMARY_COLUMNS",
    "Quantum",
    "QuantumGraph",
    "SkippedQuantum",
    "TaskSummary",
    "format_summary",
]

#: Namespace of the deterministic quantum ids.
QUANTUM_ID_NAMESPACE = uuid.UUID("6f1f3f0c-9a51-4c1e-8d53-0b7e1b2f4a10")

#: Why a quantum was not included: a prerequisite was not found; an input was not found; an
#: upstream quantum it needs was skipped; all its outputs already exist (``skip_existing_in``).
SKIP_KINDS = ("missing_prerequisite", "missing_input", "upstream_skipped", "outputs_exist")


@dataclass(frozen=True, slots=True, kw_only=True)
class Quantum:
    """One execution of a task on one data ID.

    ``inputs``, ``prerequisites`` and ``outputs`` map a connection attribute (the keyword
    ``run`` takes or returns) to the dataset refs; a fan-in input has several refs.
    ``left_out`` says, one line each, which datasets of a fan-in the quantum runs without
    (their upstream quantum was skipped; see the connection's ``minimum``).
    """

    id: uuid.UUID
    task_label: str
    data_id: DataId
    inputs: Mapping[str, tuple[DatasetRef, ...]] = field(default_factory=dict)
    prerequisites: Mapping[str, tuple[DatasetRef, ...]] = field(default_factory=dict)
    outputs: Mapping[str, tuple[DatasetRef, ...]] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()

    def __hash__(self) -> int:
        return hash(self.id)

    @staticmethod
    def make_id(task_label: str, data_id: Mapping[str, Any], run: str) -> uuid.UUID:
        """The deterministic id of the quantum of ``task_label`` on ``data_id`` writing to ``run``.

        Examples
        --------
        >>> a = Quantum.make_id("subtract", {"detector": 1, "exposure": 2}, "out")
        >>> a == Quantum.make_id("subtract", {"exposure": 2, "detector": 1}, "out")
        True
        """
        key = ",".join(f"{k}={data_id[k]!r}" for k in sorted(data_id))
        return uuid.uuid5(QUANTUM_ID_NAMESPACE, f"{task_label}|{key}|{run}")

    def input_refs(self) -> Iterator[DatasetRef]:
        """Every regular input ref."""
        for refs in self.inputs.values():
            yield from refs

    def prerequisite_refs(self) -> Iterator[DatasetRef]:
        """Every prerequisite ref."""
        for refs in self.prerequisites.values():
            yield from refs

    def output_refs(self) -> Iterator[DatasetRef]:
        """Every output ref."""
        for refs in self.outputs.values():
            yield from refs


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedQuantum:
    """A quantum that could not be (or need not be) included, and why."""

    task_label: str
    data_id: DataId
    kind: str
    reason: str

    def __post_init__(self) -> None:
        if self.kind not in SKIP_KINDS:
            raise ValueError(f"Unknown skip kind {self.kind!r}; use one of {SKIP_KINDS}.")


#: Columns of :meth:`QuantumGraph.summary` rows, in display order.
SUMMARY_COLUMNS = ("task", "quanta", "skipped", "inputs", "prerequisites", "outputs")


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSummary:
    """Counts for one task of a graph (distinct dataset refs, not connections)."""

    task: str
    quanta: int
    skipped: int
    inputs: int
    prerequisites: int
    outputs: int

    def as_row(self) -> dict[str, str | int]:
        """The summary as a ``{column: value}`` row (see ``SUMMARY_COLUMNS``)."""
        return {c: getattr(self, c) for c in SUMMARY_COLUMNS}


def format_summary(rows: Sequence[TaskSummary]) -> str:
    """A plain-text table of summary rows, with a total line.

    Examples
    --------
    >>> print(format_summary([TaskSummary(task="subtract", quanta=2, skipped=1, inputs=2,
    ...                                   prerequisites=1, outputs=2)]))
    task      quanta  skipped  inputs  prerequisites  outputs
    --------  ------  -------  ------  -------------  -------
    subtract       2        1       2              1        2
    TOTAL          2        1       2              1        2
    """
    table = [[str(v) for v in r.as_row().values()] for r in rows]
    totals = ["TOTAL"] + [str(sum(getattr(r, c) for r in rows)) for c in SUMMARY_COLUMNS[1:]]
    table.append(totals)
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(SUMMARY_COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    rule = ["-" * w for w in widths]
    return "\n".join(line(r) for r in [list(SUMMARY_COLUMNS), rule, *table]).rstrip()


class QuantumGraph:
    """Quanta, the dependencies between them, and what was skipped.

    Parameters
    ----------
    quanta
        The quanta; kept in a topological order (producers first).
    dependencies
        ``{quantum id: ids of the quanta producing its inputs}``; computed from the refs if
        ``None``.
    skipped
        Quanta left out, with the reason.
    pipeline_yaml
        The pipeline definition, so that the graph can be run on its own.
    input_collections, output_run
        Where inputs were found and where outputs will be written.
    metadata
        Free-form JSON-compatible information (the ``where`` clause, creation time...).

    Raises
    ------
    PipelineError
        If a dependency names an unknown quantum or the dependencies form a cycle.
    """

    def __init__(
        self,
        quanta: Iterable[Quantum],
        *,
        dependencies: Mapping[uuid.UUID, Iterable[uuid.UUID]] | None = None,
        skipped: Iterable[SkippedQuantum] = (),
        pipeline_yaml: str = "",
        input_collections: Sequence[str] = (),
        output_run: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        by_id = {q.id: q for q in quanta}
        if dependencies is None:
            dependencies = _dependencies_from_refs(by_id.values())
        self._deps: dict[uuid.UUID, frozenset[uuid.UUID]] = {
            qid: frozenset(dependencies.get(qid, ())) for qid in by_id
        }
        for qid, deps in self._deps.items():
            unknown = [d for d in deps if d not in by_id]
            if unknown:
                raise PipelineError(
                    f"Quantum {qid} depends on unknown quanta {sorted(map(str, unknown))}."
                )
        self._quanta = {qid: by_id[qid] for qid in _topological(self._deps)}
        self._dependents: dict[uuid.UUID, set[uuid.UUID]] = {qid: set() for qid in by_id}
        for qid, deps in self._deps.items():
            for dep in deps:
                self._dependents[dep].add(qid)
        self.skipped: tuple[SkippedQuantum, ...] = tuple(skipped)
        self.pipeline_yaml = pipeline_yaml
        self.input_collections = tuple(input_collections)
        self.output_run = output_run
        self.metadata: dict[str, Any] = dict(metadata or {})

    # -- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._quanta)

    def __iter__(self) -> Iterator[Quantum]:
        return iter(self._quanta.values())

    def __getitem__(self, quantum_id: uuid.UUID) -> Quantum:
        return self._quanta[quantum_id]

    def __contains__(self, quantum_id: object) -> bool:
        return quantum_id in self._quanta

    def __repr__(self) -> str:
        return f"QuantumGraph({len(self)} quanta, {len(self.skipped)} skipped, run={self.output_run!r})"

    @property
    def task_labels(self) -> tuple[str, ...]:
        """Labels of the tasks with quanta or skipped quanta, pipeline order when known."""
        seen = dict.fromkeys(q.task_label for q in self._quanta.values())
        seen.update(dict.fromkeys(s.task_label for s in self.skipped))
        if self.pipeline_yaml:
            order = self.pipeline.task_labels
            return tuple(lbl for lbl in order if lbl in seen) + tuple(
                lbl for lbl in seen if lbl not in order
            )
        return tuple(seen)

    def quanta_for_task(self, label: str) -> list[Quantum]:
        """The quanta of one task, in graph order."""
        return [q for q in self._quanta.values() if q.task_label == label]

    def dependencies(self, quantum_id: uuid.UUID) -> frozenset[uuid.UUID]:
        """Ids of the quanta whose outputs this quantum reads."""
        return self._deps[quantum_id]

    def dependents(self, quantum_id: uuid.UUID) -> frozenset[uuid.UUID]:
        """Ids of the quanta that read this quantum's outputs."""
        return frozenset(self._dependents[quantum_id])

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline the graph was built from.

        Raises
        ------
        PipelineError
            If the graph carries no pipeline definition.
        """
        from ._pipeline import Pipeline

        if not self.pipeline_yaml:
            raise PipelineError("This quantum graph carries no pipeline definition.")
        return Pipeline.from_yaml(self.pipeline_yaml)

    def dataset_types(self) -> dict[str, DatasetType]:
        """Every dataset type of the graph's refs, by name."""
        result: dict[str, DatasetType] = {}
        for q in self._quanta.values():
            for ref in (*q.input_refs(), *q.prerequisite_refs(), *q.output_refs()):
                result.setdefault(ref.dataset_type.name, ref.dataset_type)
        return result

    def output_refs(self) -> list[DatasetRef]:
        """Every ref the graph will write, in graph order."""
        return [ref for q in self._quanta.values() for ref in q.output_refs()]

    def initial_inputs(self) -> list[DatasetRef]:
        """Refs read by the graph and not produced by it (inputs and prerequisites), deduplicated."""
        produced = {ref.id for ref in self.output_refs()}
        found: dict[uuid.UUID, DatasetRef] = {}
        for q in self._quanta.values():
            for ref in (*q.input_refs(), *q.prerequisite_refs()):
                if ref.id not in produced:
                    found.setdefault(ref.id, ref)
        return list(found.values())

    def summary(self) -> list[TaskSummary]:
        """One row per task: quanta, skipped quanta and distinct input/prerequisite/output refs."""
        rows = []
        for label in self.task_labels:
            quanta = self.quanta_for_task(label)
            rows.append(
                TaskSummary(
                    task=label,
                    quanta=len(quanta),
                    skipped=sum(1 for s in self.skipped if s.task_label == label),
                    inputs=len({r.id for q in quanta for r in q.input_refs()}),
                    prerequisites=len({r.id for q in quanta for r in q.prerequisite_refs()}),
                    outputs=len({r.id for q in quanta for r in q.output_refs()}),
                )
            )
        return rows

    # -- export ----------------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-compatible mapping (see :meth:`from_json_dict`)."""
        from ._graph_io import graph_to_json

        return graph_to_json(self)

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> QuantumGraph:
        """Rebuild a graph from :meth:`to_json_dict` output.

        Raises
        ------
        PipelineError
            If the mapping is not a quantum graph of a known format version.
        """
        from ._graph_io import graph_from_json

        return graph_from_json(data)

    def save(self, path: str | Path) -> None:
        """Write the graph as JSON (lossless: dataset types, refs, data IDs, dependencies)."""
        from ._graph_io import save_graph

        save_graph(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> QuantumGraph:
        """Read a graph written by :meth:`save`.

        Raises
        ------
        PipelineError
            If the file is missing, not JSON, or not a quantum graph.
        """
        from ._graph_io import load_graph

        return load_graph(Path(path))

    def to_dot(self) -> str:
        """GraphViz DOT text: task (box) and dataset (ellipse) nodes, as pipetask's --qgraph-dot."""
        from ._dot import graph_to_dot

        return graph_to_dot(self)

    def write_dot(self, path: str | Path) -> None:
        """Write :meth:`to_dot` to ``path``."""
        Path(path).write_text(self.to_dot())

    def render(self, path: str | Path, *, format: str | None = None) -> Path:
        """Render the graph to an image (PNG, SVG, PDF) with graphviz's ``dot`` program.

        Parameters
        ----------
        path
            Output file; its suffix gives the format unless ``format`` is given.
        format
            A ``dot -T`` format such as ``png`` or ``svg``.

        Raises
        ------
        PipelineError
            If ``dot`` is not installed or fails.
        """
        from ._dot import render_dot

        return render_dot(self.to_dot(), Path(path), format=format)


def _dependencies_from_refs(quanta: Iterable[Quantum]) -> dict[uuid.UUID, set[uuid.UUID]]:
    quanta = list(quanta)
    producer = {ref.id: q.id for q in quanta for ref in q.output_refs()}
    return {q.id: {producer[r.id] for r in q.input_refs() if r.id in producer} for q in quanta}


def _topological(deps: Mapping[uuid.UUID, frozenset[uuid.UUID]]) -> list[uuid.UUID]:
    """Ids ordered dependencies-first, keeping the given order where it already is one."""
    order: list[uuid.UUID] = []
    state: dict[uuid.UUID, int] = {}  # 1: on stack, 2: done
    for root in deps:
        if state.get(root) == 2:
            continue
        stack: list[tuple[uuid.UUID, Iterator[uuid.UUID]]] = [(root, iter(sorted(deps[root])))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[node] = 2
                order.append(node)
            elif state.get(child) == 1:
                raise PipelineError(
                    f"The quantum dependencies form a cycle through quantum {child}."
                )
            elif state.get(child) is None:
                state[child] = 1
                stack.append((child, iter(sorted(deps[child]))))
    return order
