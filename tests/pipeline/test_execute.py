# SPDX-License-Identifier: BSD-3-Clause
"""Running quantum graphs on a real ``distributed`` cluster (2 worker processes)."""

from __future__ import annotations

import asyncio
import os
import pickle
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace

import dask
import distributed
import numpy as np
import pytest

from spherex_dask.butler import Butler
from spherex_dask.errors import (
    DatasetConflictError,
    MissingDatasetTypeError,
    PipelineError,
    UnknownFormatterError,
)
from spherex_dask.ingest import ingest_simulated
from spherex_dask.pipeline import (
    Output,
    Pipeline,
    apply_outputs,
    build_quantum_graph,
    check_prunable,
    plan_outputs,
    prune_replaced,
    run_quantum_graph,
)
from spherex_dask.pipeline._execute import _dask_failure, _exception
from spherex_dask.pipeline._prepare import make_jobs
from spherex_dask.pipeline._worker import QuantumJob, QuantumResult, execute_quantum, put_output
from spherex_dask.pipeline.tasks import StackTask, SubtractDarkConfig, SubtractDarkTask
from spherex_dask.sim import simulate
from spherex_dask.types import CollectionType, Timespan

PIPELINES = Path(__file__).parents[2] / "pipelines"
INPUTS = ["rawexpr", "calib"]


class FailingSubtractTask(SubtractDarkTask):
    """Subtracts the dark, but raises for detector 2 (the data ID is in the raw's header)."""

    def run(self, *, raw, dark):  # type: ignore[override]
        if int(raw.attrs.get("DETECTOR", 0)) == 2:
            raise RuntimeError("detector 2 is broken")
        return super().run(raw=raw, dark=dark)


class BrokenConfig(SubtractDarkConfig):
    broken_marker: str = ""


class BrokenWhileMarkedTask(SubtractDarkTask):
    """Raises for detector 2 while its marker file exists: a bug, fixed by removing it."""

    ConfigClass = BrokenConfig

    def run(self, *, raw, dark):  # type: ignore[override]
        if Path(self.config.broken_marker).exists() and int(raw.attrs.get("DETECTOR", 0)) == 2:
            raise RuntimeError("detector 2 is broken")
        return super().run(raw=raw, dark=dark)


class KillOnceConfig(SubtractDarkConfig):
    marker: str = ""


class KillOnceSubtractTask(SubtractDarkTask):
    """Kills its own worker process the first time it runs (a marker file remembers)."""

    ConfigClass = KillOnceConfig

    def run(self, *, raw, dark):  # type: ignore[override]
        marker = Path(self.config.marker)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(raw=raw, dark=dark)


def pipeline(subtract: type = SubtractDarkTask, *, stack: bool = True, **config) -> Pipeline:
    tasks = {"subtract": {"class": subtract, "config": config}}
    if stack:
        tasks["stack"] = {"class": StackTask}
    return Pipeline.from_dict({"tasks": tasks})


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with 2 exposures x 2 detectors of 32x32 raws and darks certified in calib."""
    base = tmp_path_factory.mktemp("exec")
    simulate(base / "sim", exposures=2, detectors=[1, 2], size=32, seed=7)
    with Butler.create(base / "repo") as butler:
        ingest_simulated(butler, base / "sim", ingest_type="raw", transfer="copy")
        ingest_simulated(butler, base / "sim", ingest_type="dark", transfer="copy")
        darks = list(butler.registry.query_datasets("dark", collections=["darkr"]))
        butler.registry.register_collection("calib", CollectionType.CALIBRATION)
        butler.registry.certify("calib", darks, Timespan(None, None))
    return base / "repo"


@pytest.fixture
def butler(template_repo: Path, tmp_path: Path):
    root = tmp_path / "repo"
    shutil.copytree(template_repo, root)
    with Butler(root) as b:
        yield b


def build(butler: Butler, pipe: Pipeline, run: str = "out/run1", **kwargs) -> object:
    return build_quantum_graph(
        pipe, butler.registry, input_collections=INPUTS, output_run=run, **kwargs
    )


def build_planned(registry, plan, pipe: Pipeline | None = None):
    """The graph of ``pipe`` (default: subtract and stack) for the collections of ``plan``."""
    return build_quantum_graph(
        pipe or pipeline(),
        registry,
        input_collections=plan.inputs,
        output_run=plan.run,
        skip_existing_in=plan.skip_existing_in,
    )


def execute(butler, client, graph, **kwargs):
    kwargs.setdefault("register_dataset_types", True)
    return run_quantum_graph(graph, butler, client, progress=False, **kwargs)


def task_counts(summary) -> list[tuple[str, int, int, int]]:
    """(task, succeeded, failed, skipped) of each task of a run summary."""
    return [(t.task, t.succeeded, t.failed, t.skipped) for t in summary.tasks]


def subtracted(butler, run, exposure, detector):
    return butler.get(
        "dark_subtracted",
        instrument="SPHEREx",
        exposure=exposure,
        detector=detector,
        collections=run,
    )


def exposures(butler) -> list[int]:
    return sorted(
        {r.data_id["exposure"] for r in butler.query_datasets("raw", collections="rawexpr")}
    )


def test_end_to_end_subtract_and_stack(butler, client):
    """raw -> dark_subtracted -> stack: pixels are raw - dark and the inverse-variance mean."""
    graph = build(butler, pipeline())
    summary = execute(butler, client, graph)
    assert summary.ok, summary.format()
    assert task_counts(summary) == [
        ("subtract", 4, 0, 0),
        ("stack", 2, 0, 0),
    ]
    assert summary.outputs == 6
    assert summary.bytes_written > 0
    for det in (1, 2):
        dark = butler.get("dark", instrument="SPHEREx", detector=det, collections="darkr")
        images, variances = [], []
        for exp in exposures(butler):
            raw = butler.get(
                "raw", instrument="SPHEREx", exposure=exp, detector=det, collections="rawexpr"
            )
            out = subtracted(butler, "out/run1", exp, det)
            np.testing.assert_allclose(
                out.image.values, raw.image.values - dark.image.values, rtol=1e-6
            )
            np.testing.assert_allclose(
                out.variance.values, raw.variance.values + dark.variance.values, rtol=1e-6
            )
            images.append(out.image.values.astype("f8"))
            variances.append(out.variance.values.astype("f8"))
        (stack_ref,) = butler.query_datasets(
            "dark_subtracted_stack", collections="out/run1", where=f"detector = {det}"
        )
        stack = butler.get(stack_ref)
        weights = [1 / v for v in variances]
        expected = sum(w * i for w, i in zip(weights, images, strict=True)) / sum(weights)
        np.testing.assert_allclose(stack.image.values, expected, rtol=1e-5)
        assert butler.get_uri(stack_ref).endswith(".zarr")
    records = list(butler.query_quanta(collections="out/run1"))
    assert len(records) == 6
    assert {r.status for r in records} == {"succeeded"}
    outputs = {o for r in records for o in r.outputs}
    assert outputs == {ref.id for ref in graph.output_refs()}
    stack_records = [r for r in records if r.task_label == "stack"]
    assert all(len(r.inputs) == 2 and len(r.outputs) == 1 for r in stack_records)
    assert all(r.worker.startswith("tcp://") and r.start <= r.end for r in records)


def test_failed_quantum_skips_downstream_and_others_finish(butler, client):
    """A raising task fails its quanta (traceback kept), skips their stack, the rest succeed."""
    graph = build(butler, pipeline(FailingSubtractTask))
    summary = execute(butler, client, graph)
    assert not summary.ok
    assert task_counts(summary) == [
        ("subtract", 2, 2, 0),
        ("stack", 1, 0, 1),
    ]
    assert {r.data_id["detector"] for r in summary.failures} == {2}
    assert all(r.error_summary == "RuntimeError: detector 2 is broken" for r in summary.failures)
    assert "Traceback" in summary.failures[0].error
    assert "detector 2 is broken" in summary.format()
    failed = list(butler.registry.query_quanta(collections=["out/run1"], status="failed"))
    assert {r.id for r in failed} == {r.id for r in summary.failures}
    assert all(r.outputs == () for r in failed)
    (skipped,) = butler.registry.query_quanta(run="out/run1", status="skipped")
    assert skipped.task_label == "stack"
    assert "failed" in skipped.error
    registered = list(butler.query_datasets("dark_subtracted", collections="out/run1"))
    assert {r.data_id["detector"] for r in registered} == {1}
    run_dir = Path(butler.datastore.root) / "out" / "run1"
    assert not any("D2" in p.name for p in run_dir.rglob("*.zarr"))


def test_killed_worker_is_retried(butler, client, tmp_path):
    """A worker process killed mid-quantum is replaced and its quantum rerun: the run completes."""
    marker = tmp_path / "killed"
    graph = build(butler, pipeline(KillOnceSubtractTask, stack=False, marker=str(marker)))
    summary = execute(butler, client, graph)
    assert marker.exists()
    assert summary.ok, summary.format()
    assert summary.succeeded == 4


def test_rerun_with_skip_existing_extend_run_completes_what_is_missing(
    butler, client, tmp_path
):
    """After a partial run, and a fix of the task's code, --extend-run --skip-existing runs
    only the failed and skipped quanta."""
    registry = butler.registry
    plan = plan_outputs(registry, inputs=INPUTS, output="u/test")
    apply_outputs(registry, plan)
    marker = tmp_path / "broken"
    marker.touch()
    fixed = pipeline(BrokenWhileMarkedTask, broken_marker=str(marker))
    first = build(butler, fixed, run=plan.run)
    assert not execute(butler, client, first).ok
    marker.unlink()  # the bug is fixed; the task and its config are the same
    plan2 = plan_outputs(
        registry, inputs=INPUTS, output="u/test", extend_run=True, skip_existing=True
    )
    assert plan2.run == plan.run
    assert plan2.skip_existing_in == ("u/test",)
    graph = build_planned(registry, plan2, fixed)
    assert sorted((q.task_label, q.data_id["detector"]) for q in graph) == [
        ("stack", 2),
        ("subtract", 2),
        ("subtract", 2),
    ]
    apply_outputs(registry, plan2)
    summary = execute(butler, client, graph)
    assert summary.ok, summary.format()
    found = list(
        butler.query_datasets(["dark_subtracted", "dark_subtracted_stack"], collections="u/test")
    )
    assert len(found) == 6
    assert {r.run for r in found} == {plan.run}
    statuses = {
        (r.task_label, r.data_id["detector"], r.status)
        for r in registry.query_quanta(collections=["u/test"])
    }
    assert ("subtract", 2, "succeeded") in statuses
    assert not any(s == "failed" for *_, s in statuses)


def test_replace_run_and_prune_purge(butler, client):
    """--replace-run puts a new run at the head of the chain; purge removes the old one."""
    registry = butler.registry
    plans = []
    for replace in (False, True):
        plan = plan_outputs(
            registry,
            inputs=INPUTS,
            output="u/rep",
            replace_run=replace,
            output_run=f"u/rep/run{len(plans)}",
        )
        apply_outputs(registry, plan)
        assert execute(butler, client, build(butler, pipeline(stack=False), run=plan.run)).ok
        plans.append(plan)
    assert plans[1].replaced_run == "u/rep/run0"
    assert registry.get_collection_chain("u/rep") == ("u/rep/run1", *INPUTS)
    old_files = [
        butler.get_uri(r)
        for r in butler.query_datasets("dark_subtracted", collections="u/rep/run0")
    ]
    assert prune_replaced(butler, "u/rep/run0", "purge") == 6  # 4 outputs, the task config and the package versions
    assert "u/rep/run0" not in registry.query_collections()
    assert not any(Path(f).exists() for f in old_files)
    assert list(registry.query_quanta(run="u/rep/run0")) == []
    assert len(list(registry.query_quanta(collections=["u/rep"]))) == 4


def test_extend_or_replace_refuse_a_head_no_pipeline_wrote(butler):
    """A chain made by hand may start with an input: it is neither written into nor replaced."""
    registry = butler.registry
    for name, members in {"h/cal": ["calib", "rawexpr"], "h/raw": ["rawexpr", "calib"]}.items():
        registry.register_collection(name, CollectionType.CHAINED)
        registry.set_collection_chain(name, members)
    for flag in ("extend_run", "replace_run"):
        with pytest.raises(PipelineError, match="head 'calib' is a CALIBRATION collection"):
            plan_outputs(registry, output="h/cal", **{flag: True})
        with pytest.raises(PipelineError, match="one of the input collections"):
            plan_outputs(registry, inputs=INPUTS, output="h/raw", **{flag: True})
        with pytest.raises(PipelineError, match="no pipeline wrote that run"):
            plan_outputs(registry, output="h/raw", **{flag: True})
    # An empty run at the head (a run stopped before any quantum finished) may be reused.
    registry.register_run("h/empty/run0")
    registry.register_collection("h/empty", CollectionType.CHAINED)
    registry.set_collection_chain("h/empty", ["h/empty/run0", *INPUTS])
    assert plan_outputs(registry, output="h/empty", extend_run=True).run == "h/empty/run0"
    assert plan_outputs(registry, output="h/empty", replace_run=True).replaced_run == "h/empty/run0"
    # --output-run names the run explicitly: the head is not looked at.
    assert plan_outputs(registry, output="h/raw", extend_run=True, output_run="x").run == "x"


def test_prune_replaced_refuses_a_run_the_pipeline_reads_or_other_chains_list(butler, client):
    registry = butler.registry
    first = plan_outputs(registry, inputs=INPUTS, output="u/p", output_run="u/p/run0")
    apply_outputs(registry, first)
    assert execute(butler, client, build(butler, pipeline(stack=False), run=first.run)).ok
    # The stack task alone, reading dark_subtracted through a TAGGED collection of run0's.
    made = list(butler.query_datasets("dark_subtracted", collections="u/p/run0"))
    registry.register_collection("picked", CollectionType.TAGGED)
    registry.associate("picked", made)
    registry.set_collection_chain("u/p", ["u/p/run0", "picked", *INPUTS])
    plan = plan_outputs(registry, output="u/p", replace_run=True, output_run="u/p/run1")
    stack_only = Pipeline.from_dict({"tasks": {"stack": {"class": StackTask}}})
    graph = build_planned(registry, plan, stack_only)
    assert len(graph)
    with pytest.raises(PipelineError, match=r"the pipeline reads 4 dataset\(s\) from it"):
        check_prunable(registry, plan, graph)
    # Reading nothing from it, but listed by another chain: removing it would fail later.
    registry.set_collection_chain("u/p", ["u/p/run0", *INPUTS])
    registry.register_collection("elsewhere", CollectionType.CHAINED)
    registry.set_collection_chain("elsewhere", ["u/p/run0"])
    plan = plan_outputs(registry, output="u/p", replace_run=True, output_run="u/p/run1")
    graph = build(butler, pipeline(stack=False), run=plan.run)
    with pytest.raises(PipelineError, match="chain\\(s\\) elsewhere also list"):
        check_prunable(registry, plan, graph)
    registry.remove_collection("elsewhere")
    check_prunable(registry, plan, graph)
    assert registry.get_collection_chain("u/p") == ("u/p/run0", *INPUTS)  # nothing changed


def test_partial_stack_then_skip_existing_says_the_stack_is_stale(butler, client, caplog):
    """A stack made without an exposure (no dark then) is kept by --skip-existing once the dark
    exists, and the graph says it was made from fewer inputs than exist now."""
    registry = butler.registry
    first, _second = sorted(
        registry.query_dimension_records("exposure"), key=lambda r: r.timespan.begin
    )
    split = first.timespan.end
    darks = list(registry.query_datasets("dark", collections=["darkr"]))
    registry.register_collection("late", CollectionType.CALIBRATION)
    registry.certify("late", darks, Timespan(split, None))  # no dark for the first exposure
    inputs = ["rawexpr", "late"]
    plan = plan_outputs(registry, inputs=inputs, output="u/late")
    graph = build_planned(registry, plan)
    assert len(graph.quanta_for_task("subtract")) == 2  # the second exposure, 2 detectors
    assert all(len(q.left_out) == 1 for q in graph.quanta_for_task("stack"))
    apply_outputs(registry, plan)
    assert execute(butler, client, graph).ok
    registry.certify("late", darks, Timespan(None, split))  # the dark now covers both
    plan2 = plan_outputs(registry, output="u/late", extend_run=True, skip_existing=True)
    caplog.set_level("WARNING", logger="spherex_dask.pipeline")
    graph2 = build_planned(registry, plan2)
    assert sorted(q.data_id["exposure"] for q in graph2) == [first.id] * 2
    stale = [s for s in graph2.skipped if s.task_label == "stack"]
    assert len(stale) == 2
    assert all("made from 1 of the 2 inputs that exist now" in s.reason for s in stale)
    assert all(s.kind == "outputs_exist" for s in stale)
    assert "made without inputs that exist now" in caplog.text
    # The subtract outputs it keeps were made from what exists: nothing said of them.
    kept = [s for s in graph2.skipped if s.task_label == "subtract"]
    assert len(kept) == 2
    assert not any("made from" in s.reason for s in kept)
    # --replace-run remakes the stacks from both exposures.
    plan3 = plan_outputs(registry, output="u/late", replace_run=True)
    graph3 = build_planned(registry, plan3)
    assert [len(q.inputs["images"]) for q in graph3.quanta_for_task("stack")] == [2, 2]
    assert all(q.left_out == () for q in graph3)


def test_outputs_existing_in_run_are_refused_before_running(butler, client):
    graph = build(butler, pipeline(stack=False))
    assert execute(butler, client, graph).ok
    with pytest.raises(DatasetConflictError, match="already exist in run 'out/run1'"):
        execute(butler, client, graph)


def test_unregistered_output_types_are_an_error(butler, client):
    graph = build(butler, pipeline())
    with pytest.raises(MissingDatasetTypeError, match=r"dark_subtracted.*dark_subtracted_stack"):
        execute(butler, client, graph, register_dataset_types=False)
    assert list(butler.registry.query_quanta(run="out/run1")) == []


class MistypedOutputTask(SubtractDarkTask):
    """An output whose storage class no formatter knows."""

    output = Output("mistyped", ("instrument", "exposure", "detector"), "SpectralImag")


def test_unknown_output_storage_class_is_refused_before_registering(butler, client):
    """A mistyped storage class would fail every quantum, and its dataset type, once
    registered, would conflict with the corrected task."""
    graph = build(butler, pipeline(MistypedOutputTask, stack=False))
    with pytest.raises(
        UnknownFormatterError,
        match=r"task 'subtract' output 'output' \(mistyped\): 'SpectralImag'\. Known .*SpectralImage",
    ):
        execute(butler, client, graph)
    assert "mistyped" not in {t.name for t in butler.registry.query_dataset_types()}
    assert list(butler.registry.query_quanta(run="out/run1")) == []


def test_fits_output_format(butler, client):
    graph = build(butler, pipeline(stack=False))
    assert execute(butler, client, graph, output_format="fits").ok
    (ref, *_) = butler.query_datasets("dark_subtracted", collections="out/run1")
    assert butler.get_uri(ref).endswith(".fits")
    assert butler.get(ref).image.shape == (32, 32)


def test_submission_does_not_tokenize_the_jobs(butler, client):
    """The graph is submitted without dask walking every job to name it (that took 9 s for
    5,000 quanta when the graph was handed over as a plain dict)."""
    from dask.tokenize import normalize_token

    tokenized = []
    normalize_token.register(QuantumJob)(lambda job: tokenized.append(job) or job.quantum_id.hex)
    try:
        graph = build(butler, pipeline())
        assert execute(butler, client, graph).ok
    finally:
        normalize_token._lookup.pop(QuantumJob, None)
    assert tokenized == []


def test_failed_registration_removes_files_and_registers_nothing(butler, client, monkeypatch):
    """If a batch cannot be registered, its files are removed and the error propagates."""
    graph = build(butler, pipeline(stack=False))

    def broken(records):
        raise RuntimeError("database went away")

    monkeypatch.setattr(butler.registry, "insert_quanta", broken)
    with pytest.raises(RuntimeError, match="database went away"):
        execute(butler, client, graph, register_batch_size=100)
    monkeypatch.undo()
    assert list(butler.query_datasets("dark_subtracted", collections="out/run1")) == []
    run_dir = Path(butler.datastore.root) / "out" / "run1"
    assert not list(run_dir.rglob("*.zarr"))


def test_worker_function_without_cluster(butler):
    """execute_quantum runs in-process; a failure removes what it wrote; skip if upstream failed."""
    graph = build(butler, pipeline(FailingSubtractTask, stack=True))
    butler.registry.register_dataset_type(graph.output_refs()[0].dataset_type)
    jobs = make_jobs(graph, butler.registry, butler.datastore)
    task = graph.pipeline.make_task("subtract")
    results = {
        q.id: execute_quantum(jobs[q.id], butler.datastore, task)
        for q in graph.quanta_for_task("subtract")
    }
    by_det = {graph[i].data_id["detector"]: r.status for i, r in results.items()}
    assert by_det == {1: "succeeded", 2: "failed"}
    stack_task = graph.pipeline.make_task("stack")
    for q in graph.quanta_for_task("stack"):
        upstream = [results[d] for d in graph.dependencies(q.id)]
        result = execute_quantum(jobs[q.id], butler.datastore, stack_task, *upstream)
        assert result.status == ("succeeded" if q.data_id["detector"] == 1 else "skipped")


def test_dask_level_errors_fail_the_quantum_and_skip_its_dependents(butler):
    """A quantum whose Dask task errored (e.g. KilledWorker) fails; its dependents are skipped."""
    graph = build(butler, pipeline())
    failed_q = graph.quanta_for_task("subtract")[0]
    futures = {q.id: SimpleNamespace(status="finished") for q in graph}
    futures[failed_q.id].status = "error"
    error = RuntimeError("Attempted to run task on 3 different workers, all died")
    result = _dask_failure(graph, failed_q, error, futures)
    assert result.status == "failed"
    assert result.error.startswith("RuntimeError: Attempted to run task")
    (dependent,) = graph.dependents(failed_q.id)
    result = _dask_failure(graph, graph[dependent], error, futures)
    assert result.status == "skipped"
    assert "failed" in result.error


def test_dask_errors_as_distributed_reports_them(butler):
    """``as_completed(raise_errors=False)`` gives an errored future's exception as a
    ``(type, value, traceback)`` tuple; an ImportError (a scheduler or worker without the
    task's module) says what to do."""
    graph = build(butler, pipeline(stack=False))
    quantum = next(iter(graph))
    futures = {q.id: SimpleNamespace(status="finished") for q in graph}
    error = ModuleNotFoundError("No module named 'mytasks'")
    result = _dask_failure(graph, quantum, _exception((type(error), error, None)), futures)
    assert result.status == "failed"
    head = result.error.splitlines()[0]
    assert head.startswith("ModuleNotFoundError: No module named 'mytasks'")
    assert "importable on the Dask workers" in head
    error = RuntimeError("Error during deserialization of the task graph. This frequently\n...")
    result = _dask_failure(graph, quantum, _exception((type(error), error, None)), futures)
    assert "importable on the Dask workers" in result.error.splitlines()[0]
    assert isinstance(_exception(asyncio.CancelledError()), asyncio.CancelledError)


class KillDetector2Task(SubtractDarkTask):
    """Kills its worker process whenever it runs on detector 2."""

    def run(self, *, raw, dark):  # type: ignore[override]
        if int(raw.attrs.get("DETECTOR", 0)) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(raw=raw, dark=dark)


def test_quanta_killing_every_worker_fail_and_the_run_ends(butler):
    """When distributed gives up on a quantum (KilledWorker, here at once: no retries allowed),
    the quantum is recorded as failed with that error, its stack is skipped, the others finish
    and the run returns its summary."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        graph = build(butler, pipeline(KillDetector2Task))
        summary = execute(butler, client, graph)
    assert not summary.ok
    assert task_counts(summary) == [
        ("subtract", 2, 2, 0),
        ("stack", 1, 0, 1),
    ]
    assert all("KilledWorker" in r.error_summary for r in summary.failures)
    failed = list(butler.registry.query_quanta(collections=["out/run1"], status="failed"))
    assert {r.data_id["detector"] for r in failed} == {2}
    registered = list(butler.query_datasets("dark_subtracted", collections="out/run1"))
    assert {r.data_id["detector"] for r in registered} == {1}


def test_orphan_file_from_interrupted_attempt_is_replaced(butler):
    graph = build(butler, pipeline(stack=False))
    butler.registry.register_dataset_type(graph.output_refs()[0].dataset_type)
    job = next(iter(make_jobs(graph, butler.registry, butler.datastore).values()))
    ref = job.outputs["output"]
    raw = butler.get(job.inputs["raw"][0])
    first = put_output(butler.datastore, raw, ref, None)
    second = put_output(butler.datastore, raw, ref, None)
    assert first.path == second.path
    assert butler.datastore.exists(second)


def test_everything_sent_to_workers_pickles(butler):
    """Tasks, the datastore (with its formatters), jobs and results survive pickling."""
    graph = build(butler, pipeline())
    butler.registry.register_dataset_type(graph.output_refs()[0].dataset_type)
    jobs = make_jobs(graph, butler.registry, butler.datastore)
    for obj in [
        graph.pipeline.make_task("subtract"),
        graph.pipeline.make_task("stack"),
        FailingSubtractTask(label="subtract"),
        butler.datastore,
        *(butler.datastore.formatters[name] for name in butler.datastore.formatters),
        *jobs.values(),
        QuantumResult(
            quantum_id=next(iter(jobs)),
            task_label="subtract",
            data_id=graph[next(iter(jobs))].data_id,
            status="succeeded",
        ),
    ]:
        copy = pickle.loads(pickle.dumps(obj))
        assert type(copy) is type(obj)
    task = pickle.loads(pickle.dumps(graph.pipeline.make_task("stack")))
    assert task.config == graph.pipeline.make_task("stack").config
    store = pickle.loads(pickle.dumps(butler.datastore))
    assert store.root == butler.datastore.root
    job = pickle.loads(pickle.dumps(next(iter(jobs.values()))))
    assert job.outputs["output"].data_id.records is not None


def test_plan_outputs_chain_semantics(butler):
    """-o makes NAME -> [run, inputs]; a second -o run goes first; extend/replace use the head."""
    registry = butler.registry
    first = plan_outputs(registry, inputs=INPUTS, output="u/a")
    assert first.run.startswith("u/a/run-")
    assert first.chain_members == (first.run, *INPUTS)
    assert first.inputs == tuple(INPUTS)
    assert first.skip_existing_in == ()
    apply_outputs(registry, first)
    assert registry.get_collection_type("u/a") is CollectionType.CHAINED
    second = plan_outputs(registry, inputs=INPUTS, output="u/a", output_run="u/a/second")
    assert second.chain_members == ("u/a/second", first.run, *INPUTS)
    assert second.inputs == (first.run, *INPUTS)
    apply_outputs(registry, second)
    extend = plan_outputs(registry, output="u/a", extend_run=True, skip_existing=True)
    assert extend.run == "u/a/second"
    assert extend.chain_members == second.chain_members
    assert extend.skip_existing_in == ("u/a",)
    replace = plan_outputs(
        registry, inputs=INPUTS, output="u/a", replace_run=True, output_run="u/a/third"
    )
    assert replace.replaced_run == "u/a/second"
    assert replace.chain_members == ("u/a/third", first.run, *INPUTS)
    assert "u/a/second" not in replace.inputs
    only_run = plan_outputs(registry, inputs=INPUTS, output_run="plain")
    assert only_run.chain is None
    assert only_run.run == "plain"
    assert only_run.chain_members == ()
    with pytest.raises(PipelineError, match="exclude each other"):
        plan_outputs(registry, inputs=INPUTS, output="u/a", extend_run=True, replace_run=True)
    with pytest.raises(PipelineError, match="needs an existing output chain"):
        plan_outputs(registry, inputs=INPUTS, output="u/new", replace_run=True)
    with pytest.raises(PipelineError, match="Name an output"):
        plan_outputs(registry, inputs=INPUTS)
    with pytest.raises(PipelineError, match="No input collections"):
        plan_outputs(registry, output="u/none")
    with pytest.raises(Exception, match="exists as a RUN"):
        plan_outputs(registry, inputs=INPUTS, output="rawexpr")
    with pytest.raises(Exception, match="add --extend-run"):
        plan_outputs(registry, inputs=INPUTS, output="u/a", output_run=first.run)


def test_plan_outputs_refuses_inputs_the_chain_would_shadow(butler):
    """-o NAME existing with other inputs: the new ones would be searched after the chain's
    (a dark certified anew in 'calib2' would lose to the one in 'calib'): an error, as with
    pipetask; inputs the chain holds, contiguous and in order, are fine."""
    registry = butler.registry
    apply_outputs(registry, plan_outputs(registry, inputs=INPUTS, output="u/a"))
    for inputs in (["rawexpr"], ["calib"], INPUTS):
        assert plan_outputs(registry, inputs=inputs, output="u/a").inputs[-2:] == tuple(INPUTS)
    for inputs in (["rawexpr", "calib2"], ["calib", "rawexpr"], ["darkr"]):
        with pytest.raises(PipelineError, match=r"does not hold the inputs.*Leave out -i"):
            plan_outputs(registry, inputs=inputs, output="u/a")


def test_workers_that_cannot_import_a_task_stop_the_run_before_it_starts(
    butler, client, tmp_path, monkeypatch
):
    """A task module the client imports but the workers cannot (here: put on the client's
    path after the workers started) is an error naming the module, before anything is made;
    without the check the workers would drop the tasks and the run would wait for ever."""
    import importlib

    name = f"late_tasks_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(
        "from spherex_dask.pipeline.tasks import SubtractDarkTask\n\n\n"
        "class LateTask(SubtractDarkTask):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    late = importlib.import_module(name).LateTask
    graph = build(butler, pipeline(late, stack=False))
    with pytest.raises(PipelineError, match=f"cannot import .*{name}.*PYTHONPATH"):
        execute(butler, client, graph)
    assert "out/run1" not in butler.registry.query_collections("*")


def test_run_records_task_configs_and_package_versions(butler, client):
    """A run holds each task's config and the package versions; a config that differs from
    the run's is refused before anything runs; other package versions only warn."""
    import spherex_dask
    from spherex_dask.errors import SpherexDaskWarning
    from spherex_dask.pipeline._init_outputs import write_init_outputs

    graph = build(butler, pipeline(), run="u/cfg")
    assert execute(butler, client, graph).ok
    config = butler.get("subtract_config", {}, collections="u/cfg")
    assert config["task"].endswith(".SubtractDarkTask")
    assert config["config"]["propagate_flags"] is True
    assert butler.get("stack_config", {}, collections="u/cfg")["task"].endswith("StackTask")
    packages = butler.get("packages", {}, collections="u/cfg")
    assert packages["spherex_dask"] == spherex_dask.__version__
    assert {"python", "dask", "distributed", "xarray", "numpy"} <= set(packages)

    changed = build(butler, pipeline(propagate_flags=False), run="u/cfg", skip_existing_in=["u/cfg"])
    with pytest.raises(PipelineError, match=r"config\.propagate_flags: True -> False"):
        execute(butler, client, changed)
    assert butler.get("subtract_config", {}, collections="u/cfg") == config

    butler.prune_datasets(list(butler.query_datasets("packages", collections="u/cfg")))
    butler.put(packages | {"numpy": "0.0.1"}, "packages", {}, run="u/cfg")
    with pytest.warns(SpherexDaskWarning, match=r"other package versions \(numpy: '0\.0\.1' ->"):
        write_init_outputs(graph, butler)
    assert butler.get("packages", {}, collections="u/cfg")["numpy"] == "0.0.1"


def test_init_outputs_interrupted_leave_no_file_in_the_way(butler, monkeypatch):
    """An interrupt while the task configs are written (after the first is stored) leaves
    nothing behind that a second attempt trips over: it writes them all."""
    from spherex_dask.pipeline._init_outputs import write_init_outputs

    graph = build(butler, pipeline(), run="u/init")
    butler.registry.register_run("u/init")
    real_put, calls = Butler.put, []

    def put_then_interrupt(self, obj, dataset_type, *args, **kwargs):
        calls.append(dataset_type)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_put(self, obj, dataset_type, *args, **kwargs)

    monkeypatch.setattr(Butler, "put", put_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_init_outputs(graph, butler)
    monkeypatch.setattr(Butler, "put", real_put)
    write_init_outputs(graph, butler)
    assert butler.get("subtract_config", {}, collections="u/init")["task"].endswith("Task")
    assert butler.get("stack_config", {}, collections="u/init")["task"].endswith("StackTask")


def test_init_outputs_written_meanwhile_by_another_command(butler, monkeypatch):
    """Two commands extending one run at once: the one that finds a config written between
    its lookup and its put accepts the same config, and refuses another."""
    import spherex_dask.pipeline._init_outputs as init_outputs

    graph = build(butler, pipeline(), run="u/race")
    butler.registry.register_run("u/race")
    init_outputs.write_init_outputs(graph, butler)  # the other command, first
    lookups = {"count": 0}
    real_stored = init_outputs._stored

    def not_yet(butler_, name, run):  # the 2 config lookups before the other's commit
        lookups["count"] += 1
        return None if lookups["count"] <= 2 else real_stored(butler_, name, run)

    monkeypatch.setattr(init_outputs, "_stored", not_yet)
    init_outputs.write_init_outputs(graph, butler)  # the same config: fine
    lookups["count"] = 0
    changed = build(butler, pipeline(propagate_flags=False), run="u/race")
    with pytest.raises(PipelineError, match="another config"):
        init_outputs.write_init_outputs(changed, butler)
