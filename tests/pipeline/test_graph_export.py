# SPDX-License-Identifier: BSD-3-Clause
"""Quantum graph serialisation (JSON), DOT/PNG export, summaries and invariants."""

from __future__ import annotations

import json
import pickle
import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherex_dask.errors import PipelineError
from spherex_dask.pipeline import (
    Pipeline,
    Quantum,
    QuantumGraph,
    SkippedQuantum,
    build_quantum_graph,
    format_summary,
)
from spherex_dask.pipeline._dot import pipeline_to_dot
from spherex_dask.types import DataId, DatasetRef, DatasetType

PIPELINES = Path(__file__).parents[2] / "pipelines"


@pytest.fixture
def graph(make_registry):
    registry = make_registry(n_exposures=4, n_detectors=2, dark_detectors=[1])
    pipeline = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml")
    return build_quantum_graph(
        pipeline,
        registry,
        input_collections=["rawexpr", "calib"],
        output_run="out",
        where="exposure > 0",
    )


def assert_same_graph(a: QuantumGraph, b: QuantumGraph) -> None:
    assert [q.id for q in a] == [q.id for q in b]
    for qa, qb in zip(a, b, strict=True):
        assert qa == qb
        for field in ("inputs", "prerequisites", "outputs"):
            for conn, refs in getattr(qa, field).items():
                other = getattr(qb, field)[conn]
                assert [r.dataset_type for r in refs] == [r.dataset_type for r in other]
                assert [r.data_id.to_dict() for r in refs] == [r.data_id.to_dict() for r in other]
        assert a.dependencies(qa.id) == b.dependencies(qb.id)
    assert a.skipped == b.skipped
    assert a.pipeline_yaml == b.pipeline_yaml
    assert a.input_collections == b.input_collections
    assert a.output_run == b.output_run
    assert a.metadata == b.metadata


def test_json_round_trip(graph, tmp_path):
    path = tmp_path / "graph.json"
    graph.save(path)
    loaded = QuantumGraph.load(path)
    assert_same_graph(graph, loaded)
    assert loaded.pipeline.task_labels == ("subtract", "stack")
    assert loaded.dataset_types() == graph.dataset_types()
    assert loaded.dataset_types()["dark"].is_calibration
    assert {r.id for r in loaded.initial_inputs()} == {r.id for r in graph.initial_inputs()}
    data = json.loads(path.read_text())
    assert data["format"] == "spherex_dask.QuantumGraph"
    assert len(data["datasets"]) == len(
        {r.id for q in graph for r in (*q.input_refs(), *q.prerequisite_refs(), *q.output_refs())}
    )


def test_load_errors(tmp_path):
    with pytest.raises(PipelineError, match="does not exist"):
        QuantumGraph.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PipelineError, match="not valid JSON"):
        QuantumGraph.load(bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(PipelineError, match="Not a quantum graph"):
        QuantumGraph.load(bad)
    bad.write_text(json.dumps({"format": "spherex_dask.QuantumGraph", "version": 99}))
    with pytest.raises(PipelineError, match="version 99 is not supported"):
        QuantumGraph.load(bad)
    bad.write_text(json.dumps({"format": "spherex_dask.QuantumGraph", "version": 1}))
    with pytest.raises(PipelineError, match="Malformed"):
        QuantumGraph.load(bad)


def test_dot_has_task_and_dataset_nodes(graph, tmp_path):
    dot = graph.to_dot()
    assert dot.startswith("digraph QuantumGraph {")
    assert dot.count('shape=box, style="rounded,filled"') == len(graph)
    dataset_ids = {
        r.id for q in graph for r in (*q.input_refs(), *q.prerequisite_refs(), *q.output_refs())
    }
    assert dot.count("shape=ellipse") == len(dataset_ids)
    n_edges = sum(
        len(list(q.input_refs())) + len(list(q.prerequisite_refs())) + len(list(q.output_refs()))
        for q in graph
    )
    assert dot.count(" -> ") == n_edges
    assert dot.count("dashed") == len(graph.skipped)
    assert "skipped: missing_prerequisite" in dot
    path = tmp_path / "graph.dot"
    graph.write_dot(path)
    assert path.read_text() == dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")
@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_render_with_graphviz(graph, tmp_path, suffix, magic):
    path = graph.render(tmp_path / f"graph{suffix}")
    assert path.read_bytes().startswith(magic)


def test_render_errors(graph, tmp_path, monkeypatch):
    with pytest.raises(PipelineError, match="suffix"):
        graph.render(tmp_path / "graph")
    if shutil.which("dot"):
        with pytest.raises(PipelineError, match="failed"):
            graph.render(tmp_path / "graph.nosuchformat")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(PipelineError, match="graphviz 'dot' program is not on PATH"):
        graph.render(tmp_path / "graph.png")


def test_pipeline_dot():
    pipeline = Pipeline.from_yaml(PIPELINES / "DarkSubtraction.yaml")
    dot = pipeline.to_dot()
    assert dot == pipeline_to_dot(pipeline)
    assert '"t:subtract" -> "d:dark_subtracted";' in dot
    assert '"d:dark_subtracted" -> "t:stack";' in dot
    assert '"d:dark" -> "t:subtract";' in dot


def test_summary(graph):
    rows = graph.summary()
    assert [r.as_row() for r in rows] == [
        {
            "task": "subtract",
            "quanta": 4,
            "skipped": 4,
            "inputs": 4,
            "prerequisites": 1,
            "outputs": 4,
        },
        {"task": "stack", "quanta": 2, "skipped": 2, "inputs": 4, "prerequisites": 0, "outputs": 2},
    ]
    text = format_summary(rows)
    assert text.splitlines()[0].split() == [
        "task",
        "quanta",
        "skipped",
        "inputs",
        "prerequisites",
        "outputs",
    ]
    assert text.splitlines()[-1].split() == ["TOTAL", "6", "6", "8", "1", "6"]


def test_quanta_pickle(graph):
    quantum = next(iter(graph))
    assert pickle.loads(pickle.dumps(quantum)) == quantum
    assert hash(quantum) == hash(quantum.id)


def test_graph_without_pipeline():
    graph = QuantumGraph([])
    assert len(graph) == 0
    assert graph.task_labels == ()
    with pytest.raises(PipelineError, match="no pipeline definition"):
        _ = graph.pipeline
    with pytest.raises(ValueError, match="Unknown skip kind"):
        SkippedQuantum(task_label="a", data_id=DataId({}), kind="bored", reason="")


TYPE = DatasetType(
    name="thing", dimensions=("instrument", "detector"), storage_class="SpectralImage"
)


def _quantum(label: str, detector: int, inputs=(), run: str = "run") -> Quantum:
    data_id = DataId({"instrument": "SPHEREx", "detector": detector})
    out_type = DatasetType(
        name=f"{label}_out", dimensions=TYPE.dimensions, storage_class="SpectralImage"
    )
    out = DatasetRef.make(out_type, data_id, run)
    return Quantum(
        id=Quantum.make_id(label, data_id, run),
        task_label=label,
        data_id=data_id,
        inputs={"in": tuple(inputs)},
        outputs={"out": (out,)},
    )


def test_dependencies_from_refs_and_errors():
    a = _quantum("a", 1)
    b = _quantum("b", 1, inputs=a.outputs["out"])
    graph = QuantumGraph([b, a])
    assert [q.task_label for q in graph] == ["a", "b"]
    assert graph.dependencies(b.id) == {a.id}
    assert graph.dependents(a.id) == {b.id}
    assert a.id in graph
    assert graph[a.id] is a
    with pytest.raises(PipelineError, match="unknown quanta"):
        QuantumGraph([a], dependencies={a.id: [uuid.uuid4()]})
    with pytest.raises(PipelineError, match="cycle"):
        QuantumGraph([a, b], dependencies={a.id: [b.id], b.id: [a.id]})


values = st.one_of(st.integers(-(2**40), 2**40), st.text(min_size=0, max_size=8))
names = st.text(min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(-(2**40), 2**40), names),
        min_size=0,
        max_size=6,
        unique_by=lambda t: (t[0], t[1], t[2]),
    ),
    st.dictionaries(st.text(max_size=5), values, max_size=3),
)
def test_json_round_trip_property(items, metadata):
    quanta = []
    for label, detector, instrument in items:
        data_id = DataId({"instrument": instrument, "detector": detector})
        ref = DatasetRef.make(TYPE, data_id, "in")
        out = DatasetRef.make(
            DatasetType(
                name=f"{label}_out",
                dimensions=TYPE.dimensions,
                storage_class="X",
                is_calibration=label == "b",
            ),
            data_id,
            "run",
        )
        quanta.append(
            Quantum(
                id=Quantum.make_id(label, data_id, "run"),
                task_label=label,
                data_id=data_id,
                inputs={"in": (ref,)},
                prerequisites={"p": ()},
                outputs={"out": (out,)},
            )
        )
    skipped = [
        SkippedQuantum(
            task_label=label, data_id=DataId({"detector": d}), kind="missing_input", reason=str(x)
        )
        for label, d, x in items[:2]
    ]
    graph = QuantumGraph(
        quanta, skipped=skipped, input_collections=["x"], output_run="run", metadata=metadata
    )
    again = QuantumGraph.from_json_dict(json.loads(json.dumps(graph.to_json_dict())))
    assert_same_graph(graph, again)
