# SPDX-License-Identifier: BSD-3-Clause
"""Run one task on one data ID, without a cluster: the quickest way to test a new task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DatasetNotFoundError, MissingPrerequisiteError

if TYPE_CHECKING:
    from ..butler import Butler
    from ..pipeline import PipelineTask

__all__ = ["load_task_inputs", "run_task"]


def load_task_inputs(
    task: PipelineTask,
    butler: Butler,
    data_id: Mapping[str, Any],
    *,
    collections: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Read the inputs of ``task`` for the quantum ``data_id`` through the Butler.

    Regular inputs are looked up with the data ID (fan-in inputs, ``multiple=True``, get every
    dataset whose data ID matches it); prerequisite calibrations are found by the exposure's
    time in CALIBRATION collections.

    Raises
    ------
    DatasetNotFoundError
        Naming the connection whose input is missing.
    MissingPrerequisiteError
        If a prerequisite (calibration) input cannot be found.
    """
    colls = butler._collections(collections)
    expanded = butler.registry.expand_data_id(data_id)
    inputs: dict[str, Any] = {}
    for attr, conn in task.connections.items():
        if conn.kind == "output":
            continue
        if conn.multiple:
            given = {k: v for k, v in expanded.to_dict().items() if k in conn.dimensions}
            refs = list(butler.registry.query_datasets(conn.name, collections=colls,
                                                       data_id=given))
            if not refs:
                raise DatasetNotFoundError(
                    f"No {conn.name!r} datasets for input {attr!r} matching {given} in {colls}."
                )
            inputs[attr] = [butler.get(ref) for ref in refs]
            continue
        ref = butler.find_dataset(conn.name, expanded, collections=colls)
        if ref is None:
            error = MissingPrerequisiteError if conn.kind == "prerequisite" else DatasetNotFoundError
            raise error(
                f"No {conn.name!r} dataset for {conn.kind} {attr!r} of task {task.label!r} with "
                f"data ID {expanded!r} in collections {colls}."
            )
        inputs[attr] = butler.get(ref)
    return inputs


def run_task(
    task: PipelineTask,
    butler: Butler,
    data_id: Mapping[str, Any],
    *,
    collections: str | Sequence[str] | None = None,
    compute: bool = True,
) -> dict[str, Any]:
    """Run ``task`` on one data ID with inputs read from ``butler``; return its outputs.

    Nothing is written. With ``compute`` (default) lazy outputs are computed, so a test sees
    numbers (and any error) at once.

    Examples
    --------
    In a test, with the ``spherex_butler`` fixture of this plugin::

        from spherex_dask.pipeline.tasks import SubtractDarkTask
        from spherex_dask.testing import run_task

        def test_subtract(spherex_butler, spherex_data_ids):
            out = run_task(SubtractDarkTask(), spherex_butler, spherex_data_ids[0])
            assert out["output"].image.shape == (32, 32)
    """
    inputs = load_task_inputs(task, butler, data_id, collections=collections)
    outputs = task.run_quantum(inputs, data_id=butler.registry.expand_data_id(data_id))
    if compute:
        outputs = {k: v.compute() if hasattr(v, "compute") else v for k, v in outputs.items()}
    return outputs
