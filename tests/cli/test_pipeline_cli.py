# SPDX-License-Identifier: BSD-3-Clause
"""``qgraph``, ``run`` and ``query-quanta`` through click, on a real local cluster."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import distributed
import pytest
from click.testing import CliRunner

from spherex_dask.cli import cli
from spherex_dask.pipeline.tasks import SubtractDarkConfig, SubtractDarkTask

PIPELINES = Path(__file__).parents[2] / "pipelines"
EXAMPLE = PIPELINES / "ExamplePipeline.yaml"


class FailWhileMarkedConfig(SubtractDarkConfig):
    marker: str = ""


class FailWhileMarkedTask(SubtractDarkTask):
    """Raises for detector 2 while the file ``config.marker`` exists."""

    ConfigClass = FailWhileMarkedConfig

    def run(self, *, raw, dark):  # type: ignore[override]
        if int(raw.attrs.get("DETECTOR", 0)) == 2 and Path(self.config.marker).exists():
            raise ValueError("detector 2 is not ready")
        return super().run(raw=raw, dark=dark)


class WaitWhileMarkedTask(FailWhileMarkedTask):
    """Detector 2 waits while the file ``config.marker`` exists (at most a minute), leaving a
    ``.waiting`` file beside it; detector 1 runs at once."""

    def run(self, *, raw, dark):  # type: ignore[override]
        marker = Path(self.config.marker)
        if int(raw.attrs.get("DETECTOR", 0)) == 2:
            marker.with_suffix(".waiting").touch()
            deadline = time.monotonic() + 60
            while marker.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return SubtractDarkTask.run(self, raw=raw, dark=dark)


def invoke(command: str, *extra: object, code: int = 0) -> str:
    """Run ``spherex-dask COMMAND EXTRA...`` (``command`` is split on spaces)."""
    args = [*command.split(), *(str(a) for a in extra)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def as_json(command: str, *extra: object) -> list:
    return json.loads(invoke(command, *extra, "--format", "json"))


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    invoke(f"simulate {out} --exposures 2 --detectors 1,2 --size 32 --seed 5")
    return out


@pytest.fixture
def repo(tmp_path: Path, sim_dir: Path) -> Path:
    """The proof of concept's setup: raws in rawexpr, darks in darkr, certified in calib."""
    root = tmp_path / "repo"
    invoke(f"create {root}")
    invoke(f"ingest-simulated {root} {sim_dir} --ingest-type raw --no-progress")
    invoke(f"ingest-simulated {root} {sim_dir} --ingest-type dark --no-progress")
    invoke(f"certify-calibrations {root} darkr calib dark")
    return root


def test_proof_of_concept_workflow(repo: Path, tmp_path: Path, scheduler: str) -> None:
    """qgraph with DOT, run, rerun with --replace-run --prune-replaced=purge, query the chain."""
    dot, png, saved = tmp_path / "ex.dot", tmp_path / "ex.png", tmp_path / "ex.json"
    out = invoke(
        f"qgraph -p {EXAMPLE} -b {repo} -i rawexpr,darkr -o subtractr --qgraph-dot {dot} "
        f"--qgraph-png {png} --save-qgraph {saved}"
    )
    assert "Quantum graph: 4 quanta" in out
    assert "TOTAL" in out
    assert dot.read_text().startswith("digraph")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert saved.exists()
    assert "subtractr" not in invoke(f"query-collections {repo}")  # qgraph writes nothing
    common = f"-b {repo} -i rawexpr,darkr,calib -o subtractr --scheduler {scheduler} --no-progress"
    out = invoke(f"run -p {EXAMPLE} {common} --register-dataset-types")
    assert "4 quanta succeeded, 0 failed" in out
    assert "Dask dashboard" in out
    (first,) = as_json(f"query-collections {repo} subtractr/*")
    first_run = first["name"]
    assert first_run.startswith("subtractr/run-")
    out = invoke(f"run -p {EXAMPLE} {common} --replace-run --prune-replaced purge")
    assert "4 quanta succeeded" in out
    assert f"Pruned replaced run {first_run}" in out
    flat = as_json(f"query-collections {repo} subtractr --flatten-chains")
    names = [row["name"] for row in flat]
    assert names[0].startswith("subtractr/run-")
    assert names[0] != first_run
    assert names[1:] == ["rawexpr", "darkr", "calib"]
    # (not a substring test: a run started in the same second is named first_run + "-2")
    assert first_run not in [row["name"] for row in as_json(f"query-collections {repo}")]
    rows = as_json(f"query-datasets {repo} dark_subtracted --collections subtractr")
    assert len(rows) == 4
    assert all(Path(r["uri"]).exists() for r in rows)
    assert {r["run"] for r in rows} == {names[0]}
    quanta = as_json(f"query-quanta {repo} --collections subtractr")
    assert [q["status"] for q in quanta] == ["succeeded"] * 4
    assert {q["run"] for q in quanta} == {names[0]}
    assert all(len(q["outputs"]) == 1 and len(q["inputs"]) == 2 for q in quanta)


def test_failures_exit_non_zero_and_are_queryable(
    repo: Path, tmp_path: Path, scheduler: str
) -> None:
    """A failing quantum: exit status 1, summary with data ID and error; then, the bug
    fixed, complete the run with the same pipeline; a changed config is refused."""
    marker = tmp_path / "broken"
    marker.touch()
    yaml = tmp_path / "failing.yaml"
    yaml.write_text(
        f"tasks:\n  subtract:\n    class: {__name__}.FailWhileMarkedTask\n"
        f"    config: {{marker: {marker}}}\n"
    )
    common = f"-b {repo} -i rawexpr,calib -o u/f --scheduler {scheduler} --no-progress"
    out = invoke(f"run -p {yaml} {common} --register-dataset-types", code=1)
    assert "2 quanta succeeded, 2 failed" in out
    failures = [line for line in out.splitlines() if "ValueError: detector 2 is not" in line]
    assert len(failures) == 2
    assert all("detector: 2" in line for line in failures)
    table = invoke(f"query-quanta {repo} --collections u/f --status failed")
    assert table.count("ValueError: detector 2 is not ready") == 2
    rows = as_json(f"query-quanta {repo} --task subtract --data-id detector=2")
    assert len(rows) == 2
    assert all("Traceback" in r["error"] for r in rows)
    marker.unlink()  # the bug is fixed
    out = invoke(f"run -p {EXAMPLE} {common} --extend-run --skip-existing", code=1)
    assert "was made with another config than this graph's: task 'subtract'" in out
    assert "task: 'tests.cli.test_pipeline_cli.FailWhileMarkedTask' -> " in out
    changed = "-c subtract:propagate_flags=false"
    out = invoke(f"run -p {yaml} {common} --extend-run --skip-existing {changed}", code=1)
    assert "config.propagate_flags: True -> False" in out
    out = invoke(f"run -p {yaml} {common} --extend-run --skip-existing")
    assert "2 quanta succeeded, 0 failed" in out
    assert as_json(f"query-quanta {repo} --collections u/f --status failed") == []
    configs = as_json(f"query-datasets {repo} subtract_config packages --collections u/f")
    assert sorted(r["dataset_type"] for r in configs) == ["packages", "subtract_config"]
    assert len(as_json(f"query-datasets {repo} dark_subtracted --collections u/f")) == 4


@pytest.mark.parametrize(
    ("sent", "status", "said"),
    [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, r"Terminated \(SIGTERM\)")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_keeps_what_finished_and_says_how_to_run_the_rest(
    repo: Path, tmp_path: Path, scheduler: str, sent: signal.Signals, status: int, said: str
) -> None:
    """SIGINT (Ctrl-C) or SIGTERM (kill, scancel, a time limit) while quanta run: exit status
    130 or 143, the finished quanta registered, a hint that --extend-run --skip-existing runs
    the rest, which then works."""
    marker = tmp_path / "hold"
    marker.touch()
    yaml = tmp_path / "wait.yaml"
    yaml.write_text(
        f"tasks:\n  subtract:\n    class: {__name__}.WaitWhileMarkedTask\n"
        f"    config: {{marker: {marker}}}\n"
    )
    command = [sys.executable, "-m", "spherex_dask", "run", "-p", str(yaml), "-b", str(repo),
               "-i", "rawexpr,calib", "-o", "u/c", "--scheduler", scheduler, "--no-progress",
               "--register-dataset-types"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.with_suffix(".waiting").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no quantum of detector 2 started"
            time.sleep(0.05)
        proc.send_signal(sent)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        marker.unlink(missing_ok=True)  # lets the cancelled quanta end on the workers
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, stdout + stderr
    assert "Aborted" not in stdout + stderr
    found = re.search(
        said + r": (\d) of 4 quanta finished and are registered in run (\S+);", stderr
    )
    assert found, stderr
    finished, run = int(found.group(1)), found.group(2)
    assert "the same command with --extend-run --skip-existing" in stderr
    rows = as_json(f"query-datasets {repo} dark_subtracted --collections {run}")
    assert len(rows) == finished
    assert all(r["data_id"]["detector"] == 1 for r in rows)
    out = invoke(  # the same command: the marker is gone, detector 2 runs at once
        f"run -p {yaml} -b {repo} -o u/c --scheduler {scheduler} --no-progress "
        "--extend-run --skip-existing"
    )
    assert f"{4 - finished} quanta succeeded, 0 failed" in out
    if finished:
        assert (
            f"({finished} quanta were left out when the graph was built: their outputs exist.)"
            in out
        )
    assert len(as_json(f"query-datasets {repo} dark_subtracted --collections u/c")) == 4


def test_progress_in_a_batch_log_is_plain_lines(repo: Path, scheduler: str) -> None:
    """With standard error not a terminal (a batch job's log), the progress bar is written
    as whole lines, not redrawn in place with carriage returns."""
    command = [sys.executable, "-m", "spherex_dask", "run", "-p", str(EXAMPLE), "-b", str(repo),
               "-i", "rawexpr,calib", "-o", "u/log", "--scheduler", scheduler,
               "--register-dataset-types"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, timeout=300, check=False)
    stderr = result.stderr.decode()  # as bytes: text mode would turn "\r" into "\n"
    assert result.returncode == 0, result.stdout.decode() + stderr
    assert "\r" not in stderr
    lines = stderr.splitlines()
    assert lines[0].startswith("quanta: 0/4 (0%)"), stderr
    assert lines[-1].startswith("quanta: 4/4 (100%)"), stderr


def test_run_saved_graph_with_fits_output(repo: Path, tmp_path: Path, scheduler: str) -> None:
    saved = tmp_path / "g.json"
    invoke(
        f"qgraph -p {EXAMPLE} -b {repo} -i rawexpr,calib -o u/g --output-run u/g/one "
        f"--save-qgraph {saved} -d",
        "detector = 1",
    )
    out = invoke(
        f"run -g {saved} -b {repo} -o u/g --scheduler {scheduler} --no-progress "
        "--register-dataset-types --output-format fits"
    )
    assert "2 quanta succeeded" in out
    rows = as_json(f"query-datasets {repo} dark_subtracted --collections u/g")
    assert len(rows) == 2
    assert all(r["uri"].endswith(".fits") for r in rows)
    assert {r["run"] for r in rows} == {"u/g/one"}


def test_saved_graph_runs_into_the_chain_it_was_built_for(
    repo: Path, tmp_path: Path, scheduler: str
) -> None:
    """qgraph -o CHAIN --save-qgraph on a login node, then run -g in a batch job without -o:
    the outputs are found through CHAIN, not left in a run that no chain lists."""
    saved = tmp_path / "g.json"
    invoke(f"qgraph -p {EXAMPLE} -b {repo} -i rawexpr,calib -o u/n --save-qgraph {saved}")
    out = invoke(
        f"run -g {saved} -b {repo} --scheduler {scheduler} --no-progress --register-dataset-types"
    )
    assert "4 quanta succeeded" in out
    (chain,) = as_json(f"query-collections {repo} u/n")
    run = json.loads(saved.read_text())["output_run"]
    assert chain["children"][0] == run
    assert len(as_json(f"query-datasets {repo} dark_subtracted --collections u/n")) == 4


def test_saved_graph_is_finished_with_skip_existing(
    repo: Path, tmp_path: Path, scheduler: str
) -> None:
    """A saved graph whose run partly failed (the batch-job case) is run again with
    --skip-existing: only the quanta without outputs run, into the same run."""
    marker = tmp_path / "not-ready"
    marker.touch()
    yaml = tmp_path / "marked.yaml"
    yaml.write_text(
        f"tasks:\n  subtract:\n    class: {__name__}.FailWhileMarkedTask\n"
        f"    config: {{marker: {marker}}}\n"
    )
    saved = tmp_path / "g.json"
    invoke(f"qgraph -p {yaml} -b {repo} -i rawexpr,calib -o u/s --save-qgraph {saved}")
    common = f"-g {saved} -b {repo} -o u/s --scheduler {scheduler} --no-progress"
    out = invoke(f"run {common} --register-dataset-types", code=1)
    assert "2 quanta succeeded, 2 failed" in out
    marker.unlink()
    out = invoke(f"run {common}", code=1)
    assert "already exist" in out
    assert "--skip-existing" in out
    out = invoke(f"run {common} --skip-existing")
    assert "Quantum graph: 2 quanta" in out
    assert "2 quanta succeeded, 0 failed" in out
    rows = as_json(f"query-datasets {repo} dark_subtracted --collections u/s")
    assert len(rows) == 4
    assert len({r["run"] for r in rows}) == 1
    assert as_json(f"query-quanta {repo} --collections u/s --status failed") == []


def test_saved_graph_of_another_repository_is_named(
    repo: Path, tmp_path: Path, sim_dir: Path, scheduler: str
) -> None:
    """A graph saved from one repository and run against another, whose datasets have
    other ids: the error says so, rather than blaming a prune."""
    saved = tmp_path / "g.json"
    invoke(
        f"qgraph -p {EXAMPLE} -b {repo} -i rawexpr,calib -o u/o --output-run u/o/graph "
        f"--save-qgraph {saved}"
    )
    other = tmp_path / "other"
    invoke(f"create {other}")
    invoke(f"ingest-simulated {other} {sim_dir} --ingest-type raw --no-progress")
    invoke(f"ingest-simulated {other} {sim_dir} --ingest-type dark --no-progress")
    invoke(f"certify-calibrations {other} darkr calib dark")
    run = f"run -g {saved} -b {other} --scheduler {scheduler} --no-progress"
    out = invoke(f"{run} -o u/o --register-dataset-types", code=1)
    assert "not registered at all" in out
    assert "built against another repository" in out
    assert "unstore" not in out
    assert invoke(f"query-collections {other} u/o*") == "(no results)\n"  # nothing was made
    # An existing output chain is left as it was.
    invoke(
        f"run -p {EXAMPLE} -b {other} -i rawexpr,calib -o u/o --output-run u/o/first "
        f"--scheduler {scheduler} --no-progress --register-dataset-types"
    )
    before = invoke(f"query-collections {other}")
    invoke(f"{run} -o u/o", code=1)
    assert invoke(f"query-collections {other}") == before


def test_replace_run_on_a_hand_made_chain_loses_no_input(repo: Path, scheduler: str) -> None:
    """A chain whose head is an input run: --replace-run --prune-replaced refuses, before
    anything runs, and the raws, the chain and the collections stay as they were."""
    invoke(f"collection-chain {repo} mine rawexpr,calib")
    before = invoke(f"query-collections {repo}")
    raws = as_json(f"query-datasets {repo} raw --collections rawexpr")
    for extra in ("", "-i rawexpr,calib"):
        out = invoke(
            f"run -p {EXAMPLE} -b {repo} -o mine {extra} --replace-run --prune-replaced purge "
            f"--scheduler {scheduler} --no-progress --register-dataset-types",
            code=1,
        )
        assert "--replace-run would replace 'rawexpr'" in out
        assert "succeeded" not in out
    out = invoke(f"run -p {EXAMPLE} -b {repo} -o mine --extend-run --scheduler {scheduler}", code=1)
    assert "--extend-run would write into 'rawexpr'" in out
    assert "no pipeline wrote that run" in out
    assert invoke(f"query-collections {repo}") == before
    assert as_json(f"query-datasets {repo} raw --collections rawexpr") == raws
    assert all(Path(r["uri"]).exists() for r in raws)


def test_remove_runs_names_the_chain_and_the_command(repo: Path) -> None:
    invoke(f"collection-chain {repo} mine rawexpr,calib")
    out = invoke(f"remove-runs {repo} rawexpr --no-confirm", code=1)
    assert "is a child of chain(s) mine" in out
    assert "spherex-dask collection-chain REPO CHAIN rawexpr --mode remove" in out


def test_usage_errors(repo: Path, scheduler: str) -> None:
    out = invoke(f"run -b {repo} -i rawexpr -o x", code=2)
    assert "exactly one of -p PIPELINE and -g QGRAPH" in out
    base = f"-p {EXAMPLE} -b {repo} -i rawexpr,calib -o x"
    out = invoke(f"run {base} --scheduler {scheduler} --no-progress", code=1)
    assert "not registered" in out
    assert "--register-dataset-types" in out
    assert "x" not in invoke(f"query-collections {repo}").split()  # nothing was created
    out = invoke(f"qgraph {base} --replace-run", code=1)
    assert "needs an existing output chain" in out
    out = invoke(f"qgraph {base} -c subtract:nope=1", code=1)
    assert "nope" in out
    out = invoke(f"qgraph {base} -c subtract:connections.raw=rawz", code=1)
    assert "Dataset type 'rawz' is not registered" in out
    assert "The pipeline needs 'rawz' as an input" in out  # the note added by the builder


def test_query_quanta_names_its_own_option(repo: Path) -> None:
    out = invoke(f"query-quanta {repo} --data-id detector", code=2)
    assert "Invalid value for --data-id: 'detector' is not NAME=VALUE" in out


def test_unwritable_graph_files_are_named(repo: Path, tmp_path: Path) -> None:
    base = f"qgraph -p {EXAMPLE} -b {repo} -i rawexpr,calib -o x"
    for option in ("--qgraph-dot", "--save-qgraph"):
        out = invoke(f"{base} {option} {tmp_path / 'nodir' / 'graph.out'}", code=1)
        assert f"Error: Cannot write {tmp_path / 'nodir' / 'graph.out'}: No such file" in out
        assert "Traceback" not in out


def test_unreachable_scheduler_leaves_the_repository_unchanged(repo: Path, monkeypatch):
    """A cluster that cannot be reached fails the run before any output collection is made."""
    import socket

    from spherex_dask.pipeline import _cluster

    monkeypatch.setattr(_cluster, "SCHEDULER_TIMEOUT", 0.5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there
    before = invoke(f"query-collections {repo}")
    out = invoke(
        f"run -p {EXAMPLE} -b {repo} -i rawexpr,calib -o x --register-dataset-types "
        f"--scheduler {address} --no-progress",
        code=1,
    )
    assert "Could not reach the Dask scheduler" in out
    assert invoke(f"query-collections {repo}") == before


def test_missing_files_fail_before_any_cluster_starts(repo: Path, tmp_path: Path, monkeypatch):
    """A mistyped pipeline, graph or repository path is reported at once: no cluster is
    started (and waited for) first."""
    from spherex_dask.pipeline import _cluster

    started: list[dict] = []

    def refuse(**kwargs):
        started.append(kwargs)
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(_cluster, "client_in_background", refuse)
    out = invoke(f"run -p {tmp_path / 'nope.yaml'} -b {repo} -i rawexpr,calib -o x", code=1)
    assert "nope.yaml" in out
    out = invoke(f"run -g {tmp_path / 'nope.qgraph'} -b {repo} -o x", code=2)
    assert "nope.qgraph" in out
    out = invoke(f"run -p {EXAMPLE} -b {tmp_path / 'norepo'} -i rawexpr,calib -o x", code=1)
    assert "norepo" in out
    assert started == []
