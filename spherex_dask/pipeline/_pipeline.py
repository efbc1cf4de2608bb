# SPDX-License-Identifier: BSD-3-Clause
"""Pipelines: labelled, configured tasks read from YAML, validated, ordered producer-first.

A pipeline file looks like::

    description: Dark subtraction, then a per-detector stack.
    parameters: {calibration_type: dark}
    tasks:
      subtract:
        class: spherex_dask.pipeline.tasks.SubtractDarkTask
        config:
          calibration_type: parameters.calibration_type
          connections: {raw: raw}
      stack: spherex_dask.pipeline.tasks.StackTask
    subsets:
      processing: {subset: [subtract], description: Dark subtraction only.}
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..dimensions import DimensionUniverse
from ..errors import PipelineDefinitionError
from ..types import DatasetType
from ._config import (
    PARAMETER_PREFIX,
    PipelineTaskConfig,
    coerce_override,
    expand_dotted,
    merge_overrides,
    parse_override,
    resolve_parameters,
    validate_config,
)
from ._connections import ResolvedConnection
from ._loading import PipelineDocument, SubsetSpec, TaskSpec, import_task_class, read_source
from ._task import PipelineTask, resolve_connections
from ._validation import check_dataset_types, check_task_dimensions, topological_order

__all__ = ["DATASET_TYPE_KINDS", "Pipeline", "TaskNode"]

logger = logging.getLogger(__name__)

#: The ``kind`` values accepted by :meth:`Pipeline.dataset_types`.
DATASET_TYPE_KINDS = ("input", "prerequisite", "output", "intermediate")


@dataclass(frozen=True, eq=False, kw_only=True)
class TaskNode:
    """A labelled task in a pipeline: class, validated config, resolved connections."""

    label: str
    task_class: type[PipelineTask]
    class_path: str
    config: PipelineTaskConfig
    overrides: Mapping[str, Any] = field(default_factory=dict)
    connections: Mapping[str, ResolvedConnection] = field(default_factory=dict)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The task's dimensions (a quantum's data ID keys)."""
        return self.task_class.dimensions

    def _of_kind(self, kind: str) -> dict[str, ResolvedConnection]:
        return {a: c for a, c in self.connections.items() if c.kind == kind}

    @functools.cached_property
    def inputs(self) -> dict[str, ResolvedConnection]:
        """Regular inputs, by connection attribute."""
        return self._of_kind("input")

    @functools.cached_property
    def prerequisites(self) -> dict[str, ResolvedConnection]:
        """Prerequisite (calibration) inputs, by connection attribute."""
        return self._of_kind("prerequisite")

    @functools.cached_property
    def outputs(self) -> dict[str, ResolvedConnection]:
        """Outputs, by connection attribute."""
        return self._of_kind("output")

    def make_task(self) -> PipelineTask:
        """A fresh task instance with this node's config and label."""
        return self.task_class(config=self.config.model_copy(deep=True), label=self.label)


def make_task_node(
    spec: TaskSpec, parameters: Mapping[str, Any], universe: DimensionUniverse, *, source: str
) -> TaskNode:
    """Import, configure and check one task.

    Raises
    ------
    PipelineDefinitionError
        For an import failure, an invalid config or connections that do not fit the dimensions.
    """
    task_class = import_task_class(spec.task_class, label=spec.label, source=source)
    context = f"{source}: task {spec.label!r} ({task_class.__qualname__})"
    overrides = expand_dotted(spec.config)
    values = resolve_parameters(overrides, parameters, context=context)
    config = validate_config(task_class.ConfigClass, values, context=context)
    connections = resolve_connections(task_class, config, universe, context=context)
    check_task_dimensions(spec.label, task_class.dimensions, connections, universe, context=source)
    class_path = (
        spec.task_class
        if isinstance(spec.task_class, str)
        else f"{task_class.__module__}.{task_class.__qualname__}"
    )
    return TaskNode(
        label=spec.label,
        task_class=task_class,
        class_path=class_path,
        config=config,
        overrides=overrides,
        connections=connections,
    )


class Pipeline:
    """An ordered, validated set of labelled tasks.

    Build one with :meth:`from_yaml` (a file, optionally ``path.yaml#label,subset``, or YAML
    text) or :meth:`from_dict`.

    Raises
    ------
    PipelineDefinitionError
        On construction, for any invalid definition (see :meth:`from_dict`).
    """

    def __init__(
        self,
        document: PipelineDocument,
        *,
        source: str = "<pipeline>",
        universe: DimensionUniverse | None = None,
    ) -> None:
        self.source = source
        self.universe = universe if universe is not None else DimensionUniverse.default()
        self.description = document.description
        self.parameters: dict[str, Any] = dict(document.parameters)
        labels = [t.label for t in document.tasks]
        self._specs = {t.label: t for t in document.tasks}
        self._check_subsets(document.subsets, labels)
        self.subsets: dict[str, SubsetSpec] = dict(document.subsets)
        self._nodes = self._build_nodes(self._specs, self.parameters)

    def _build_nodes(
        self, specs: Mapping[str, TaskSpec], parameters: Mapping[str, Any]
    ) -> dict[str, TaskNode]:
        nodes = {
            lbl: make_task_node(s, parameters, self.universe, source=self.source)
            for lbl, s in specs.items()
        }
        check_dataset_types(nodes, context=self.source)
        order = topological_order(nodes, context=self.source)
        return {label: nodes[label] for label in order}

    def _check_subsets(self, subsets: Mapping[str, SubsetSpec], labels: Sequence[str]) -> None:
        for name, subset in subsets.items():
            if name in labels:
                raise PipelineDefinitionError(
                    f"{self.source}: subset name {name!r} is also a task label."
                )
            unknown = [x for x in subset.labels if x not in labels]
            if unknown:
                raise PipelineDefinitionError(
                    f"{self.source}: subset {name!r} names unknown task label(s) {', '.join(unknown)}; "
                    f"labels: {', '.join(labels)}."
                )

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        raw: Mapping[str, Any],
        *,
        source: str = "<dict>",
        universe: DimensionUniverse | None = None,
        select: Sequence[str] = (),
    ) -> Pipeline:
        """Build from a parsed mapping (same shape as the YAML); ``class`` may be a class.

        Parameters
        ----------
        raw
            ``description``, ``parameters``, ``tasks``, ``subsets``.
        source
            Name used in error messages.
        universe
            Dimension universe to check dimensions against (default: SPHEREx).
        select
            Task labels or subset names to keep (default: all tasks).

        Raises
        ------
        PipelineDefinitionError
            For unknown keys, an unknown task class or config field, connections that do not
            fit the task dimensions, a dimension or storage-class mismatch between a producer
            and a consumer, an output produced twice, a cycle, or an unknown label/subset.
        """
        pipeline = cls(PipelineDocument.parse(raw, source=source), source=source, universe=universe)
        return pipeline.subset(*select) if select else pipeline

    @classmethod
    def from_yaml(
        cls, source: str | Path, *, universe: DimensionUniverse | None = None
    ) -> Pipeline:
        """Load from a YAML file (``path.yaml`` or ``path.yaml#label1,subset``) or YAML text.

        Examples
        --------
        >>> p = Pipeline.from_yaml('''
        ... tasks:
        ...   subtract: spherex_dask.pipeline.tasks.SubtractDarkTask
        ... ''')
        >>> p.task_labels
        ('subtract',)
        """
        raw, name, selection = read_source(source)
        return cls.from_dict(raw, source=name, universe=universe, select=selection)

    def to_dict(self) -> dict[str, Any]:
        """The definition as a plain mapping (config overrides as given, not resolved)."""
        tasks = {}
        for label, spec in self._specs.items():
            entry: dict[str, Any] = {"class": self._nodes[label].class_path}
            if spec.config:
                entry["config"] = copy.deepcopy(dict(spec.config))
            tasks[label] = entry
        result: dict[str, Any] = {"description": self.description}
        if self.parameters:
            result["parameters"] = dict(self.parameters)
        result["tasks"] = tasks
        if self.subsets:
            result["subsets"] = {
                n: {"subset": list(s.labels), "description": s.description}
                for n, s in self.subsets.items()
            }
        return result

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal pipeline."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_dot(self) -> str:
        """GraphViz DOT text: task boxes and dataset-type ellipses (pipetask's --pipeline-dot)."""
        from ._dot import pipeline_to_dot

        return pipeline_to_dot(self)

    # -- access ----------------------------------------------------------------------------
    @property
    def task_labels(self) -> tuple[str, ...]:
        """Labels in topological order (producers before consumers)."""
        return tuple(self._nodes)

    @property
    def tasks(self) -> Mapping[str, TaskNode]:
        """Task nodes by label, in topological order."""
        return dict(self._nodes)

    def __getitem__(self, label: str) -> TaskNode:
        try:
            return self._nodes[label]
        except KeyError:
            raise KeyError(
                f"No task labelled {label!r}; labels: {', '.join(self._nodes)}."
            ) from None

    def __iter__(self) -> Iterator[TaskNode]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, label: object) -> bool:
        return label in self._nodes

    def __repr__(self) -> str:
        return f"Pipeline({self.source!r}, tasks={list(self._nodes)})"

    def make_task(self, label: str) -> PipelineTask:
        """A configured task instance for ``label``."""
        return self[label].make_task()

    # -- derived views ---------------------------------------------------------------------
    def producer_of(self, dataset_type_name: str) -> str | None:
        """The label of the task producing a dataset type, or ``None`` if it is not produced."""
        for label, node in self._nodes.items():
            if any(c.name == dataset_type_name for c in node.outputs.values()):
                return label
        return None

    def dataset_types(self, kind: str | None = None) -> dict[str, DatasetType]:
        """Dataset types the pipeline uses, by name.

        Parameters
        ----------
        kind
            ``None`` for all; ``"input"`` (regular inputs not produced by the pipeline),
            ``"prerequisite"``, ``"output"`` (everything produced) or ``"intermediate"``
            (produced and consumed).

        Raises
        ------
        ValueError
            For an unknown ``kind``.
        """
        if kind is not None and kind not in DATASET_TYPE_KINDS:
            raise ValueError(
                f"Unknown dataset type kind {kind!r}; use one of {DATASET_TYPE_KINDS}."
            )
        produced = {c.name: c.dataset_type for n in self for c in n.outputs.values()}
        consumed = {c.name: c.dataset_type for n in self for c in n.inputs.values()}
        prereqs = {c.name: c.dataset_type for n in self for c in n.prerequisites.values()}
        groups = {
            "input": {k: v for k, v in consumed.items() if k not in produced},
            "prerequisite": prereqs,
            "output": produced,
            "intermediate": {k: v for k, v in produced.items() if k in consumed},
        }
        if kind is not None:
            return groups[kind]
        return {**groups["input"], **prereqs, **produced}

    # -- modification ----------------------------------------------------------------------
    def subset(self, *names: str) -> Pipeline:
        """A new pipeline with only the given task labels and/or named subsets.

        Raises
        ------
        PipelineDefinitionError
            If a name is neither a label nor a subset (the message lists both).
        """
        keep: set[str] = set()
        for name in names:
            if name in self.subsets:
                keep.update(self.subsets[name].labels)
            elif name in self._specs:
                keep.add(name)
            else:
                raise PipelineDefinitionError(
                    f"{self.source}: {name!r} is neither a task label nor a subset; labels: "
                    f"{', '.join(self._specs)}; subsets: {', '.join(self.subsets) or '(none)'}."
                )
        document = PipelineDocument(
            description=self.description,
            parameters=self.parameters,
            tasks=tuple(s for lbl, s in self._specs.items() if lbl in keep),
            subsets={n: s for n, s in self.subsets.items() if set(s.labels) <= keep},
        )
        return Pipeline(document, source=self.source, universe=self.universe)

    def apply_overrides(self, overrides: Iterable[str]) -> Pipeline:
        """Apply ``label:field=value`` overrides in place (all or none) and return ``self``.

        ``field`` may be dotted (``connections.raw``); the value is converted to the field's
        type; ``parameters:NAME=value`` sets a parameter the pipeline defines.

        Examples
        --------
        >>> p = Pipeline.from_yaml("tasks: {stack: spherex_dask.pipeline.tasks.StackTask}")
        >>> p.apply_overrides(["stack:connections.stack=my_stack"])["stack"].outputs["stack"].name
        'my_stack'

        Raises
        ------
        PipelineDefinitionError
            For a malformed override, an unknown label, field or parameter, or a value of the
            wrong type; the pipeline is left unchanged.
        """
        specs = dict(self._specs)
        parameters = dict(self.parameters)
        for text in overrides:
            label, name, value = parse_override(text)
            if label == "parameters":
                if name not in parameters:
                    raise PipelineDefinitionError(
                        f"{self.source}: config override {text!r}: the pipeline has no parameter "
                        f"{name!r}; its parameters: {', '.join(parameters) or '(none)'}."
                    )
                parameters[name] = yaml.safe_load(value) if value else ""
                continue
            specs[label] = self._override_spec(specs, parameters, label, name, value)
        self._nodes = self._build_nodes(specs, parameters)
        self._specs, self.parameters = specs, parameters
        return self

    def _override_spec(
        self,
        specs: Mapping[str, TaskSpec],
        parameters: Mapping[str, Any],
        label: str,
        name: str,
        value: str,
    ) -> TaskSpec:
        if label not in specs:
            raise PipelineDefinitionError(
                f"Config override {label}:{name}={value} names an unknown task label "
                f"{label!r}; the labels of {self.source} are {', '.join(specs)} (or "
                "'parameters' for a shared parameter)."
            )
        spec = specs[label]
        node = self._nodes.get(label) or make_task_node(
            spec, parameters, self.universe, source=self.source
        )
        context = f"{self.source}: task {label!r} ({node.task_class.__qualname__}), override {name}={value}"
        base = expand_dotted(spec.config)
        if value.startswith(PARAMETER_PREFIX):
            converted: Any = value
        else:
            resolved = resolve_parameters(base, parameters, context=context)
            converted = coerce_override(
                node.task_class.ConfigClass, resolved, name, value, context=context
            )
        config = merge_overrides(base, expand_dotted({name: converted}))
        validate_config(
            node.task_class.ConfigClass,
            resolve_parameters(config, parameters, context=context),
            context=context,
        )
        return TaskSpec(label=label, task_class=spec.task_class, config=config)
