# SPDX-License-Identifier: BSD-3-Clause
"""Checks of a pipeline definition: dimensions, dataset type consistency, cycles, order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PipelineDefinitionError
from ._connections import ResolvedConnection, dimension_closure

if TYPE_CHECKING:
    from ..dimensions import DimensionUniverse
    from ._pipeline import TaskNode

__all__ = ["check_dataset_types", "check_task_dimensions", "topological_order"]


def _fmt(dims: tuple[str, ...] | frozenset[str]) -> str:
    return "(" + ", ".join(dims if isinstance(dims, tuple) else sorted(dims)) + ")"


def check_task_dimensions(
    label: str,
    task_dimensions: tuple[str, ...],
    connections: Mapping[str, ResolvedConnection],
    universe: DimensionUniverse,
    *,
    context: str,
) -> None:
    """Check that a task's connections fit its dimensions.

    Rules: every task dimension is known; there is at least one regular input; the task
    dimensions follow from the regular inputs' dimensions; a single (non-``multiple``) input,
    each prerequisite and each output has dimensions within the task's (implied ones included);
    each output's dimensions determine the task's (one dataset per quantum).

    Raises
    ------
    PipelineDefinitionError
        Naming the task label, the connection and both sets of dimensions.
    """
    where = f"{context}: task {label!r}"
    unknown = [d for d in task_dimensions if d not in universe]
    if unknown:
        raise PipelineDefinitionError(
            f"{where}: unknown task dimension(s) {', '.join(unknown)}; known: "
            f"{', '.join(universe.elements)}."
        )
    task_dims = universe.sorted(task_dimensions)
    closure = dimension_closure(universe, task_dims)
    inputs = [c for c in connections.values() if c.kind == "input"]
    if not inputs:
        raise PipelineDefinitionError(
            f"{where}: has no regular Input; a quantum needs at least one."
        )
    for conn in connections.values():
        outside = [d for d in conn.dimensions if d not in closure]
        if outside and not (conn.kind == "input" and conn.multiple):
            raise PipelineDefinitionError(
                f"{where}: {conn.kind} {conn.attribute!r} ({conn.name}) has dimensions "
                f"{_fmt(conn.dimensions)}, but {', '.join(outside)} is not among the task dimensions "
                f"{_fmt(task_dims)}. Declare multiple=True for a fan-in input, or change the "
                "dimensions."
            )
    for conn in connections.values():
        if conn.kind != "output":
            continue
        lacking = [d for d in task_dims if d not in dimension_closure(universe, conn.dimensions)]
        if lacking:
            raise PipelineDefinitionError(
                f"{where}: output {conn.attribute!r} ({conn.name}) has dimensions "
                f"{_fmt(conn.dimensions)}, which do not determine the task dimension(s) "
                f"{', '.join(lacking)}: the quanta differing only in {', '.join(lacking)} would "
                f"all write the same dataset. Give the output the task dimensions {_fmt(task_dims)}, "
                "or the task the output's dimensions (with a fan-in input)."
            )
    reachable = dimension_closure(universe, [d for c in inputs for d in c.dimensions])
    missing = [d for d in task_dims if d not in reachable]
    if missing:
        raise PipelineDefinitionError(
            f"{where}: task dimension(s) {', '.join(missing)} cannot be derived from the regular "
            f"inputs' dimensions {_fmt(reachable)}."
        )


@dataclass(frozen=True, slots=True)
class _Use:
    label: str
    conn: ResolvedConnection

    def __str__(self) -> str:
        return f"task {self.label!r} {self.conn.kind} {self.conn.attribute!r}"


def check_dataset_types(nodes: Mapping[str, TaskNode], *, context: str) -> None:
    """Check that every use of a dataset type name agrees, and each is produced at most once.

    Raises
    ------
    PipelineDefinitionError
        For a dimension or storage-class mismatch (naming both uses), an output produced by
        two tasks, or a prerequisite that the pipeline itself produces.
    """
    uses: dict[str, list[_Use]] = {}
    for label, node in nodes.items():
        for conn in node.connections.values():
            uses.setdefault(conn.name, []).append(_Use(label, conn))
    for name, items in uses.items():
        first = items[0]
        for other in items[1:]:
            for what in ("dimensions", "storage_class"):
                a = getattr(first.conn.dataset_type, what)
                b = getattr(other.conn.dataset_type, what)
                if a != b:
                    raise PipelineDefinitionError(
                        f"{context}: dataset type {name!r} has {what} {a!r} in {first} but {b!r} in "
                        f"{other}; make them agree (or rename one through config.connections)."
                    )
        producers = [u for u in items if u.conn.kind == "output"]
        if len(producers) > 1:
            raise PipelineDefinitionError(
                f"{context}: dataset type {name!r} is an output of both {producers[0]} and "
                f"{producers[1]}; each dataset type may be produced by one task only."
            )
        prereqs = [u for u in items if u.conn.kind == "prerequisite"]
        if producers and prereqs:
            raise PipelineDefinitionError(
                f"{context}: dataset type {name!r} is produced by {producers[0]} but is a "
                f"prerequisite of {prereqs[0]}; prerequisites must already exist (use an Input)."
            )


def topological_order(nodes: Mapping[str, TaskNode], *, context: str) -> list[str]:
    """Labels ordered so that producers come before consumers (definition order breaks ties).

    Raises
    ------
    PipelineDefinitionError
        If the tasks form a cycle; the message lists the tasks on it.
    """
    producer = {c.name: label for label, n in nodes.items() for c in n.outputs.values()}
    upstream = {
        label: {producer[c.name] for c in n.inputs.values() if c.name in producer}
        for label, n in nodes.items()
    }
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(nodes):
        ready = [lbl for lbl in nodes if lbl not in done and upstream[lbl] <= done]
        if not ready:
            cycle = _find_cycle({k: v - done for k, v in upstream.items() if k not in done})
            raise PipelineDefinitionError(
                f"{context}: the tasks form a cycle: {' -> '.join(cycle)}; a task may not "
                "consume (directly or not) its own outputs."
            )
        order.append(ready[0])
        done.add(ready[0])
    return order


def _find_cycle(upstream: Mapping[str, set[str]]) -> list[str]:
    start = next(iter(upstream))
    path = [start]
    while True:
        nxt = sorted(upstream[path[-1]])[0]
        if nxt in path:
            return list(reversed([*path[path.index(nxt) :], nxt]))
        path.append(nxt)
