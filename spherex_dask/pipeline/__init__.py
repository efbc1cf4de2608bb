# SPDX-License-Identifier: BSD-3-Clause
"""Pipelines: tasks with declared connections, pipeline YAML, the quantum graph, and its
execution on a ``distributed`` cluster."""

from ._builder import build_quantum_graph
from ._cluster import dashboard_link, make_client, make_jobqueue_cluster
from ._config import ConnectionsConfig, PipelineTaskConfig
from ._connections import Input, Output, PrerequisiteInput, ResolvedConnection
from ._execute import check_graph, run_quantum_graph
from ._graph import Quantum, QuantumGraph, SkippedQuantum, TaskSummary, format_summary
from ._outputs import OutputCollections, apply_outputs, plan_outputs, prune_replaced
from ._pipeline import Pipeline, TaskNode
from ._summary import RunSummary, TaskRunSummary
from ._task import PipelineTask
from ._worker import QuantumResult

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
    "format_summary",
    "plan_outputs",
    "prune_replaced",
    "run_quantum_graph",
]
