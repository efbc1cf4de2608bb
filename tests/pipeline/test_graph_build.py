# SPDX-License-Identifier: BSD-3-Clause
"""Building quantum graphs against a real (SQLite) registry."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from spherex_dask.errors import (
    DatasetTypeConflictError,
    MissingDatasetTypeError,
    MissingPrerequisiteError,
    PipelineDefinitionError,
    PipelineError,
)
from spherex_dask.pipeline import Input, Pipeline, Quantum, build_quantum_graph
from spherex_dask.pipeline._dot import graph_to_dot
from spherex_dask.pipeline._graph_io import graph_from_json, graph_to_json
from spherex_dask.pipeline.tasks import StackTask, SubtractDarkTask
from spherex_dask.types import DataId, DatasetRef, DatasetType, Timespan

from .conftest import START

PIPELINES = Path(__file__).parents[2] / "pipelines"
INPUTS = ["rawexpr", "calib"]


def dark_pipeline(*select: str) -> Pipeline:
    return Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml").subset(
        *select or ("subtract", "stack")
    )


def exp_id(exposure: int, detector: int) -> DataId:
    return DataId({"instrument": "SPHEREx", "exposure": exposure, "detector": detector})


def test_build_dark_subtraction_and_stack(make_registry):
    registry = make_registry(n_exposures=4, n_detectors=2, per_period=2)
    graph = build_quantum_graph(
        dark_pipeline(), registry, input_collections=INPUTS, output_run="out/run1"
    )
    subtract, stack = graph.quanta_for_task("subtract"), graph.quanta_for_task("stack")
    assert len(subtract) == 8
    assert len(stack) == 4
    assert graph.skipped == ()
    assert {q.data_id for q in subtract} == {exp_id(e, d) for e in range(1, 5) for d in (1, 2)}
    darks = {
        d: registry.find_dataset(
            "dark", {"instrument": "SPHEREx", "detector": d}, collections=["darkr"]
        )
        for d in (1, 2)
    }
    for q in subtract:
        (raw,) = q.inputs["raw"]
        assert raw.run == "rawexpr"
        assert raw.data_id == q.data_id
        assert q.prerequisites["dark"] == (darks[q.data_id["detector"]],)
        (out,) = q.outputs["output"]
        assert out.run == "out/run1"
        assert out.dataset_type.name == "dark_subtracted"
        assert out == DatasetRef.make(out.dataset_type, q.data_id, "out/run1")
        assert graph.dependencies(q.id) == frozenset()
    by_output = {q.outputs["output"][0].id: q for q in subtract}
    for q in stack:
        assert set(q.data_id) == {"instrument", "detector", "planning_period"}
        images = q.inputs["images"]
        period = q.data_id["planning_period"]
        expected = {1: (1, 2), 2: (3, 4)}[int(period[1:])]
        assert [r.data_id["exposure"] for r in images] == list(expected)
        assert {r.data_id["detector"] for r in images} == {q.data_id["detector"]}
        assert graph.dependencies(q.id) == {by_output[r.id].id for r in images}
        assert q.outputs["stack"][0].data_id == q.data_id
    first = subtract[0]
    assert len(graph.dependents(first.id)) == 1
    order = [q.id for q in graph]
    assert all(order.index(d) < order.index(q.id) for q in graph for d in graph.dependencies(q.id))


def test_graph_is_deterministic(make_registry):
    registry = make_registry()
    a = build_quantum_graph(dark_pipeline(), registry, input_collections=INPUTS, output_run="out")
    b = build_quantum_graph(dark_pipeline(), registry, input_collections=INPUTS, output_run="out")
    assert [q.id for q in a] == [q.id for q in b]
    assert [q.outputs for q in a] == [q.outputs for q in b]
    q = next(iter(a))
    assert q.id == Quantum.make_id("subtract", q.data_id, "out")


def test_dark_is_chosen_by_exposure_time(make_registry):
    registry = make_registry(
        n_exposures=4,
        n_detectors=1,
        dark_validity=Timespan(START, START + timedelta(hours=2, minutes=30)),
    )
    registry.register_run("darkr2")
    (late,) = registry.insert_datasets("dark", [{"instrument": "SPHEREx", "detector": 1}], "darkr2")
    registry.certify("calib", [late], Timespan(START + timedelta(hours=2, minutes=30), None))
    graph = build_quantum_graph(
        dark_pipeline("subtract"), registry, input_collections=INPUTS, output_run="out"
    )
    runs = {q.data_id["exposure"]: q.prerequisites["dark"][0].run for q in graph}
    assert runs == {1: "darkr", 2: "darkr", 3: "darkr2", 4: "darkr2"}


def test_missing_prerequisite_is_reported_and_skips_downstream(make_registry, caplog):
    registry = make_registry(n_exposures=4, n_detectors=2, dark_detectors=[1])
    graph = build_quantum_graph(
        dark_pipeline(), registry, input_collections=INPUTS, output_run="out"
    )
    assert {q.data_id["detector"] for q in graph} == {1}
    assert len(graph) == 4 + 2
    kinds = sorted((s.task_label, s.kind) for s in graph.skipped)
    assert kinds == [("stack", "upstream_skipped")] * 2 + [("subtract", "missing_prerequisite")] * 4
    missing = next(s for s in graph.skipped if s.task_label == "subtract")
    assert missing.data_id["detector"] == 2
    assert "no dark {detector: 2, instrument: 'SPHEREx'}" in missing.reason
    assert "calib" in missing.reason
    upstream = next(s for s in graph.skipped if s.task_label == "stack")
    assert "dark_subtracted" in upstream.reason
    assert "missing_prerequisite" in upstream.reason
    assert "cannot run and were skipped" in caplog.text
    rows = {r.task: r for r in graph.summary()}
    assert (rows["subtract"].quanta, rows["subtract"].skipped) == (4, 4)
    assert (rows["stack"].quanta, rows["stack"].skipped) == (2, 2)


def test_missing_prerequisite_raises_with_fail_on_missing(make_registry):
    registry = make_registry(n_exposures=2, n_detectors=2, dark_detectors=[2])
    with pytest.raises(
        MissingPrerequisiteError,
        match=r"'subtract'.*detector: 1.*prerequisite 'dark': no dark.*without --fail-on-missing",
    ):
        build_quantum_graph(
            dark_pipeline(),
            registry,
            input_collections=INPUTS,
            output_run="out",
            fail_on_missing=True,
        )


def test_dark_outside_validity_is_missing(make_registry):
    registry = make_registry(
        n_exposures=3,
        n_detectors=1,
        dark_validity=Timespan(START, START + timedelta(hours=1, minutes=30)),
    )
    graph = build_quantum_graph(
        dark_pipeline("subtract"), registry, input_collections=INPUTS, output_run="out"
    )
    assert [q.data_id["exposure"] for q in graph] == [1]
    assert [s.data_id["exposure"] for s in graph.skipped] == [2, 3]
    assert "valid in [2025-05-01T02:00:00+00:00" in graph.skipped[0].reason


class StackOfTwoOrMore(StackTask):
    images = Input(
        "dark_subtracted",
        ("instrument", "exposure", "detector"),
        "SpectralImage",
        multiple=True,
        minimum=2,
    )


def test_fan_in_runs_without_inputs_a_skipped_quantum_would_make(make_registry, caplog):
    """No dark for exposure 1: its subtract quanta are skipped, and the stack of its planning
    period runs on exposure 2 alone, saying so; with minimum=2 that stack is skipped."""
    caplog.set_level("INFO", logger="spherex_dask.pipeline")
    registry = make_registry(
        n_exposures=4,
        n_detectors=1,
        per_period=2,
        dark_validity=Timespan(START + timedelta(hours=1, minutes=30), None),
    )
    graph = build_quantum_graph(
        dark_pipeline(), registry, input_collections=INPUTS, output_run="out"
    )
    assert [(s.task_label, s.data_id["exposure"]) for s in graph.skipped] == [("subtract", 1)]
    stacks = {q.data_id["planning_period"]: q for q in graph.quanta_for_task("stack")}
    assert [r.data_id["exposure"] for r in stacks["P1"].inputs["images"]] == [2]
    assert [r.data_id["exposure"] for r in stacks["P2"].inputs["images"]] == [3, 4]
    (reason,) = stacks["P1"].left_out
    assert reason == (
        "dark_subtracted {detector: 1, exposure: 1, instrument: 'SPHEREx'}: "
        "its subtract quantum was skipped (missing_prerequisite)"
    )
    assert stacks["P2"].left_out == ()
    assert "runs without 1 input(s)" in caplog.text
    (p1_subtract,) = [q for q in graph.quanta_for_task("subtract") if q.data_id["exposure"] == 2]
    assert graph.dependencies(stacks["P1"].id) == {p1_subtract.id}
    again = graph_from_json(json.loads(json.dumps(graph_to_json(graph))))
    assert {q.id: q.left_out for q in again} == {q.id: q.left_out for q in graph}
    assert "without 1 input(s)" in graph_to_dot(graph)

    strict = Pipeline.from_dict(
        {
            "tasks": {
                "subtract": {"class": SubtractDarkTask},
                "stack": {"class": StackOfTwoOrMore},
            }
        }
    )
    graph = build_quantum_graph(strict, registry, input_collections=INPUTS, output_run="out")
    assert [q.data_id["planning_period"] for q in graph.quanta_for_task("stack")] == ["P2"]
    (skipped,) = [s for s in graph.skipped if s.task_label == "stack"]
    assert skipped.data_id["planning_period"] == "P1"
    assert skipped.kind == "upstream_skipped"
    assert "only 1 of 2 dark_subtracted input(s) can be had, fewer than the minimum of 2" in (
        skipped.reason
    )


def test_minimum_is_for_fan_ins_only():
    with pytest.raises(PipelineDefinitionError, match="needs multiple=True"):
        Input("raw", ("instrument", "exposure", "detector"), "SpectralImage", minimum=2)
    with pytest.raises(PipelineDefinitionError, match="integer >= 1"):
        Input("raw", ("instrument",), "SpectralImage", multiple=True, minimum=0)


def test_example_pipeline_with_darks_in_a_run(make_registry):
    registry = make_registry(n_exposures=2, n_detectors=3, darks_in_run=True)
    pipeline = Pipeline.from_yaml(PIPELINES / "ExamplePipeline.yaml")
    graph = build_quantum_graph(
        pipeline, registry, input_collections=["rawexpr", "darkr"], output_run="subtractr"
    )
    assert len(graph) == 6
    assert all(q.prerequisites["dark"][0].run == "darkr" for q in graph)
    assert graph.input_collections == ("rawexpr", "darkr")
    assert graph.output_run == "subtractr"


def test_where_and_data_id_restrict(make_registry):
    registry = make_registry(n_exposures=4, n_detectors=3)
    graph = build_quantum_graph(
        dark_pipeline(),
        registry,
        input_collections=INPUTS,
        output_run="out",
        where="detector = 2 AND exposure > 1",
    )
    assert sorted(q.data_id["exposure"] for q in graph.quanta_for_task("subtract")) == [2, 3, 4]
    assert {q.data_id["detector"] for q in graph} == {2}
    assert [len(q.inputs["images"]) for q in graph.quanta_for_task("stack")] == [1, 2]
    graph = build_quantum_graph(
        dark_pipeline(),
        registry,
        input_collections=INPUTS,
        output_run="out",
        data_id={"detector": 3},
    )
    assert {q.data_id["detector"] for q in graph} == {3}
    assert len(graph.quanta_for_task("stack")) == 2
    graph = build_quantum_graph(
        dark_pipeline(),
        registry,
        input_collections=INPUTS,
        output_run="out",
        where="exposure.obs_id = obsid",
        bind={"obsid": "obs00003"},
    )
    assert [q.data_id["exposure"] for q in graph.quanta_for_task("subtract")] == [3, 3, 3]
    assert graph.metadata["where"] == "exposure.obs_id = obsid"


def test_empty_graph_when_nothing_matches(make_registry, caplog):
    registry = make_registry()
    graph = build_quantum_graph(
        dark_pipeline(),
        registry,
        input_collections=INPUTS,
        output_run="out",
        where="exposure > 100",
    )
    assert len(graph) == 0
    assert "empty" in caplog.text


def test_skip_existing_in(make_registry):
    registry = make_registry(n_exposures=2, n_detectors=1, per_period=2)
    subtracted = dark_pipeline().dataset_types()["dark_subtracted"]
    registry.register_dataset_type(subtracted)
    registry.register_run("out")
    (done,) = registry.insert_datasets("dark_subtracted", [exp_id(1, 1)], "out")
    graph = build_quantum_graph(
        dark_pipeline(),
        registry,
        input_collections=INPUTS,
        output_run="out",
        skip_existing_in=["out"],
    )
    assert [q.data_id["exposure"] for q in graph.quanta_for_task("subtract")] == [2]
    assert [(s.kind, s.data_id["exposure"]) for s in graph.skipped] == [("outputs_exist", 1)]
    (stack,) = graph.quanta_for_task("stack")
    assert stack.inputs["images"][0] == done
    assert len(graph.dependencies(stack.id)) == 1


def test_registry_dataset_type_must_agree(make_registry):
    registry = make_registry()
    registry.register_dataset_type(
        DatasetType(
            name="dark_subtracted",
            dimensions=("instrument", "exposure", "detector"),
            storage_class="Table",
        )
    )
    with pytest.raises(
        DatasetTypeConflictError,
        match=r"'dark_subtracted'.*'Table', but the pipeline \(subtract.output, stack.images\) "
        r"uses .*'SpectralImage'",
    ):
        build_quantum_graph(dark_pipeline(), registry, input_collections=INPUTS, output_run="out")


def test_unregistered_input_type(make_registry):
    registry = make_registry()
    pipeline = dark_pipeline().apply_overrides(["subtract:connections.raw=rawexp"])
    with pytest.raises(MissingDatasetTypeError) as info:
        build_quantum_graph(pipeline, registry, input_collections=INPUTS, output_run="out")
    assert "needs 'rawexp' as an input" in "\n".join(getattr(info.value, "__notes__", []))


def test_input_collections_required(make_registry):
    with pytest.raises(PipelineError, match="No input collections"):
        build_quantum_graph(
            dark_pipeline(), make_registry(), input_collections=[], output_run="out"
        )


class BatchingRegistry:
    """A registry wrapper that offers a batched find_datasets and counts the calls."""

    def __init__(self, registry):
        self._registry = registry
        self.batches = []

    def __getattr__(self, name):
        return getattr(self._registry, name)

    def find_datasets(self, dataset_type, data_ids, *, collections, timespans):
        self.batches.append(len(data_ids))
        return [
            self._registry.find_dataset(dataset_type, d, collections=collections, timespan=t)
            for d, t in zip(data_ids, timespans, strict=True)
        ]


def test_prerequisites_are_looked_up_in_one_batch(make_registry):
    registry = BatchingRegistry(make_registry(n_exposures=3, n_detectors=2))
    graph = build_quantum_graph(
        dark_pipeline(), registry, input_collections=INPUTS, output_run="out"
    )
    assert registry.batches == [6]
    assert all(q.prerequisites["dark"] for q in graph.quanta_for_task("subtract"))


def test_fan_in_from_existing_datasets(make_registry):
    """The stack alone reads dark_subtracted from the registry, grouped by implied planning period."""
    registry = make_registry(n_exposures=6, n_detectors=2, per_period=3)
    registry.register_dataset_type(dark_pipeline().dataset_types()["dark_subtracted"])
    registry.register_run("sub")
    registry.insert_datasets(
        "dark_subtracted", [exp_id(e, d) for e in range(1, 7) for d in (1, 2)], "sub"
    )
    graph = build_quantum_graph(
        dark_pipeline("stacking"), registry, input_collections=["sub"], output_run="out"
    )
    assert len(graph) == 4
    for q in graph:
        exposures = [r.data_id["exposure"] for r in q.inputs["images"]]
        assert exposures == ([1, 2, 3] if q.data_id["planning_period"] == "P1" else [4, 5, 6])
        assert all(r.run == "sub" for r in q.inputs["images"])
        assert graph.dependencies(q.id) == frozenset()
    restricted = build_quantum_graph(
        dark_pipeline(),
        registry,
        input_collections=["rawexpr", "calib"],
        output_run="out",
        data_id={"planning_period": "P2"},
    )
    assert {q.data_id["exposure"] for q in restricted.quanta_for_task("subtract")} == {4, 5, 6}
    assert {q.data_id["planning_period"] for q in restricted.quanta_for_task("stack")} == {"P2"}
    where = build_quantum_graph(
        dark_pipeline("stacking"),
        registry,
        input_collections=["sub"],
        output_run="out",
        where="planning_period = 'P1' AND detector = 1",
    )
    assert [q.data_id.to_dict() for q in where] == [
        {"instrument": "SPHEREx", "detector": 1, "planning_period": "P1"}
    ]
