# SPDX-License-Identifier: BSD-3-Clause
"""Connections, task configs and config overrides."""

from __future__ import annotations

import pytest
from pydantic import Field

from spherex_dask.errors import PipelineDefinitionError
from spherex_dask.pipeline import Input, Output, PipelineTask, PipelineTaskConfig, PrerequisiteInput
from spherex_dask.pipeline._config import (
    coerce_override,
    config_field_paths,
    expand_dotted,
    parse_override,
)
from spherex_dask.pipeline.tasks import StackTask, SubtractDarkTask

DIMS = ("instrument", "exposure", "detector")


class ScaleConfig(PipelineTaskConfig):
    """Test config."""

    scale: float = 1.0
    suffix: str = "scaled"
    levels: list[int] = Field(default_factory=lambda: [1, 2])


class ScaleTask(PipelineTask):
    """A task whose output name is templated from its config."""

    ConfigClass = ScaleConfig
    dimensions = DIMS
    image = Input("raw", DIMS, "SpectralImage")
    result = Output("raw_{suffix}", DIMS, "SpectralImage")

    def run(self, *, image):
        return {"result": image}


def test_connections_are_collected_with_default_names():
    assert list(ScaleTask.connection_declarations) == ["image", "result"]
    task = ScaleTask()
    assert task.connections["result"].name == "raw_scaled"
    assert task.connections["image"].dimensions == ("instrument", "detector", "exposure")
    assert task.config.connections.image == "raw"


def test_config_overrides_names_and_fields():
    task = ScaleTask(config={"suffix": "x2", "scale": "2", "connections": {"image": "rawexp"}})
    assert task.config.scale == 2.0
    assert task.connections["image"].name == "rawexp"
    assert task.connections["result"].name == "raw_x2"


def test_unknown_config_field_lists_valid_fields():
    with pytest.raises(PipelineDefinitionError, match=r"unknown config field 'scal'") as info:
        ScaleTask(config={"scal": 2})
    assert "connections.image" in str(info.value)
    assert "scale" in str(info.value)
    with pytest.raises(PipelineDefinitionError, match=r"unknown config field 'connections.imag'"):
        ScaleTask(config={"connections": {"imag": "x"}})


def test_wrong_type_names_the_field():
    with pytest.raises(PipelineDefinitionError, match=r"field 'scale'.*'abc'"):
        ScaleTask(config={"scale": "abc"})


def test_unknown_template_field():
    with pytest.raises(
        PipelineDefinitionError, match=r"unknown field.*nope.*usable in names: scale, suffix"
    ):
        ScaleTask(config={"connections": {"result": "{nope}_x"}})
    with pytest.raises(PipelineDefinitionError, match=r"not a valid template"):
        ScaleTask(config={"connections": {"result": "{oops"}})
    with pytest.raises(PipelineDefinitionError, match=r"not a valid dataset type name"):
        ScaleTask(config={"connections": {"result": "bad name"}})


def test_connection_declaration_errors():
    with pytest.raises(PipelineDefinitionError, match=r"only allowed on Input"):
        Output("x", DIMS, "SpectralImage", multiple=True)
    with pytest.raises(PipelineDefinitionError, match=r"only allowed on Input"):
        PrerequisiteInput("x", DIMS, "SpectralImage", multiple=True)
    with pytest.raises(PipelineDefinitionError, match=r"sequence of dimension names"):
        Input("x", "detector", "SpectralImage")
    with pytest.raises(PipelineDefinitionError, match=r"storage_class"):
        Input("x", DIMS, "")


def test_unknown_dimension_in_connection():
    class BadTask(PipelineTask):
        dimensions = DIMS
        image = Input("raw", ("instrument", "visit"), "SpectralImage")

    with pytest.raises(PipelineDefinitionError, match=r"unknown dimension.*visit"):
        BadTask()


def test_reserved_connection_name():
    with pytest.raises(PipelineDefinitionError, match=r"'config' is reserved"):

        class Bad(PipelineTask):
            dimensions = DIMS
            config = Input("raw", DIMS, "SpectralImage")  # type: ignore[assignment]


@pytest.mark.parametrize("name", ["json", "model_input", "_hidden", "run"])
def test_names_clashing_with_the_config_model_are_reserved(name):
    namespace = {"dimensions": DIMS, name: Input("raw", DIMS, "SpectralImage")}
    with pytest.raises(PipelineDefinitionError, match=f"'{name}' is reserved"):
        type("Clash", (PipelineTask,), namespace)


def test_config_class_must_derive_from_base():
    with pytest.raises(PipelineDefinitionError, match=r"must subclass PipelineTaskConfig"):

        class Bad(PipelineTask):
            ConfigClass = dict  # type: ignore[assignment]
            dimensions = DIMS


def test_subclass_inherits_and_extends_connections():
    class Extended(ScaleTask):
        extra = Output("extra", DIMS, "SpectralImage")

    task = Extended(config={"scale": 3})
    assert set(task.connections) == {"image", "result", "extra"}
    assert task.config.scale == 3
    assert "extra" not in ScaleTask.ConfigClass.model_fields["connections"].annotation.model_fields


def test_run_not_implemented():
    class NoRun(PipelineTask):
        dimensions = DIMS
        image = Input("raw", DIMS, "SpectralImage")

    with pytest.raises(NotImplementedError):
        NoRun().run(image=None)


def test_config_instance_of_another_class_is_revalidated():
    config = StackTask.ConfigClass(weighting="uniform")
    with pytest.raises(PipelineDefinitionError, match=r"unknown config field 'weighting'"):
        SubtractDarkTask(config=config)


def test_builtin_task_connection_names():
    sub = SubtractDarkTask()
    assert {a: c.name for a, c in sub.connections.items()} == {
        "raw": "raw",
        "dark": "dark",
        "output": "dark_subtracted",
    }
    assert sub.connections["dark"].kind == "prerequisite"
    assert sub.connections["dark"].dataset_type.is_calibration
    stack = StackTask()
    assert stack.connections["images"].multiple
    assert stack.connections["stack"].dimensions == ("instrument", "detector", "planning_period")


def test_parse_override():
    assert parse_override("a:b.c=1=2") == ("a", "b.c", "1=2")
    for bad in ["nolabel=1", "a:b", ":b=1", "a:=1"]:
        with pytest.raises(PipelineDefinitionError, match=r"label:field=value"):
            parse_override(bad)


def test_coerce_override_types():
    cls = ScaleTask.ConfigClass
    assert coerce_override(cls, {}, "scale", "2.5", context="t") == 2.5
    assert coerce_override(cls, {}, "suffix", "01", context="t") == "01"
    assert coerce_override(cls, {}, "suffix", "true", context="t") == "true"
    assert coerce_override(cls, {}, "levels", "[3, 4]", context="t") == [3, 4]
    assert coerce_override(cls, {}, "connections.image", "123", context="t") == "123"
    with pytest.raises(PipelineDefinitionError, match=r"field 'scale'"):
        coerce_override(cls, {}, "scale", "big", context="t")
    with pytest.raises(PipelineDefinitionError, match=r"unknown config field 'nope'"):
        coerce_override(cls, {}, "nope", "1", context="t")


def test_expand_dotted_and_field_paths():
    assert expand_dotted({"a.b": 1, "a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}
    assert config_field_paths(ScaleTask.ConfigClass) == [
        "connections.image",
        "connections.result",
        "levels",
        "scale",
        "suffix",
    ]
