# SPDX-License-Identifier: BSD-3-Clause
"""Pipelines: tasks with declared connections, pipeline YAML, the quantum graph, and its
execution on a ``distributed`` cluster.

The names in ``__all__`` are imported on first use (as the top-level package does), so that
importing one submodule -- ``tasks`` on a worker, ``_forkserver`` before the CLI's own
imports -- does not import ``distributed`` and the rest.
"""

import typing as _typing

from .._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from ._builder import build_quantum_graph
    from ._cluster import dashboard_link, make_client, make_jobqueue_cluster
    from ._config import ConnectionsConfig, PipelineTaskConfig
    from ._connections import Input, Output, PrerequisiteInput, ResolvedConnection
    from ._execute import check_graph, run_quantum_graph
    from ._graph import Quantum, QuantumGraph, SkippedQuantum, TaskSummary, format_summary
    from ._outputs import (
        OutputCollections,
        apply_outputs,
        check_prunable,
        plan_outputs,
        prune_replaced,
    )
    from ._pipeline import Pipeline, TaskNode
    from ._summary import RunSummary, TaskRunSummary
    from ._task import PipelineTask
    from ._worker import QuantumResult

#: Public name -> submodule that defines it, imported on first attribute access.
_LAZY = {
    "build_quantum_graph": "._builder",
    "dashboard_link": "._cluster",
    "make_client": "._cluster",
    "make_jobqueue_cluster": "._cluster",
    "ConnectionsConfig": "._config",
    "PipelineTaskConfig": "._config",
    "Input": "._connections",
    "Output": "._connections",
    "PrerequisiteInput": "._connections",
    "ResolvedConnection": "._connections",
    "check_graph": "._execute",
    "run_quantum_graph": "._execute",
    "Quantum": "._graph",
    "QuantumGraph": "._graph",
    "SkippedQuantum": "._graph",
    "TaskSummary": "._graph",
    "format_summary": "._graph",
    "OutputCollections": "._outputs",
    "apply_outputs": "._outputs",
    "check_prunable": "._outputs",
    "plan_outputs": "._outputs",
    "prune_replaced": "._outputs",
    "Pipeline": "._pipeline",
    "TaskNode": "._pipeline",
    "RunSummary": "._summary",
    "TaskRunSummary": "._summary",
    "PipelineTask": "._task",
    "QuantumResult": "._worker",
}

__all__ = [
    "ConnectionsConfig",
    "Input",
    "Output",
    "OutputCollections",
    "Pipeline",
    "PipelineTask",
    "PipelineTaskConfig",
    "PrerequisiteInput",
    "Quantum",
    "QuantumGraph",
    "QuantumResult",
    "RunSummary",
    "ResolvedConnection",
    "SkippedQuantum",
    "TaskNode",
    "TaskRunSummary",
    "TaskSummary",
    "apply_outputs",
    "build_quantum_graph",
    "dashboard_link",
    "make_client",
    "make_jobqueue_cluster",
    "check_graph",
    "check_prunable",
    "format_summary",
    "plan_outputs",
    "prune_replaced",
    "run_quantum_graph",
]

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)
