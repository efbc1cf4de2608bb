# SPDX-License-Identifier: BSD-3-Clause
"""GraphViz export of pipelines and quantum graphs, and rendering with the ``dot`` program."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PipelineError

if TYPE_CHECKING:
    from ..types import DataId, DatasetRef
    from ._graph import QuantumGraph
    from ._pipeline import Pipeline

__all__ = ["graph_to_dot", "pipeline_to_dot", "render_dot"]

logger = logging.getLogger(__name__)

_HEADER = [
    "  node [fontname=Helvetica, fontsize=10];",
    "  edge [color=gray40];",
]
_TASK_STYLE = 'shape=box, style="rounded,filled", fillcolor="#cfe2f3"'
_SKIPPED_STYLE = 'shape=box, style="rounded,dashed", color=gray50, fontcolor=gray35'
_DATASET_STYLE = 'shape=ellipse, style=filled, fillcolor="#fff2cc"'
_PREREQ_STYLE = 'shape=ellipse, style=filled, fillcolor="#d9ead3"'


def _quote(text: str) -> str:
    """A DOT double-quoted string; ``\\n`` stays a line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _data_id(data_id: DataId) -> str:
    return ", ".join(f"{k}: {v}" for k, v in data_id.items() if k != "instrument")


def graph_to_dot(graph: QuantumGraph) -> str:
    """DOT text of a quantum graph: one box per quantum, one ellipse per dataset.

    Edges go from input and prerequisite datasets to quanta and from quanta to outputs;
    skipped quanta are dashed boxes labelled with the reason's kind; a fan-in quantum that
    runs without some inputs says how many (the reasons are its tooltip).
    """
    lines = ["digraph QuantumGraph {", *_HEADER]
    datasets: dict[str, tuple[DatasetRef, bool]] = {}
    edges: list[str] = []
    for q in graph:
        node = f"q_{q.id.hex}"
        label = f"{q.task_label}\n{_data_id(q.data_id)}"
        extra = ""
        if q.left_out:
            label += f"\nwithout {len(q.left_out)} input(s)"
            extra = f", tooltip={_quote('; '.join(q.left_out))}"
        lines.append(f"  {node} [{_TASK_STYLE}, label={_quote(label)}{extra}];")
        for conns, is_prereq in ((q.inputs, False), (q.prerequisites, True)):
            for ref in _refs(conns):
                datasets.setdefault(ref.id.hex, (ref, is_prereq))
                edges.append(f"  d_{ref.id.hex} -> {node};")
        for ref in _refs(q.outputs):
            datasets.setdefault(ref.id.hex, (ref, False))
            edges.append(f"  {node} -> d_{ref.id.hex};")
    for key, (ref, is_prereq) in datasets.items():
        label = f"{ref.dataset_type.name}\n{_data_id(ref.data_id)}"
        style = _PREREQ_STYLE if is_prereq else _DATASET_STYLE
        lines.append(f"  d_{key} [{style}, label={_quote(label)}];")
    for i, s in enumerate(graph.skipped):
        label = f"{s.task_label}\n{_data_id(s.data_id)}\nskipped: {s.kind}"
        lines.append(
            f"  s_{i} [{_SKIPPED_STYLE}, label={_quote(label)}, tooltip={_quote(s.reason)}];"
        )
    lines.extend(edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _refs(conns: Mapping[str, tuple[DatasetRef, ...]]) -> list[DatasetRef]:
    return [ref for refs in conns.values() for ref in refs]


def pipeline_to_dot(pipeline: Pipeline) -> str:
    """DOT text of a pipeline: one box per task, one ellipse per dataset type."""
    lines = ["digraph Pipeline {", *_HEADER]
    types: dict[str, bool] = {}
    edges = []
    for node in pipeline:
        lines.append(
            f"  {_quote('t:' + node.label)} [{_TASK_STYLE}, label={_quote(node.label + chr(10) + node.task_class.__name__)}];"
        )
        for conn in node.connections.values():
            types.setdefault(conn.name, conn.kind == "prerequisite")
            task, dataset = _quote("t:" + node.label), _quote("d:" + conn.name)
            edges.append(
                f"  {task} -> {dataset};" if conn.kind == "output" else f"  {dataset} -> {task};"
            )
    for name, is_prereq in types.items():
        style = _PREREQ_STYLE if is_prereq else _DATASET_STYLE
        lines.append(f"  {_quote('d:' + name)} [{style}, label={_quote(name)}];")
    lines.extend(edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_dot(dot_text: str, path: Path, *, format: str | None = None) -> Path:
    """Render DOT text to ``path`` with graphviz (``dot -T<format>``).

    Raises
    ------
    PipelineError
        If ``dot`` is not on ``PATH``, the format is unknown, or ``dot`` fails.
    """
    fmt = format or path.suffix.lstrip(".").lower()
    if not fmt:
        raise PipelineError(
            f"Cannot tell the image format of {str(path)!r}; give a suffix such as .png or .svg."
        )
    exe = shutil.which("dot")
    if exe is None:
        raise PipelineError(
            "The graphviz 'dot' program is not on PATH, so the graph cannot be rendered to "
            f"{fmt}; install graphviz (e.g. 'apt-get install graphviz' or 'conda install graphviz'), "
            "or write DOT text with write_dot() instead."
        )
    result = subprocess.run(
        [exe, f"-T{fmt}", "-o", str(path)],
        input=dot_text.encode(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise PipelineError(
            f"graphviz 'dot -T{fmt}' failed: {result.stderr.decode(errors='replace').strip()}"
        )
    logger.info("Rendered graph to %s", path)
    return path
