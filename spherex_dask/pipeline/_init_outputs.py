# SPDX-License-Identifier: BSD-3-Clause
"""What a run was made with: each task's config and the package versions, kept in the run.

As pipetask does, every output run holds a ``<label>_config`` dataset per task (its class and
its config, after the pipeline file's and ``-c`` overrides) and one ``packages`` dataset (the
versions of Python and of the libraries the outputs depend on). Both are ``StructuredData``
with no dimensions, written by the client before the first quantum runs.

Adding quanta to an existing run (``--extend-run``) with a different config would mix outputs
of two configs under one name, so it is refused, naming the fields that differ. Different
package versions are only reported (a warning): a bug-fix release is a common reason to
finish a run, and the record of the first versions is kept.
"""

from __future__ import annotations

import functools
import logging
import platform
import warnings
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from ..errors import (
    DatasetConflictError,
    MissingDatasetTypeError,
    PipelineError,
    SpherexDaskWarning,
)
from ..types import DatasetType

if TYPE_CHECKING:
    from ..butler import Butler
    from ._graph import QuantumGraph

__all__ = [
    "CONFIG_SUFFIX",
    "PACKAGES",
    "check_init_outputs",
    "init_output_types",
    "is_init_output",
    "write_init_outputs",
]

logger = logging.getLogger(__name__)

#: A task's config is the dataset ``<label>_config`` of the run.
CONFIG_SUFFIX = "_config"
#: The dataset type of a run's package versions.
PACKAGES = "packages"
#: The distributions whose versions a run records (others: the tasks' own, when known).
_DISTRIBUTIONS = (
    "spherex_dask",
    "dask",
    "distributed",
    "xarray",
    "numpy",
    "astropy",
    "zarr",
    "numcodecs",
    "pydantic",
)


def is_init_output(dataset_type: DatasetType) -> bool:
    """Whether ``dataset_type`` is a run's task config or package list (not a quantum's)."""
    return dataset_type.dimensions == () and (
        dataset_type.name == PACKAGES or dataset_type.name.endswith(CONFIG_SUFFIX)
    )


def init_output_types(labels: list[str]) -> list[DatasetType]:
    """The dataset types of the configs of ``labels`` and of the package list."""
    names = [f"{label}{CONFIG_SUFFIX}" for label in labels] + [PACKAGES]
    return [DatasetType(name=n, dimensions=(), storage_class="StructuredData") for n in names]


def _task_configs(graph: QuantumGraph) -> dict[str, dict[str, Any]]:
    """``{label: {"task": class path, "config": config as JSON}}`` of the graph's pipeline."""
    return _configs_of(graph.pipeline_yaml) if graph.pipeline_yaml else {}


@functools.lru_cache(maxsize=8)
def _configs_of(pipeline_yaml: str) -> dict[str, dict[str, Any]]:
    """:func:`_task_configs` of a pipeline definition, parsed once per process (the run
    command checks a graph before its cluster starts, and again to run it)."""
    from ._pipeline import Pipeline

    return {
        node.label: {"task": node.class_path, "config": node.config.model_dump(mode="json")}
        for node in Pipeline.from_yaml(pipeline_yaml)
    }


def _packages(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Versions of Python, the libraries outputs depend on and the tasks' distributions."""
    names = list(_DISTRIBUTIONS)
    for entry in configs.values():
        top = str(entry["task"]).partition(".")[0]
        if top and top not in names:
            names.append(top)
    return dict(_versions(tuple(names)))


@functools.lru_cache(maxsize=8)
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``(name, version)`` of Python and of the installed distributions among ``names``
    (looked up once per process)."""
    versions = [("python", platform.python_version())]
    for name in names:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue  # a task module that is not an installed distribution
    return tuple(versions)


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between two JSON-like values, as ``path: a -> b``."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{path}: (absent) -> {new[key]!r}")
            elif key not in new:
                out.append(f"{path}: {old[key]!r} -> (absent)")
            else:
                out.extend(_differences(old[key], new[key], path))
        return out
    return [] if old == new else [f"{prefix or '(value)'}: {old!r} -> {new!r}"]


def _stored(butler: Butler, name: str, run: str) -> Any | None:
    """The dataset ``name`` (no dimensions) of ``run``, or None if there is none."""
    try:
        if butler.registry.get_dataset_type(name).dimensions != ():
            return None
    except MissingDatasetTypeError:
        return None
    ref = butler.registry.find_dataset(name, {}, collections=[run])
    return None if ref is None else butler.get(ref)


def _put_once(butler: Butler, obj: Any, name: str, run: str) -> bool:
    """Put ``obj`` as the dataset ``name`` of ``run``; return True if another process put
    one there first (two commands extending one run at once)."""
    try:
        butler.put(obj, name, {}, run=run)
    except DatasetConflictError:
        return True
    return False


def check_init_outputs(graph: QuantumGraph, butler: Butler) -> None:
    """Check the graph's task configs against those its output run was made with, if any.

    Raises
    ------
    PipelineError
        If the output run holds a config of a task of the graph that differs (another task
        class, or config fields with other values), naming the fields and what to do.
    """
    configs = _task_configs(graph)
    _packages(configs)  # looked up now, before a cluster is waited for, and kept
    run = graph.output_run
    if butler.registry.query_collections(run):
        _refuse_changed(run, configs, _stored_configs(butler, configs, run))


def _stored_configs(
    butler: Butler, configs: Mapping[str, Any], run: str
) -> dict[str, Any | None]:
    """The config each task of ``configs`` has in ``run`` (None where it has none)."""
    return {label: _stored(butler, f"{label}{CONFIG_SUFFIX}", run) for label in configs}


def _refuse_changed(
    run: str, configs: Mapping[str, Any], stored: Mapping[str, Any | None]
) -> None:
    """Raise if a task's stored config differs from the graph's (see check_init_outputs)."""
    problems = []
    for label, entry in configs.items():
        if stored[label] is not None and stored[label] != entry:
            changes = _differences(stored[label], entry)
            problems.append(f"task {label!r}: {'; '.join(changes[:8])}")
    if problems:
        raise PipelineError(
            f"Run {run!r} was made with another config than this graph's: "
            f"{' | '.join(problems)}. Its outputs would mix two configs under one name; write "
            "the new config to a new run (-o without --extend-run, or --replace-run), or "
            "build the graph with the run's config (the -c overrides it was made with)."
        )


def write_init_outputs(graph: QuantumGraph, butler: Butler) -> None:
    """Write each task's config and the package versions into the graph's output run.

    The run must exist. What it holds already is kept: configs once found equal to the
    graph's (as :func:`check_init_outputs` checks), package versions with a warning naming
    the ones that changed. The dataset
    types are registered as needed (they are the framework's, so this needs no
    ``--register-dataset-types``).

    Raises
    ------
    PipelineError
        As :func:`check_init_outputs`.
    """
    configs = _task_configs(graph)
    if not configs:
        logger.debug("The graph carries no pipeline; no task configs are recorded")
        return
    run = graph.output_run
    stored_configs = _stored_configs(butler, configs, run)
    _refuse_changed(run, configs, stored_configs)
    packages = _packages(configs)
    # Each put is its own transaction: one enclosing them all would, rolled back (an
    # interrupt, a failed put), leave the files of the puts before it unregistered, in the
    # way of the next attempt. What an interrupted call stored is kept and not written again.
    for dataset_type in init_output_types(list(configs)):
        butler.registry.register_dataset_type(dataset_type)
    raced = False
    for label, entry in configs.items():
        if stored_configs[label] is None:
            raced |= _put_once(butler, entry, f"{label}{CONFIG_SUFFIX}", run)
    if raced:  # another command into the same run wrote a config first: it must be this one
        _refuse_changed(run, configs, _stored_configs(butler, configs, run))
    stored = _stored(butler, PACKAGES, run)
    if stored is None and _put_once(butler, packages, PACKAGES, run):
        stored = _stored(butler, PACKAGES, run)
    if stored is not None and stored != packages:
        changed = _differences(stored, packages)
        warnings.warn(
            f"Run {run!r} was started with other package versions ({'; '.join(changed)}); "
            "its 'packages' dataset keeps the first ones.",
            SpherexDaskWarning,
            stacklevel=2,
        )
