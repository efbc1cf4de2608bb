# SPDX-License-Identifier: BSD-3-Clause
"""Local workers forked from a warm server (``spherex_dask.pipeline._forkserver``).

Each case runs in a fresh interpreter: the server must start before ``distributed`` is
imported, and the start method it sets is process-wide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from spherex_dask.pipeline._forkserver import _pre_spawn_environ, _server_environ

PROBE = """
import json, os, signal, sys, time
from spherex_dask.pipeline._forkserver import start_worker_forkserver

started = start_worker_forkserver()
again = start_worker_forkserver()  # idempotent
from spherex_dask.pipeline import make_client

def probe():
    import os, sys
    keys = ("OMP_NUM_THREADS", "PYTHONHASHSEED")
    # The environment the process was started (exec'd) with, which glibc read its malloc
    # settings from; a forked worker has the fork server's.
    with open("/proc/self/environ", "rb") as f:
        start_env = [v.split(b"=", 1)[0].decode() for v in f.read().split(b"\\0") if v]
    from distributed.versions import _version_cached
    return {"pid": os.getpid(), "ppid": os.getppid(), "xarray": "xarray" in sys.modules,
            "versions": _version_cached.cache_info()._asdict(),
            "env": {k: os.environ.get(k) for k in keys},
            "malloc_trim": "MALLOC_TRIM_THRESHOLD_" in start_env}

with make_client(n_workers=1) as client:
    (first,) = client.run(probe).values()
    os.kill(first["pid"], signal.SIGKILL)  # the nanny must start a new worker
    deadline = time.monotonic() + 60
    while True:
        infos = list(client.run(probe, on_error="ignore").values())
        if infos and infos[0]["pid"] != first["pid"]:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the killed worker was not restarted")
        time.sleep(0.2)
    total = client.submit(sum, [1, 2, 3]).result()
print(json.dumps({"started": started, "again": again, "client": os.getpid(), "first": first,
                  "marker": os.environ.get("SPHEREX_DASK_FORK_SERVER"),
                  "second": infos[0], "total": total}))
"""


def _clean_environ() -> dict[str, str]:
    """This environment without the pre-spawn variables (an earlier test of this session
    may have started a fork server in this process, which sets them)."""
    keys = {"OMP_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED"}
    return {k: v for k, v in os.environ.items() if k not in keys}


def _probe(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=180,
        env={**_clean_environ(), **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_workers_are_forked_from_a_warm_server_and_restarted_from_it():
    out = _probe()
    assert out["started"] is True
    assert out["again"] is True
    assert out["marker"] is None  # set for the server's start only
    first, second = out["first"], out["second"]
    # Forked by the server, not by the client process that hosts the nanny.
    assert first["ppid"] != out["client"]
    assert second["ppid"] == first["ppid"]
    assert first["xarray"]  # preloaded by the server
    assert second["xarray"]
    # The package versions each worker sends as it registers were looked up by the server
    # (the misses) and inherited: the worker's own lookups were all hits.
    for worker in (first, second):
        assert worker["versions"]["misses"] > 0
        assert worker["versions"]["hits"] >= worker["versions"]["misses"]
    # distributed's pre-spawn environment reaches forked workers too ...
    assert first["env"] == {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "6640"}
    # ... but for its default MALLOC_TRIM_THRESHOLD_ (see _server_environ): glibc started
    # without it, and reuses freed planes instead of mapping new ones.
    assert first["malloc_trim"] is False
    assert second["malloc_trim"] is False
    assert out["total"] == 6


def test_an_explicit_start_method_is_kept():
    out = _probe(DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD="spawn")
    assert out["started"] is False
    assert out["again"] is False
    assert out["first"]["ppid"] == out["client"]  # spawned by the nanny in the client process
    assert out["first"]["malloc_trim"] is True  # distributed's MALLOC_TRIM_THRESHOLD_ applies
    assert out["total"] == 6


@pytest.mark.parametrize(
    ("config", "expected_env"),
    [
        ("distributed: {worker: {multiprocessing-method: spawn}}", "1"),
        ("distributed: {nanny: {pre-spawn-environ: {OMP_NUM_THREADS: 3}}}", "3"),
    ],
)
def test_a_configuration_file_choice_is_kept(tmp_path, config, expected_env):
    (tmp_path / "dask.yaml").write_text(config + "\n")
    out = _probe(DASK_CONFIG=str(tmp_path))
    assert out["started"] is False
    assert out["first"]["ppid"] == out["client"]  # spawned by the nanny in the client process
    assert out["first"]["env"]["OMP_NUM_THREADS"] == expected_env
    assert out["total"] == 6


@pytest.mark.parametrize(
    ("config", "environ", "expected"),
    [
        ({"OMP_NUM_THREADS": 1}, {}, {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "6640"}),
        # A configured variable already set in the environment keeps its value.
        (
            {"OMP_NUM_THREADS": 1},
            {"OMP_NUM_THREADS": "4"},
            {"OMP_NUM_THREADS": "4", "PYTHONHASHSEED": "6640"},
        ),
        # None in the configuration sets nothing.
        ({"MKL_NUM_THREADS": None}, {}, {"PYTHONHASHSEED": "6640"}),
        # A configured hash seed is kept, unless it is 0 (random), as distributed's nanny does.
        ({"PYTHONHASHSEED": 12}, {}, {"PYTHONHASHSEED": "12"}),
        ({"PYTHONHASHSEED": 0}, {}, {"PYTHONHASHSEED": "6640"}),
    ],
)
def test_pre_spawn_environ_follows_the_nanny(monkeypatch, config, environ, expected):
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert _pre_spawn_environ(config) == expected


EXIT_PROBE = """
import os, sys

class Teardown:
    def __del__(self):
        os.write(1, b"teardown " + ("child" if os.getpid() != PARENT else "server").encode() + b"\\n")

PARENT = os.getpid()
import spherex_dask.pipeline._server_exit  # noqa: E402,F401  (as the fork server imports it)
keep = Teardown()  # finalized only by the interpreter's teardown
pid = os.fork()
if pid == 0:  # a process forked from the server exits the normal way
    sys.exit(0)
os.waitpid(pid, 0)
sys.stdout.write("buffered output of the server")  # no newline: still in the buffer at exit
"""


def test_the_fork_server_exits_without_the_interpreter_teardown():
    result = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SPHEREX_DASK_FORK_SERVER": "1"},  # as start_worker_forkserver sets
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The forked child ran its teardown; the server skipped it but flushed its output.
    assert lines == ["teardown child", "buffered output of the server"]


def test_the_exit_module_does_nothing_outside_the_fork_server():
    # pytest's doctest collection imports every module of the package: the module must not
    # end such a process with status 0 (it hid a failing test suite's status once).
    code = "import spherex_dask.pipeline._server_exit\nraise SystemExit(3)"
    env = {k: v for k, v in os.environ.items() if k != "SPHEREX_DASK_FORK_SERVER"}
    result = subprocess.run([sys.executable, "-c", code], env=env, timeout=120, check=False)
    assert result.returncode == 3


def test_the_exit_module_is_the_first_the_server_preloads():
    from spherex_dask.pipeline._forkserver import PRELOAD

    assert PRELOAD[0] == "spherex_dask.pipeline._server_exit"


DEFAULT_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": 65536, "OMP_NUM_THREADS": 1}


@pytest.mark.parametrize(
    ("config", "environ", "trim"),
    [
        (DEFAULT_ENVIRON, {}, None),  # distributed's default: left out
        (DEFAULT_ENVIRON, {"MALLOC_TRIM_THRESHOLD_": "65536"}, "65536"),  # set by the user
        ({**DEFAULT_ENVIRON, "MALLOC_TRIM_THRESHOLD_": 0}, {}, "0"),  # configured otherwise
    ],
)
def test_the_server_leaves_out_only_distributeds_default_trim_threshold(config, environ, trim):
    env = _server_environ(config, DEFAULT_ENVIRON, environ)
    assert env.get("MALLOC_TRIM_THRESHOLD_") == trim
    assert env["OMP_NUM_THREADS"] == "1"
