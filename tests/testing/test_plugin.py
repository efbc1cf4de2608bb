"""The pytest plugin and run_task, used the way a task author would."""

from __future__ import annotations

import numpy as np
import pytest

from spherex_dask.errors import DatasetNotFoundError, MissingPrerequisiteError
from spherex_dask.pipeline import Input, Output, PipelineTask
from spherex_dask.pipeline.tasks import StackTask, SubtractDarkTask
from spherex_dask.testing import run_task


def test_run_subtract_on_one_data_id(spherex_butler, spherex_data_ids) -> None:
    """A scientist tests the subtraction on one quantum in three lines."""
    data_id = spherex_data_ids[0]
    out = run_task(SubtractDarkTask(), spherex_butler, data_id)
    raw = spherex_butler.get("raw", data_id).image.values
    dark = spherex_butler.get("dark", data_id).image.values
    np.testing.assert_allclose(out["output"].image.values, raw - dark, rtol=1e-6)


def test_fan_in_reads_every_matching_dataset(spherex_butler, spherex_data_ids) -> None:
    """A multiple=True input gets every dataset matching the quantum's data ID."""

    class Mean(PipelineTask):
        dimensions = ("instrument", "detector")
        images = Input("raw", ("instrument", "exposure", "detector"), "SpectralImage",
                       multiple=True)
        mean = Output("raw_mean", ("instrument", "detector"), "SpectralImage")

        def run(self, images):
            return {"mean": sum(i.image for i in images) / len(images)}

    out = run_task(Mean(), spherex_butler, {"instrument": "SPHEREx", "detector": 2})
    raws = [spherex_butler.get("raw", d).image.values for d in spherex_data_ids
            if d["detector"] == 2]
    np.testing.assert_allclose(out["mean"].values, np.mean(raws, axis=0), rtol=1e-5)
    assert isinstance(StackTask(), PipelineTask)


def test_missing_inputs_are_named(spherex_butler, spherex_data_ids) -> None:
    """A missing raw or an uncertified dark is an error naming the connection."""
    with pytest.raises(DatasetNotFoundError, match="raw"):
        run_task(SubtractDarkTask(), spherex_butler, spherex_data_ids[0] | {"detector": 5})
    with pytest.raises(MissingPrerequisiteError, match="dark"):
        run_task(SubtractDarkTask(), spherex_butler, spherex_data_ids[0],
                 collections=["rawexpr"])


def test_client_fixture_runs_work(spherex_client) -> None:
    """spherex_client is a real distributed client with worker processes."""
    assert spherex_client.submit(sum, [1, 2, 3]).result() == 6
    assert len(spherex_client.scheduler_info()["workers"]) == 2
