# SPDX-License-Identifier: BSD-3-Clause
"""make_client: local processes, a scheduler address, dask-jobqueue job scripts and real SLURM."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import dask
import dask.array as da
import distributed
import pytest
import yaml

from spherex_dask.errors import ConfigError
from spherex_dask.pipeline import _cluster, _dashboard
from spherex_dask.pipeline._cluster import dashboard_link, make_client, make_jobqueue_cluster

REPO = Path(__file__).resolve().parents[2]
START_SLURM = REPO / "scripts" / "start-slurm"
IN_CI = os.environ.get("CI", "").lower() == "true"
LOOPBACK_SCHEDULER = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}

JOBQUEUE_YAML = """
jobqueue:
  slurm:
    cores: 2
    processes: 1
    memory: 4GiB
    walltime: "01:30:00"
    queue: debug
    account: spherex
  pbs:
    cores: 2
    processes: 1
    memory: 4GiB
    walltime: "01:30:00"
    queue: debug
"""


def _jobqueue_config() -> dict[str, object]:
    """The YAML above as dotted keys, so that dask.config.set merges instead of replacing."""
    sections = yaml.safe_load(JOBQUEUE_YAML)["jobqueue"]
    return {
        f"jobqueue.{name}.{key}": value
        for name, options in sections.items()
        for key, value in options.items()
    }


def _square(x: int) -> int:
    return x * x


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.integration
def test_local_client_runs_tasks_and_closes_its_cluster():
    with make_client(n_workers=1) as client:
        assert client.submit(_square, 7).result() == 49
        assert len(client.scheduler_info()["workers"]) == 1
        link = dashboard_link(client)
        assert link is not None
        assert link.startswith("http://127.0.0.1:")
        cluster = client.cluster
        assert isinstance(cluster, distributed.LocalCluster)
    assert cluster.status.name == "closed"


def _worker_intervals(dask_worker: distributed.Worker) -> dict[str, object]:
    """The periodic work of the worker running this (``client.run`` passes it)."""
    worker = dask_worker
    return {
        "tick": worker._tick_interval,
        "monitor": worker.periodic_callbacks["monitor"].callback_time,
        "profile": worker.periodic_callbacks["profile"].callback_time,
        "config": {key: dask.config.get(key) for key in _cluster.LOCAL_INTERVALS},
    }


@pytest.mark.integration
def test_local_cluster_does_its_periodic_work_less_often_than_distributed_defaults():
    with make_client(n_workers=1) as client:
        (seen,) = client.run(_worker_intervals).values()
        scheduler = client.cluster.scheduler
        assert scheduler._tick_interval == pytest.approx(0.2)
        assert scheduler.periodic_callbacks["monitor"].callback_time == pytest.approx(1000)
    assert seen["config"] == _cluster.LOCAL_INTERVALS
    assert seen["tick"] == pytest.approx(0.2)
    assert seen["monitor"] == pytest.approx(1000)
    assert seen["profile"] == pytest.approx(100)
    # Only the cluster's own processes: this process's configuration is as it was.
    defaults = dask.config.merge(*dask.config.defaults)
    for key in _cluster.LOCAL_INTERVALS:
        assert dask.config.get(key) == dask.config.get(key, config=defaults)


@pytest.mark.integration
def test_local_cluster_keeps_intervals_set_in_the_dask_config():
    with dask.config.set({"distributed.admin.tick.interval": "50ms"}):
        assert "distributed.admin.tick.interval" not in _cluster.local_intervals()
        with make_client(n_workers=1) as client:
            (seen,) = client.run(_worker_intervals).values()
    assert seen["tick"] == pytest.approx(0.05)
    assert seen["config"]["distributed.admin.tick.interval"] == "50ms"
    assert seen["profile"] == pytest.approx(100)  # the keys left alone still change


def _fetch(url: str) -> tuple[int, str, str]:
    """Status, final URL (after redirects) and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, url, err.read().decode()


def _bokeh_apps(client: distributed.Client) -> list[object]:
    apps = client.cluster.scheduler.http_application.applications
    return [
        app for app in apps if any(c.__module__.startswith("bokeh.") for c in type(app).__mro__)
    ]


@pytest.mark.integration
def test_local_dashboard_loads_on_its_first_visit():
    with make_client(n_workers=1) as client:
        link = dashboard_link(client)
        assert link is not None
        base = link.rsplit("/", 1)[0]
        # The scheduler's own routes work at once, without the Bokeh application.
        assert _fetch(f"{base}/health")[0::2] == (200, "ok")
        assert _bokeh_apps(client) == []
        # The first page loads it, and is then served by it.
        status, url, body = _fetch(link)
        assert (status, url) == (200, link)
        assert "bokeh" in body.lower()
        assert len(_bokeh_apps(client)) == 1
        assert _fetch(f"{base}/")[:2] == (200, link)  # the dashboard's own redirect
        assert _fetch(f"{base}/workers")[0] == 200
        assert _fetch(f"{base}/no-such-page")[0] == 404
        assert len(_bokeh_apps(client)) == 1  # loaded once
        assert client.submit(_square, 4).result() == 16


@pytest.mark.integration
def test_local_dashboard_without_bokeh_says_what_to_install(monkeypatch):
    monkeypatch.setattr(_dashboard, "DASHBOARD_MODULE", "no_such_dashboard_module")
    with make_client(n_workers=1) as client:
        link = dashboard_link(client)
        assert link is not None
        status, _, body = _fetch(link)
        assert status == 404
        assert "pip install" in body
        assert "bokeh" in body
        assert _bokeh_apps(client) == []
        assert client.submit(_square, 5).result() == 25


@pytest.mark.integration
def test_scheduler_address_connects_to_a_running_cluster():
    with distributed.LocalCluster(
        n_workers=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        client = make_client(scheduler=cluster.scheduler_address)
        try:
            assert client.scheduler.address == cluster.scheduler_address
            assert client.submit(_square, 3).result() == 9
            assert dashboard_link(client) == cluster.dashboard_link
        finally:
            client.close()
        # Closing a client that only connected leaves the scheduler running.
        assert cluster.status.name == "running"


def test_unreachable_scheduler_is_a_config_error(monkeypatch):
    monkeypatch.setattr(_cluster, "SCHEDULER_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ConfigError, match="Could not reach the Dask scheduler") as info:
        make_client(scheduler=address)
    assert address in str(info.value)
    assert "dask scheduler" in str(info.value)


def _worker_has_xarray() -> bool:
    return "xarray" in sys.modules and "spherex_dask.pipeline._worker" in sys.modules


@pytest.mark.integration
def test_client_in_background_starts_preloaded_workers_and_closes_them():
    """The cluster starts in a thread; its workers import what quanta need as they start;
    leaving the block closes it."""
    with _cluster.client_in_background(n_workers=1) as get_client:
        client = get_client()
        assert get_client() is client
        assert client.submit(_worker_has_xarray, pure=False).result() is True
        cluster = client.cluster
    assert client.status == "closed"
    assert cluster.status.name == "closed"


@pytest.mark.integration
def test_client_in_background_closes_the_cluster_when_the_block_fails():
    with pytest.raises(RuntimeError, match="graph build failed"):
        with _cluster.client_in_background(n_workers=1) as get_client:
            raise RuntimeError("graph build failed")
    client = get_client()  # it started, and was closed although nobody used it
    assert client.status == "closed"


@pytest.mark.integration
def test_closing_a_client_again_leaves_its_closed_cluster_alone(monkeypatch):
    """A second close (Client.__del__ calls one at garbage collection, in whatever thread)
    does not close the cluster again: that could wait forever on distributed's loop lock."""
    with make_client(n_workers=1) as client:
        cluster = client.cluster
    calls: list[int] = []
    monkeypatch.setattr(cluster, "close", lambda *args, **kwargs: calls.append(1))
    client.close()
    client.__del__()
    assert calls == []


def test_client_in_background_start_errors(monkeypatch, caplog):
    """A cluster that cannot start: the waiting call raises its error; unwaited, it is logged."""
    monkeypatch.setattr(_cluster, "SCHEDULER_TIMEOUT", 0.5)
    address = f"tcp://127.0.0.1:{_free_port()}"
    with _cluster.client_in_background(scheduler=address) as get_client:
        with pytest.raises(ConfigError, match="Could not reach the Dask scheduler"):
            get_client()
    with caplog.at_level("WARNING", logger="spherex_dask.pipeline._cluster"):
        with _cluster.client_in_background(scheduler=address):
            pass
    assert "failed to start" in caplog.text


GC_RACE = """
import gc, sys, threading, time
from spherex_dask.pipeline import _cluster, _dashboard

raised = []
sys.unraisablehook = raised.append


class Slow:
    def __del__(self):  # run by the collector; the GIL is released while it sleeps
        time.sleep(3)


gc.disable()  # only the explicit collection below runs
slow = Slow()
slow.cycle = slow
del slow
with _cluster.client_in_background(n_workers=1) as get_client:
    gc.collect()  # the cluster thread starts its scheduler during this collection
    assert get_client().submit(sum, [1, 2]).result() == 3
gc.enable()
print(len(raised), [repr(u.exc_value) for u in raised])
"""


def test_cluster_started_during_a_collection_raises_nothing():
    """distributed's GC diagnosis, switched on by a scheduler starting in the cluster thread
    in the middle of a collection in the calling thread, used to see a "stop" without its
    "start" and print an AssertionError."""
    result = subprocess.run(
        [sys.executable, "-c", GC_RACE], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "0", result.stdout


def test_unknown_cluster_name_lists_the_choices():
    with pytest.raises(ConfigError, match="Unknown cluster 'kubernetes'") as info:
        make_client(cluster="kubernetes")
    for name in ("local", "slurm", "pbs"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheduler": "tcp://127.0.0.1:1", "cluster": "slurm"}, "not both"),
        ({"cluster": "local", "jobqueue_kwargs": {"cores": 1}}, "only apply to jobqueue"),
        ({"n_workers": 0}, "at least 1"),
        ({"cluster": "no_such_module_xyz:Cluster"}, "Cannot import cluster class"),
        ({"cluster": "collections:OrderedDict"}, "not a dask_jobqueue.JobQueueCluster"),
    ],
)
def test_inconsistent_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_client(**kwargs)


def test_dask_jobqueue_is_imported_lazily():
    code = (
        "import sys, spherex_dask.pipeline._cluster;"
        "assert 'dask_jobqueue' not in sys.modules, 'dask_jobqueue imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_slurm_job_script_comes_from_jobqueue_yaml_with_overrides():
    with dask.config.set(_jobqueue_config()):
        cluster = make_jobqueue_cluster(
            "slurm", walltime="00:10:00", scheduler_options=LOOPBACK_SCHEDULER
        )
        with cluster:
            script = cluster.job_script()
    lines = script.splitlines()
    assert "#SBATCH -p debug" in lines
    assert "#SBATCH -A spherex" in lines
    assert "#SBATCH --cpus-per-task=2" in lines
    assert "#SBATCH --mem=4G" in lines
    assert "#SBATCH -t 00:10:00" in lines  # the explicit keyword beats the YAML's 01:30:00
    (command,) = [line for line in lines if "dask_worker" in line or "dask worker" in line]
    assert "-m distributed.cli.dask_worker tcp://127.0.0.1:" in command
    assert "--nthreads 2" in command


def test_pbs_job_script_comes_from_jobqueue_yaml():
    with dask.config.set(_jobqueue_config()):
        with make_jobqueue_cluster("pbs", scheduler_options=LOOPBACK_SCHEDULER) as cluster:
            script = cluster.job_script()
    assert "#PBS -q debug" in script
    assert "#PBS -l walltime=01:30:00" in script
    assert "ncpus=2" in script
    assert "-m distributed.cli.dask_worker" in script


def _slurm_up() -> bool:
    result = subprocess.run(
        ["sinfo", "-h", "-n", "localhost", "-o", "%T"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip().startswith(("idle", "mixed", "alloc"))


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true requires SLURM: run `bash scripts/start-slurm`)")
    pytest.skip(
        f"{reason}; run `bash scripts/start-slurm` (as root, after apt-get install slurm-wlm munge)"
    )


@pytest.fixture(scope="session")
def slurm():
    """A single-node SLURM cluster on loopback, started by scripts/start-slurm when needed.

    As root the (idempotent) script always runs; daemons it had to start are stopped at the end.
    """
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        _unavailable("SLURM is not installed")
    if os.geteuid() != 0:
        if not _slurm_up():
            _unavailable("SLURM is not running and starting it needs root")
        yield
        return
    result = subprocess.run(
        ["bash", str(START_SLURM)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/start-slurm failed:\n{result.stdout}\n{result.stderr}")
    yield
    if "already up" not in result.stdout:
        subprocess.run(["bash", str(START_SLURM), "stop"], timeout=60, check=False)


@pytest.fixture
def slurm_job_name(slurm):
    """A job name unique to this test; its jobs are cancelled at teardown whatever happens."""
    name = f"spherex-dask-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["scancel", "--name", name], timeout=30, check=False)
    for _ in range(40):
        queue = subprocess.run(
            ["squeue", "-h", "--name", name], capture_output=True, text=True, check=False
        )
        if not queue.stdout.strip():
            break
        time.sleep(0.25)


@pytest.mark.integration
def test_slurm_cluster_runs_a_dask_array_sum(slurm_job_name, tmp_path):
    client = make_client(
        cluster="slurm",
        n_workers=1,
        memory_limit="1GB",
        jobqueue_kwargs={
            "job_name": slurm_job_name,
            "cores": 1,
            "walltime": "00:10:00",
            "queue": "debug",
            "interface": "lo",
            "scheduler_options": LOOPBACK_SCHEDULER,
            "log_directory": str(tmp_path),
        },
    )
    try:
        cluster = client.cluster
        assert f"#SBATCH -J {slurm_job_name}" in cluster.job_script()
        client.wait_for_workers(1, timeout=60)
        (worker,) = client.scheduler_info()["workers"]
        assert worker.startswith("tcp://127.0.0.1:")
        squeue = subprocess.run(
            ["squeue", "-h", "--name", slurm_job_name, "-o", "%T"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert squeue.stdout.split() == ["RUNNING"]
        array = da.arange(10_000, chunks=1_000)
        assert client.compute(array.sum()).result() == sum(range(10_000))
    finally:
        client.close()
    assert cluster.status.name == "closed"


def test_making_a_jobqueue_cluster_keeps_the_sigint_handler(tmp_path):
    """dask-jobqueue installs a SIGINT handler calling sys.exit() as it is imported: Ctrl-C
    would then end `spherex-dask run` with status 0 and without its "Interrupted" message."""
    script = (
        "import signal\n"
        "from spherex_dask.pipeline import make_jobqueue_cluster\n"
        f"with make_jobqueue_cluster('slurm', cores=1, memory='1GB', "
        f"scheduler_options={LOOPBACK_SCHEDULER!r}, log_directory={str(tmp_path)!r}):\n"
        "    pass\n"
        "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
        "signal.getsignal(signal.SIGINT)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
def test_run_command_on_slurm(slurm_job_name, tmp_path, spherex_butler):
    """`spherex-dask run --cluster slurm` starts its cluster in a thread while the graph is
    built; dask-jobqueue, imported there first, failed (signal only works in main thread)."""
    root = spherex_butler.root
    spherex_butler.close()
    config = tmp_path / "dask"
    config.mkdir()
    (config / "jobqueue.yaml").write_text(
        yaml.safe_dump(
            {
                "jobqueue": {
                    "slurm": {
                        "job-name": slurm_job_name,
                        "cores": 1,
                        "processes": 1,
                        "memory": "1GiB",
                        "walltime": "00:10:00",
                        "queue": "debug",
                        "interface": "lo",
                        "log-directory": str(tmp_path / "logs"),
                        "scheduler-options": LOOPBACK_SCHEDULER,
                    }
                }
            }
        )
    )
    command = [sys.executable, "-m", "spherex_dask", "run", "-b", str(root),
               "-p", str(REPO / "pipelines" / "ExamplePipeline.yaml"), "-i", "rawexpr,calib",
               "-o", "u/slurm", "--cluster", "slurm", "-j", "1", "--no-progress",
               "--register-dataset-types"]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "DASK_CONFIG": str(config)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 quanta succeeded, 0 failed" in result.stdout
