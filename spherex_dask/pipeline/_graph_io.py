# SPDX-License-Identifier: BSD-3-Clause
"""JSON serialisation of quantum graphs.

Layout (format version 1)::

    {"format": "spherex_dask.QuantumGraph", "version": 1,
     "pipeline": "<pipeline YAML>", "input_collections": [...], "output_run": "...",
     "metadata": {...},
     "dataset_types": {name: {"dimensions": [...], "storage_class": ..., "is_calibration": ...}},
     "datasets": {id: [dataset type name, {data ID}, run]},
     "quanta": [{"id", "task", "data_id", "inputs": {conn: [id...]}, "prerequisites", "outputs",
                 "depends_on": [id...], "left_out": [reason...] (only when not empty)}],
     "skipped": [{"task", "data_id", "kind", "reason"}]}

Each dataset appears once in ``datasets``; quanta refer to datasets by id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._gc import paused_gc
from ..errors import PipelineError
from ..types import DataId, DatasetRef, DatasetType
from ._graph import Quantum, QuantumGraph, SkippedQuantum

__all__ = ["graph_from_json", "graph_to_json", "load_graph", "save_graph"]

FORMAT = "spherex_dask.QuantumGraph"
VERSION = 1


def _dataset_type_to_json(dt: DatasetType) -> dict[str, Any]:
    return {
        "dimensions": list(dt.dimensions),
        "storage_class": dt.storage_class,
        "is_calibration": dt.is_calibration,
    }


def graph_to_json(graph: QuantumGraph) -> dict[str, Any]:
    """The JSON-compatible mapping of ``graph``."""
    dataset_types: dict[str, Any] = {}
    datasets: dict[str, Any] = {}

    def refs(mapping: Mapping[str, tuple[DatasetRef, ...]]) -> dict[str, list[str]]:
        result = {}
        for conn, items in mapping.items():
            for ref in items:
                dataset_types.setdefault(
                    ref.dataset_type.name, _dataset_type_to_json(ref.dataset_type)
                )
                datasets.setdefault(
                    str(ref.id), [ref.dataset_type.name, ref.data_id.to_dict(), ref.run]
                )
            result[conn] = [str(ref.id) for ref in items]
        return result

    quanta = []
    for q in graph:
        quantum = {
            "id": str(q.id),
            "task": q.task_label,
            "data_id": q.data_id.to_dict(),
            "inputs": refs(q.inputs),
            "prerequisites": refs(q.prerequisites),
            "outputs": refs(q.outputs),
            "depends_on": sorted(str(d) for d in graph.dependencies(q.id)),
        }
        if q.left_out:
            quantum["left_out"] = list(q.left_out)
        quanta.append(quantum)
    return {
        "format": FORMAT,
        "version": VERSION,
        "pipeline": graph.pipeline_yaml,
        "input_collections": list(graph.input_collections),
        "output_run": graph.output_run,
        "metadata": graph.metadata,
        "dataset_types": dataset_types,
        "datasets": datasets,
        "quanta": quanta,
        "skipped": [
            {
                "task": s.task_label,
                "data_id": s.data_id.to_dict(),
                "kind": s.kind,
                "reason": s.reason,
            }
            for s in graph.skipped
        ],
    }


def graph_from_json(data: Mapping[str, Any]) -> QuantumGraph:
    """Rebuild a graph from :func:`graph_to_json` output.

    Raises
    ------
    PipelineError
        If ``data`` is not a quantum graph of a supported version or is malformed.
    """
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise PipelineError(f"Not a quantum graph: expected format {FORMAT!r}.")
    if data.get("version") != VERSION:
        raise PipelineError(
            f"Quantum graph format version {data.get('version')!r} is not supported (this version reads {VERSION})."
        )
    try:
        with paused_gc():
            return _graph_from_json(data)
    except (KeyError, TypeError, ValueError) as err:
        raise PipelineError(f"Malformed quantum graph: {err!r}") from err


def _graph_from_json(data: Mapping[str, Any]) -> QuantumGraph:
    types = {
        name: DatasetType(
            name=name,
            dimensions=tuple(d["dimensions"]),
            storage_class=d["storage_class"],
            is_calibration=bool(d["is_calibration"]),
        )
        for name, d in data["dataset_types"].items()
    }
    refs = {
        key: DatasetRef(
            id=uuid.UUID(key), dataset_type=types[name], data_id=DataId(data_id), run=run
        )
        for key, (name, data_id, run) in data["datasets"].items()
    }

    def conns(mapping: Mapping[str, list[str]]) -> dict[str, tuple[DatasetRef, ...]]:
        return {conn: tuple(refs[i] for i in ids) for conn, ids in mapping.items()}

    quanta = []
    deps: dict[uuid.UUID, list[uuid.UUID]] = {}
    for q in data["quanta"]:
        qid = uuid.UUID(q["id"])
        quanta.append(
            Quantum(
                id=qid,
                task_label=q["task"],
                data_id=DataId(q["data_id"]),
                inputs=conns(q["inputs"]),
                prerequisites=conns(q["prerequisites"]),
                outputs=conns(q["outputs"]),
                left_out=tuple(q.get("left_out", ())),
            )
        )
        deps[qid] = [uuid.UUID(d) for d in q["depends_on"]]
    skipped = [
        SkippedQuantum(
            task_label=s["task"], data_id=DataId(s["data_id"]), kind=s["kind"], reason=s["reason"]
        )
        for s in data["skipped"]
    ]
    return QuantumGraph(
        quanta,
        dependencies=deps,
        skipped=skipped,
        pipeline_yaml=data["pipeline"],
        input_collections=data["input_collections"],
        output_run=data["output_run"],
        metadata=data["metadata"],
    )


def save_graph(graph: QuantumGraph, path: Path) -> None:
    """Write ``graph`` to ``path`` as JSON."""
    with paused_gc():
        text = json.dumps(graph_to_json(graph), separators=(",", ":"))
    path.write_text(text)


def load_graph(path: Path) -> QuantumGraph:
    """Read a graph written by :func:`save_graph`.

    Raises
    ------
    PipelineError
        If the file is missing, not JSON, or not a quantum graph.
    """
    if not path.is_file():
        raise PipelineError(f"Quantum graph file {str(path)!r} does not exist.")
    try:
        with paused_gc():
            data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PipelineError(f"Quantum graph file {str(path)!r} is not valid JSON: {err}") from err
    try:
        return graph_from_json(data)
    except PipelineError as err:
        raise PipelineError(f"{path}: {err}") from err
