# SPDX-License-Identifier: BSD-3-Clause
"""Numerics, laziness and errors of the built-in tasks."""

from __future__ import annotations

import pickle

import cloudpickle
import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from spherex_dask.errors import PipelineError
from spherex_dask.pipeline.tasks import StackTask, SubtractDarkTask
from spherex_dask.types import DataId

SHAPE = (16, 12)


def image(
    seed: int, *, shape=SHAPE, flags: bool = True, variance: bool = True, attrs=None
) -> xr.Dataset:
    """A small dask-backed image dataset with image/flags/variance planes."""
    rng = np.random.default_rng(seed)
    planes = {"image": (("y", "x"), da.from_array(rng.normal(10, 2, shape).astype("f4"), chunks=8))}
    if flags:
        planes["flags"] = (
            ("y", "x"),
            da.from_array(rng.integers(0, 4, shape).astype("i4") << seed % 8, chunks=8),
        )
    if variance:
        planes["variance"] = (
            ("y", "x"),
            da.from_array(rng.uniform(0.5, 2.0, shape).astype("f4"), chunks=8),
        )
    coords = {"y": np.arange(shape[0]), "x": np.arange(shape[1])}
    return xr.Dataset(planes, coords=coords, attrs=attrs or {"DETECTOR": 3, "OBSID": f"obs{seed}"})


def test_subtract_dark_numerics_and_laziness():
    raw, dark = image(1), image(2, attrs={"DETECTOR": 3})
    with dask.config.set(scheduler="synchronous"):
        out = SubtractDarkTask().run(raw=raw, dark=dark)["output"]
        assert isinstance(out.image.data, da.Array)
        assert isinstance(out.flags.data, da.Array)
        assert isinstance(out.variance.data, da.Array)
        np.testing.assert_array_equal(out.image.values, raw.image.values - dark.image.values)
        np.testing.assert_array_equal(out.flags.values, raw.flags.values | dark.flags.values)
        np.testing.assert_allclose(out.variance.values, raw.variance.values + dark.variance.values)
    assert out.image.dtype == np.float32
    assert out.attrs["OBSID"] == "obs1"
    assert out.attrs["calibration_subtracted"] == "dark"
    np.testing.assert_array_equal(out.x.values, raw.x.values)


def test_subtract_dark_propagates_the_plane_that_exists():
    raw, dark = image(1, flags=False, variance=False), image(2)
    out = SubtractDarkTask().run(raw=raw, dark=dark)["output"]
    np.testing.assert_array_equal(out.flags.values, dark.flags.values)
    np.testing.assert_array_equal(out.variance.values, dark.variance.values)
    out = SubtractDarkTask().run(raw=image(1, variance=False), dark=image(2, variance=False))[
        "output"
    ]
    assert "variance" not in out


def test_subtract_dark_can_skip_propagation():
    task = SubtractDarkTask(config={"propagate_flags": False, "propagate_variance": False})
    raw, dark = image(1), image(2)
    out = task.run(raw=raw, dark=dark)["output"]
    np.testing.assert_array_equal(out.flags.values, raw.flags.values)
    np.testing.assert_array_equal(out.variance.values, raw.variance.values)


def test_subtract_dark_shape_mismatch_names_shapes_and_data_id():
    task = SubtractDarkTask(label="subtract")
    data_id = DataId({"instrument": "SPHEREx", "exposure": 7, "detector": 3})
    with pytest.raises(PipelineError, match=r"\(16, 12\).*\(8, 8\)") as info:
        task.run_quantum({"raw": image(1), "dark": image(2, shape=(8, 8))}, data_id=data_id)
    message = str(info.value)
    assert "exposure: 7" in message
    assert "OBSID=obs1" in message


def test_subtract_dark_rejects_non_images():
    with pytest.raises(PipelineError, match=r"no 'image' variable"):
        SubtractDarkTask().run(raw=xr.Dataset({"data": (("y",), np.zeros(3))}), dark=image(1))
    with pytest.raises(PipelineError, match=r"must be an xarray.Dataset"):
        SubtractDarkTask().run(raw=np.zeros(3), dark=image(1))


def test_stack_inverse_variance_mean_matches_numpy():
    images = [image(s) for s in range(4)]
    img = np.stack([d.image.values.astype("f8") for d in images])
    var = np.stack([d.variance.values.astype("f8") for d in images])
    weights = 1.0 / var
    with dask.config.set(scheduler="synchronous"):
        out = StackTask().run(images=images)["stack"]
        assert all(isinstance(out[v].data, da.Array) for v in ("image", "variance", "flags"))
        np.testing.assert_allclose(
            out.image.values, (weights * img).sum(0) / weights.sum(0), rtol=1e-6
        )
        np.testing.assert_allclose(out.variance.values, 1.0 / weights.sum(0), rtol=1e-6)
        expected_flags = np.bitwise_or.reduce(np.stack([d.flags.values for d in images]))
        np.testing.assert_array_equal(out.flags.values, expected_flags)
    assert out.image.dtype == np.float32
    assert out.flags.dtype == np.int32
    assert out.attrs == {"DETECTOR": 3, "n_images": 4}


def test_stack_is_lazy_even_for_numpy_inputs():
    images = [image(s).compute() for s in range(2)]
    out = StackTask().run(images=images)["stack"]
    assert isinstance(out.image.data, da.Array)


def test_stack_gives_zero_weight_to_bad_pixels():
    a, b = image(1).compute(), image(2).compute()
    a.image[0, 0] = np.nan
    a.variance[0, 1] = 0.0
    b.variance[0, 0] = np.inf
    out = StackTask().run(images=[a, b])["stack"].compute()
    assert np.isnan(out.image.values[0, 0])
    assert np.isnan(out.variance.values[0, 0])
    assert out.image.values[0, 1] == pytest.approx(b.image.values[0, 1])
    assert out.variance.values[0, 1] == pytest.approx(b.variance.values[0, 1])


def test_stack_uniform_weighting():
    images = [image(s, variance=s != 1) for s in range(3)]
    with pytest.raises(PipelineError, match=r"weighting: uniform"):
        StackTask().run(images=images)
    out = StackTask(config={"weighting": "uniform"}).run(images=images)["stack"]
    expected = np.mean([d.image.values.astype("f8") for d in images], axis=0)
    np.testing.assert_allclose(out.image.values, expected, rtol=1e-6)
    assert "variance" not in out


def test_stack_errors():
    with pytest.raises(PipelineError, match=r"no images"):
        StackTask().run(images=[])
    with pytest.raises(PipelineError, match=r"shapes differ.*\(16, 12\).*\(8, 8\)"):
        StackTask().run(images=[image(1), image(2, shape=(8, 8))])


def test_run_quantum_checks_connection_names():
    task = StackTask(label="stack")
    with pytest.raises(PipelineError, match=r"missing \['images'\]"):
        task.run_quantum({"imgs": [image(1)]})
    with pytest.raises(PipelineError, match=r"needs a sequence"):
        task.run_quantum({"images": image(1)})
    out = task.run_quantum({"images": [image(1)]})
    assert set(out) == {"stack"}


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_tasks_pickle_with_their_config(dumps):
    task = SubtractDarkTask(
        config={"calibration_type": "bias", "connections": {"raw": "rawexp"}}, label="sub"
    )
    copy = pickle.loads(dumps(task))
    assert type(copy) is SubtractDarkTask
    assert copy.label == "sub"
    assert copy.config == task.config
    assert copy.connections == task.connections
    assert copy.connections["dark"].name == "bias"
    assert pickle.loads(dumps(task.config)) == task.config
    stack = pickle.loads(dumps(StackTask(config={"weighting": "uniform"})))
    assert stack.config.weighting == "uniform"
