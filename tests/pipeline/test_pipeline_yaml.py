# SPDX-License-Identifier: BSD-3-Clause
"""Pipeline YAML: loading, validation errors, overrides, subsets, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from spherex_dask.errors import PipelineDefinitionError
from spherex_dask.pipeline import Input, Output, Pipeline, PipelineTask, PrerequisiteInput

PIPELINES = Path(__file__).parents[2] / "pipelines"
SUBTRACT = "spherex_dask.pipeline.tasks.SubtractDarkTask"
STACK = "spherex_dask.pipeline.tasks.StackTask"
EXP = ("instrument", "exposure", "detector")
DET = ("instrument", "detector")


class A(PipelineTask):
    """x -> y."""

    dimensions = EXP
    x = Input("x", EXP, "SpectralImage")
    y = Output("y", EXP, "SpectralImage")


class B(PipelineTask):
    """y -> x, or y -> z with a different storage class."""

    dimensions = EXP
    y = Input("y", EXP, "SpectralImage")
    out = Output("x", EXP, "SpectralImage")


class Table(PipelineTask):
    """Reads y as a table."""

    dimensions = EXP
    y = Input("y", EXP, "Table")
    out = Output("t", EXP, "Table")


class UsesPrereq(PipelineTask):
    """Reads y as a calibration."""

    dimensions = EXP
    x = Input("x", EXP, "SpectralImage")
    y = PrerequisiteInput("y", EXP, "SpectralImage")
    out = Output("w", EXP, "SpectralImage")


def doc(**tasks):
    return {"tasks": {label: {"class": cls} for label, cls in tasks.items()}}


def test_shipped_pipelines_load():
    dark = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml")
    assert dark.task_labels == ("subtract", "stack")
    assert set(dark.dataset_types("input")) == {"raw"}
    assert set(dark.dataset_types("prerequisite")) == {"dark"}
    assert set(dark.dataset_types("intermediate")) == {"dark_subtracted"}
    assert set(dark.dataset_types("output")) == {"dark_subtracted", "dark_subtracted_stack"}
    assert dark.dataset_types()["dark"].is_calibration
    example = Pipeline.from_yaml(str(PIPELINES / "ExamplePipeline.yaml"))
    assert example.task_labels == ("subtract",)
    assert set(example.dataset_types()) == {"raw", "dark", "dark_subtracted"}
    with pytest.raises(ValueError, match=r"Unknown dataset type kind"):
        example.dataset_types("inputs")


def test_order_is_topological_whatever_the_file_order():
    p = Pipeline.from_yaml(f"tasks: {{stack: {STACK}, subtract: {SUBTRACT}}}")
    assert p.task_labels == ("subtract", "stack")
    assert p.producer_of("dark_subtracted") == "subtract"
    assert p.producer_of("raw") is None


def test_label_selection_in_path():
    path = f"{PIPELINES / 'DarkSubtraction.yaml'}#stack"
    assert Pipeline.from_yaml(path).task_labels == ("stack",)
    assert Pipeline.from_yaml(f"{PIPELINES / 'DarkSubtraction.yaml'}#processing").task_labels == (
        "subtract",
    )
    both = Pipeline.from_yaml(f"{PIPELINES / 'DarkSubtraction.yaml'}#subtract,stack")
    assert both.task_labels == ("subtract", "stack")
    with pytest.raises(
        PipelineDefinitionError, match=r"'nope' is neither a task label nor a subset.*processing"
    ):
        Pipeline.from_yaml(f"{PIPELINES / 'DarkSubtraction.yaml'}#nope")


def test_subsets():
    p = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml")
    processing = p.subset("processing")
    assert processing.task_labels == ("subtract",)
    assert set(processing.subsets) == {"processing"}
    assert set(p.subset("stacking").dataset_types("input")) == {"dark_subtracted"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[1, 2]", "the pipeline must be a mapping"),
        (
            "{tasks: {a: " + SUBTRACT + "}, extra: 1}",
            "unknown key.*extra.*valid keys: description, parameters",
        ),
        ("description: x", "'tasks' must be a non-empty mapping"),
        ("{tasks: {a: {clas: " + SUBTRACT + "}}}", "unknown key.*clas.*in task 'a'"),
        ("{tasks: {a: {config: {}}}}", "task 'a' has no 'class'"),
        (
            "{tasks: {a: {class: " + SUBTRACT + ", config: [1]}}}",
            "config of task 'a' must be a mapping",
        ),
        (
            "{tasks: {a: " + SUBTRACT + "}, subsets: {s: {subset: []}}}",
            "subset 's' needs a non-empty",
        ),
        (
            "{tasks: {a: " + SUBTRACT + "}, subsets: {s: [b]}}",
            "subset 's' names unknown task label.*b",
        ),
        (
            "{tasks: {a: " + SUBTRACT + "}, subsets: {a: [a]}}",
            "subset name 'a' is also a task label",
        ),
        ("{tasks: {a: " + SUBTRACT + "}, parameters: [1]}", "'parameters' must be a mapping"),
        ("tasks: {a: [", "not valid YAML"),
    ],
)
def test_structure_errors(raw, message):
    with pytest.raises(PipelineDefinitionError, match=message):
        Pipeline.from_yaml(raw if "\n" in raw or ":" in raw else raw + "\n")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(f"tasks:\n  sub:\n    class: {SUBTRACT}\n    config: {{calibration: dark}}\n")
    with pytest.raises(PipelineDefinitionError) as info:
        Pipeline.from_yaml(path)
    message = str(info.value)
    assert str(path) in message
    assert "task 'sub'" in message
    assert "unknown config field 'calibration'" in message
    assert "calibration_type" in message  # lists valid fields
    with pytest.raises(PipelineDefinitionError, match=r"does not exist"):
        Pipeline.from_yaml(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("spherex_dask.pipeline.tasks.NoSuchTask", "has no attribute 'NoSuchTask'.*StackTask"),
        ("no_such_package.tasks.Task", "no module of that path exists"),
        ("spherex_dask.pipeline.Pipeline", "is not a PipelineTask subclass"),
        ("NoDots", "no module of that path exists"),
    ],
)
def test_task_import_errors(path, message):
    with pytest.raises(PipelineDefinitionError, match=message):
        Pipeline.from_yaml(f"tasks: {{t: {path}}}")


def test_parameters_are_substituted():
    text = f"""
parameters: {{kind: bias}}
tasks:
  sub: {{class: {SUBTRACT}, config: {{calibration_type: parameters.kind}}}}
"""
    p = Pipeline.from_yaml(text)
    assert p["sub"].config.calibration_type == "bias"
    assert set(p.dataset_types()) == {"raw", "bias", "bias_subtracted"}
    with pytest.raises(
        PipelineDefinitionError, match=r"undefined parameter 'other'; defined parameters: kind"
    ):
        Pipeline.from_yaml(text.replace("parameters.kind", "parameters.other"))


def test_dotted_config_keys_as_in_the_proof_of_concept():
    p = Pipeline.from_yaml(
        f"tasks: {{sub: {{class: {SUBTRACT}, config: {{connections.raw: rawexp}}}}}}"
    )
    assert p["sub"].inputs["raw"].name == "rawexp"


def test_dimension_mismatch_between_producer_and_consumer():
    text = f"""
tasks:
  subtract: {SUBTRACT}
  stack: {{class: {STACK}, config: {{connections: {{images: dark}}}}}}
"""
    with pytest.raises(
        PipelineDefinitionError,
        match=r"'dark' has dimensions.*task 'subtract' prerequisite 'dark'.*task 'stack' input 'images'",
    ):
        Pipeline.from_yaml(text)


def test_storage_class_mismatch():
    with pytest.raises(
        PipelineDefinitionError,
        match=r"'y' has storage_class 'SpectralImage' in task 'a' output 'y' but 'Table'",
    ):
        Pipeline.from_dict(doc(a=A, t=Table))


def test_output_produced_twice():
    text = f"tasks: {{one: {SUBTRACT}, two: {SUBTRACT}}}"
    with pytest.raises(
        PipelineDefinitionError,
        match=r"'dark_subtracted' is an output of both task 'one'.*task 'two'",
    ):
        Pipeline.from_yaml(text)


def test_prerequisite_produced_in_pipeline():
    with pytest.raises(
        PipelineDefinitionError, match=r"'y' is produced by task 'a'.*prerequisite of task 'p'"
    ):
        Pipeline.from_dict(doc(a=A, p=UsesPrereq))


def test_cycle():
    with pytest.raises(PipelineDefinitionError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        Pipeline.from_dict(doc(a=A, b=B))


def test_task_dimension_rules():
    class NotFanIn(PipelineTask):
        dimensions = ("instrument", "detector")
        images = Input("raw", EXP, "SpectralImage")
        out = Output("o", ("instrument", "detector"), "SpectralImage")

    class Underived(PipelineTask):
        dimensions = EXP
        dark = Input("dark", DET, "SpectralImage")
        out = Output("o", EXP, "SpectralImage")

    class NoInput(PipelineTask):
        dimensions = EXP
        out = Output("o", EXP, "SpectralImage")

    class BadOutput(PipelineTask):
        dimensions = DET
        images = Input("raw", EXP, "SpectralImage", multiple=True)
        out = Output("o", EXP, "SpectralImage")

    class BadDims(PipelineTask):
        dimensions = ("instrument", "visit")
        x = Input("x", EXP, "SpectralImage")

    class SharedOutput(PipelineTask):  # each detector's quanta would write one dataset
        dimensions = EXP
        x = Input("x", EXP, "SpectralImage")
        out = Output("o", DET, "SpectralImage")

    cases = [
        (
            NotFanIn,
            "input 'images' \\(raw\\).*exposure is not among the task dimensions.*multiple=True",
        ),
        (Underived, "task dimension\\(s\\) exposure cannot be derived"),
        (NoInput, "has no regular Input"),
        (BadOutput, "output 'out' \\(o\\).*exposure is not among"),
        (BadDims, "unknown task dimension\\(s\\) visit"),
        (
            SharedOutput,
            "output 'out' \\(o\\) has dimensions \\(instrument, detector\\), which do not "
            "determine the task dimension\\(s\\) exposure",
        ),
    ]
    for cls, message in cases:
        with pytest.raises(PipelineDefinitionError, match=message):
            Pipeline.from_dict(doc(t=cls), source="test.yaml")


def test_in_code_pipeline_round_trips_through_yaml():
    p = Pipeline.from_dict(doc(a=A))
    again = Pipeline.from_yaml(p.to_yaml())
    assert again["a"].task_class is A or again["a"].class_path == p["a"].class_path


def test_yaml_round_trip():
    p = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml")
    p.apply_overrides(["stack:weighting=uniform"])
    again = Pipeline.from_yaml(p.to_yaml())
    assert again.to_yaml() == p.to_yaml()
    assert again.task_labels == p.task_labels
    assert again.parameters == p.parameters
    assert {lbl: n.config for lbl, n in again.tasks.items()} == {
        lbl: n.config for lbl, n in p.tasks.items()
    }
    assert again.subsets == p.subsets
    assert again["stack"].config.weighting == "uniform"


def test_apply_overrides():
    p = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml")
    result = p.apply_overrides(
        [
            "subtract:connections.raw=rawexp",
            "subtract:propagate_flags=false",
            "stack:weighting=uniform",
        ]
    )
    assert result is p
    assert p["subtract"].inputs["raw"].name == "rawexp"
    assert p["subtract"].config.propagate_flags is False
    assert p["stack"].config.weighting == "uniform"
    assert p.make_task("stack").config.weighting == "uniform"


def test_parameter_override_renames_everywhere():
    p = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml#processing")
    p.apply_overrides(["parameters:calibration_type=bias"])
    assert set(p.dataset_types()) == {"raw", "bias", "bias_subtracted"}
    p.apply_overrides(["subtract:calibration_type=parameters.calibration_type"])
    assert p["subtract"].config.calibration_type == "bias"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("nolabel:x=1", r"nolabel:x=1 names an unknown task label 'nolabel'; the labels of .*DarkSubtraction.yaml are subtract, stack"),
        ("stack:weighting=median", "stack.*field 'weighting'"),
        ("stack:nope=1", "unknown config field 'nope'.*valid fields: connections.images"),
        ("subtract-raw", "label:field=value"),
        ("stack:connections.images=dark", "'dark' has dimensions"),
        (
            "parameters:calibraton_type=flat",
            "no parameter 'calibraton_type'; its parameters: calibration_type",
        ),
    ],
)
def test_bad_overrides_leave_the_pipeline_unchanged(override, message):
    p = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml")
    before = p.to_yaml()
    with pytest.raises(PipelineDefinitionError, match=message):
        p.apply_overrides(["subtract:propagate_flags=false", override])
    assert p.to_yaml() == before
    assert p["subtract"].config.propagate_flags is True


def test_access():
    p = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml")
    assert len(p) == 2
    assert "stack" in p
    assert [n.label for n in p] == ["subtract", "stack"]
    assert "subtract" in repr(p)
    with pytest.raises(KeyError, match=r"labels: subtract, stack"):
        p["nope"]
    node = p["subtract"]
    assert set(node.inputs) == {"raw"}
    assert set(node.prerequisites) == {"dark"}
    assert set(node.outputs) == {"output"}
    assert node.dimensions == EXP
