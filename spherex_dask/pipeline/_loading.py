# SPDX-License-Identifier: BSD-3-Clause
"""Reading pipeline YAML: the document's shape, task classes by import path, label selection."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import PipelineDefinitionError
from ._task import PipelineTask

__all__ = ["PipelineDocument", "SubsetSpec", "TaskSpec", "import_task_class", "read_source"]

TOP_LEVEL_KEYS = ("description", "parameters", "tasks", "subsets")
TASK_KEYS = ("class", "config")
SUBSET_KEYS = ("subset", "description")


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """One ``tasks:`` entry: the task class (import path or class) and its config overrides."""

    label: str
    task_class: str | type[PipelineTask]
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubsetSpec:
    """A named subset of task labels."""

    labels: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineDocument:
    """A pipeline definition as read, before task classes are imported."""

    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[TaskSpec, ...] = ()
    subsets: Mapping[str, SubsetSpec] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any, *, source: str) -> PipelineDocument:
        """Check the shape of a parsed YAML mapping.

        Raises
        ------
        PipelineDefinitionError
            For a non-mapping document, unknown keys or malformed entries, naming ``source``.
        """
        _check_mapping(raw, source, "the pipeline", TOP_LEVEL_KEYS)
        parameters = raw.get("parameters") or {}
        _check_mapping(parameters, source, "'parameters'")
        tasks_raw = raw.get("tasks")
        if not isinstance(tasks_raw, Mapping) or not tasks_raw:
            raise PipelineDefinitionError(
                f"{source}: 'tasks' must be a non-empty mapping of label to task."
            )
        tasks = tuple(_parse_task(str(label), entry, source) for label, entry in tasks_raw.items())
        subsets_raw = raw.get("subsets") or {}
        _check_mapping(subsets_raw, source, "'subsets'")
        subsets = {
            str(name): _parse_subset(str(name), entry, source)
            for name, entry in subsets_raw.items()
        }
        return cls(
            description=str(raw.get("description") or ""),
            parameters=dict(parameters),
            tasks=tasks,
            subsets=subsets,
        )


def _check_mapping(
    raw: Any, source: str, what: str, allowed: tuple[str, ...] | None = None
) -> None:
    if not isinstance(raw, Mapping):
        raise PipelineDefinitionError(
            f"{source}: {what} must be a mapping, got {type(raw).__name__}."
        )
    if allowed is not None:
        unknown = [str(k) for k in raw if k not in allowed]
        if unknown:
            raise PipelineDefinitionError(
                f"{source}: unknown key(s) {', '.join(unknown)} in {what}; valid keys: "
                f"{', '.join(allowed)}."
            )


def _parse_task(label: str, entry: Any, source: str) -> TaskSpec:
    if isinstance(entry, str | type):
        return TaskSpec(label=label, task_class=entry)
    _check_mapping(entry, source, f"task {label!r}", TASK_KEYS)
    if "class" not in entry:
        raise PipelineDefinitionError(
            f"{source}: task {label!r} has no 'class' (the task's import path)."
        )
    config = entry.get("config") or {}
    _check_mapping(config, source, f"the config of task {label!r}")
    return TaskSpec(label=label, task_class=entry["class"], config=dict(config))


def _parse_subset(name: str, entry: Any, source: str) -> SubsetSpec:
    if isinstance(entry, list | tuple):
        return SubsetSpec(labels=tuple(str(x) for x in entry))
    _check_mapping(entry, source, f"subset {name!r}", SUBSET_KEYS)
    labels = entry.get("subset")
    if not isinstance(labels, list | tuple) or not labels:
        raise PipelineDefinitionError(
            f"{source}: subset {name!r} needs a non-empty 'subset' list of labels."
        )
    return SubsetSpec(
        labels=tuple(str(x) for x in labels), description=str(entry.get("description") or "")
    )


def import_task_class(path: str | type, *, label: str, source: str) -> type[PipelineTask]:
    """Import a task class from its dotted path (``package.module.ClassName``).

    Raises
    ------
    PipelineDefinitionError
        If the module cannot be imported, has no such attribute (the message lists what the
        module has), or the object is not a PipelineTask subclass.
    """
    where = f"{source}: task {label!r}"
    obj: Any = path
    if isinstance(path, str):
        obj = _import_object(path, where)
    if not (isinstance(obj, type) and issubclass(obj, PipelineTask)):
        raise PipelineDefinitionError(
            f"{where}: {path!r} is not a PipelineTask subclass (got {obj!r})."
        )
    return obj


def _import_object(path: str, where: str) -> Any:
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and module_name.startswith(err.name):
                continue
            raise PipelineDefinitionError(
                f"{where}: importing {module_name!r} failed: {err}"
            ) from err
        except Exception as err:
            raise PipelineDefinitionError(
                f"{where}: importing {module_name!r} failed: {err!r}"
            ) from err
        obj: Any = module
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                public = sorted(n for n in dir(obj) if not n.startswith("_"))
                raise PipelineDefinitionError(
                    f"{where}: cannot import task class {path!r}: {obj.__name__!r} has no attribute "
                    f"{attr!r} (it has: {', '.join(public) or 'nothing public'})."
                )
            obj = getattr(obj, attr)
        return obj
    raise PipelineDefinitionError(
        f"{where}: cannot import task class {path!r}: no module of that path exists; give the full "
        "path, e.g. 'spherex_dask.pipeline.tasks.SubtractDarkTask'."
    )


def read_source(source: str | Path) -> tuple[Any, str, tuple[str, ...]]:
    """Read a pipeline from a file path (with an optional ``#label,subset`` suffix) or YAML text.

    Returns
    -------
    raw, name, selection
        The parsed YAML, a name for messages (the path or ``"<yaml text>"``), and the labels
        or subset names after ``#`` (empty: all tasks).

    Raises
    ------
    PipelineDefinitionError
        If the file does not exist or is not valid YAML.
    """
    text_given = isinstance(source, str) and ("\n" in source or ":" in source.partition("#")[0])
    selection: tuple[str, ...] = ()
    if text_given:
        name, text = "<yaml text>", str(source)
    else:
        path_text, _, sel = str(source).partition("#")
        selection = tuple(s.strip() for s in sel.split(",") if s.strip())
        path = Path(path_text)
        if not path.is_file():
            raise PipelineDefinitionError(f"Pipeline file {path_text!r} does not exist.")
        name, text = path_text, path.read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PipelineDefinitionError(f"{name}: not valid YAML: {err}") from err
    return raw, name, selection
