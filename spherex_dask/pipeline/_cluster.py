# SPDX-License-Identifier: BSD-3-Clause
"""The single helper that builds a ``distributed.Client`` for the CLI and the demo.

Library functions take a client; only the CLI and the demo build one, here. Three kinds:

- ``cluster="local"`` (default): a :class:`distributed.LocalCluster` of processes, its dashboard
  on 127.0.0.1 (loaded on its first visit, see ``_dashboard``);
- ``scheduler="tcp://host:port"``: an existing scheduler;
- ``cluster="slurm"`` or ``"pbs"`` (or any dask-jobqueue class, or ``"module:Class"`` for a
  site-specific subclass): a dask-jobqueue cluster configured by the usual jobqueue YAML
  (``jobqueue.slurm.cores``, ``memory``, ``walltime``, ``queue``...), explicit keyword
  arguments overriding it.

dask-jobqueue is an optional extra (``pip install spherex_dask[jobqueue]``), imported only when
a jobqueue cluster is asked for.
"""

from __future__ import annotations

import importlib
import logging
import platform
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dask.config
import distributed
from dask.system import CPU_COUNT
from distributed.gc import disable_gc_diagnosis, enable_gc_diagnosis

from ..errors import ConfigError
from ._dashboard import load_dashboard_on_first_visit
from ._forkserver import server_started

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from dask_jobqueue import JobQueueCluster

__all__ = [
    "JOBQUEUE_CLUSTERS",
    "client_in_background",
    "dashboard_link",
    "make_client",
    "make_jobqueue_cluster",
]

logger = logging.getLogger(__name__)

#: Cluster names understood by :func:`make_client`, with their dask-jobqueue class names.
JOBQUEUE_CLUSTERS: dict[str, str] = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
    "oar": "OARCluster",
    "moab": "MoabCluster",
}

#: Seconds to wait for an existing scheduler (``scheduler=``) before giving up.
SCHEDULER_TIMEOUT = 10.0

#: The local dashboard's preferred address; another free port is used when it is taken.
LOCAL_DASHBOARD = "127.0.0.1:8787"

#: Module each local worker imports as it starts (the libraries a quantum needs).
WORKER_PRELOAD = "spherex_dask.pipeline._warmup"

#: How often the scheduler, nannies and workers of a local cluster do their periodic work,
#: where distributed's defaults (20 ms, 500 ms and 10 ms) suit interactive use. Each of these
#: callbacks wakes a process's event loop, which then takes the GIL and a core from the
#: tasks: on 2 cores with 2 workers, a pipeline of quanta of 0.15 s ran 4-5% faster with
#: these values (median of 7 interleaved runs of 24 quanta, ``benchmarks/pipeline.py``).
#: Event loops blocked longer than ``distributed.admin.tick.limit`` (3 s) are still reported,
#: the dashboard's system page plots one point a second and its profile samples each
#: running task ten times a second. A value set in the dask configuration wins (see
#: :func:`local_intervals`).
LOCAL_INTERVALS: dict[str, str] = {
    "distributed.admin.tick.interval": "200ms",
    "distributed.admin.system-monitor.interval": "1s",
    "distributed.worker.profile.interval": "100ms",
}


def make_client(
    *,
    scheduler: str | None = None,
    cluster: str = "local",
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = None,
    jobqueue_kwargs: Mapping[str, Any] | None = None,
) -> distributed.Client:
    """Build the ``distributed.Client`` a pipeline runs on.

    Parameters
    ----------
    scheduler : `str`, optional
        Address of a running scheduler (``tcp://host:port``); when given, no cluster is made
        and ``cluster`` must stay ``"local"``.
    cluster : `str`, optional
        ``"local"`` (processes on this machine), a jobqueue name from `JOBQUEUE_CLUSTERS`
        (``"slurm"``, ``"pbs"``...) or ``"module:Class"`` naming a ``JobQueueCluster``
        subclass (a site-specific cluster).
    n_workers : `int`, optional
        Workers to start: ``min(cpu count, 4)`` locally; for jobqueue clusters the workers to
        scale to (default one job).
    threads_per_worker : `int`, optional
        Threads per local worker. Jobqueue workers take theirs from ``cores``/``processes``.
    memory_limit : `str`, optional
        Memory per local worker (default ``"auto"``), or the ``memory`` per job of a jobqueue
        cluster (default from the jobqueue YAML).
    jobqueue_kwargs : `~collections.abc.Mapping`, optional
        Keyword arguments of the jobqueue cluster class (``cores``, ``walltime``, ``queue``,
        ``interface``, ``scheduler_options``...), overriding the jobqueue YAML.

    Returns
    -------
    client : `distributed.Client`
        Closing it (``client.close()`` or a ``with`` block) also closes a cluster made here.

    Raises
    ------
    ConfigError
        Unknown cluster name, conflicting options, dask-jobqueue missing, or a scheduler that
        cannot be reached.

    Notes
    -----
    A local cluster does distributed's periodic work (event-loop ticks, system monitor,
    profiler samples) at the intervals of `LOCAL_INTERVALS`, unless the dask configuration
    sets them.
    """
    if n_workers is not None and n_workers < 1:
        raise ConfigError(f"n_workers must be at least 1, got {n_workers}.")
    if scheduler is not None:
        if cluster != "local" or jobqueue_kwargs:
            raise ConfigError(
                f"Give either a scheduler address ({scheduler!r}) or a cluster to start "
                f"({cluster!r}), not both."
            )
        return _connect(scheduler)
    if cluster == "local":
        if jobqueue_kwargs:
            raise ConfigError("jobqueue_kwargs only apply to jobqueue clusters, not 'local'.")
        return _local_client(n_workers, threads_per_worker, memory_limit)
    kwargs = dict(jobqueue_kwargs or {})
    if memory_limit is not None:
        kwargs.setdefault("memory", memory_limit)
    jq_cluster = make_jobqueue_cluster(cluster, **kwargs)
    try:
        if n_workers is None:
            jq_cluster.scale(jobs=1)
        else:
            jq_cluster.scale(n=n_workers)
        client = distributed.Client(jq_cluster, set_as_default=False)
    except BaseException:
        jq_cluster.close()
        raise
    _close_cluster_with_client(client, jq_cluster)
    logger.info("Submitted %s jobs; dashboard at %s", cluster, dashboard_link(client))
    return client


@contextmanager
def client_in_background(**kwargs: Any) -> Iterator[Callable[[], distributed.Client]]:
    """Start :func:`make_client` (same arguments) in a thread; yield a function that waits for it.

    The CLI and the demo start the cluster this way before building the quantum graph, so
    that starting the workers (and their imports, see ``_warmup``) overlaps with it. The
    client, if it started, is closed when the block ends, whether or not it was used; an
    error starting it is raised by the waiting function (or logged if nobody waited).

    Examples
    --------
    ::

        with client_in_background(n_workers=2) as get_client:
            graph = build_quantum_graph(...)
            run_quantum_graph(graph, butler, get_client())
    """
    if kwargs.get("scheduler") is None and kwargs.get("cluster", "local") != "local":
        try:
            _import_jobqueue()  # here, in the calling (main) thread: see _import_jobqueue
        except ConfigError:
            pass  # not installed: make_client says so to the thread that waits for it
    future: Future[distributed.Client] = Future()

    def start() -> None:
        try:
            future.set_result(make_client(**kwargs))
        except BaseException as err:  # handed to the waiting thread
            future.set_exception(err)

    # A local scheduler turns on distributed's GC diagnosis (a gc callback) as it starts. Done
    # from the cluster thread, that can land in the middle of a collection running in this
    # one: the callback then sees a "stop" without its "start" and an AssertionError is
    # printed. Turned on here first, the scheduler only counts itself as one more user.
    enable_gc_diagnosis()
    thread = threading.Thread(target=start, name="spherex-dask-cluster-start", daemon=True)
    thread.start()
    waited = False

    def get_client() -> distributed.Client:
        nonlocal waited
        waited = True
        return future.result()

    try:
        yield get_client
    finally:
        thread.join()
        error = future.exception()
        if error is None:
            client = future.result()
            if client.status not in ("closing", "closed"):
                client.close()
        elif not waited:
            logger.warning("The Dask cluster started for this run failed to start: %s", error)
        disable_gc_diagnosis()


def make_jobqueue_cluster(cluster: str, **kwargs: Any) -> JobQueueCluster:
    """Make a dask-jobqueue cluster, not yet scaled (no job is submitted).

    Parameters
    ----------
    cluster : `str`
        A name from `JOBQUEUE_CLUSTERS` or ``"module:Class"``.
    **kwargs
        Arguments of the cluster class; what is not given comes from the jobqueue YAML
        (``dask.config`` key ``jobqueue.<name>``).

    Returns
    -------
    cluster : `dask_jobqueue.JobQueueCluster`
        Its scheduler is running; ``cluster.job_script()`` shows what would be submitted.
    """
    cls = _jobqueue_class(cluster)
    with _port_fallback_allowed():
        return cls(**kwargs)


def dashboard_link(client: distributed.Client) -> str | None:
    """Return the URL of the client's dashboard, or None when the scheduler serves none.

    Parameters
    ----------
    client : `distributed.Client`
        A connected client.

    Returns
    -------
    link : `str` or `None`
        For example ``http://127.0.0.1:8787/status``.
    """
    try:
        link = client.dashboard_link
    except (KeyError, AttributeError, OSError):
        return None
    return link or None


def cache_host_facts() -> None:
    """Compute now what distributed asks of this host once per process, and keep it.

    As a scheduler, worker or client starts, distributed reads ``platform.uname().processor``
    (one ``uname -p`` subprocess the first time) and, as a worker registers, the installed
    versions of about 20 packages (``distributed.versions.get_versions``, about 8 ms the first
    time: ``importlib.metadata`` scans ``site-packages``); both answers are then kept for the
    process. The worker fork server calls this before it forks the workers (see
    ``_warmup``), which inherit the answers instead of each computing them as it registers. A
    local cluster calls it before it starts, in the thread that starts it, so that neither
    the scheduler (which compares each new worker's versions with its own) nor the command's
    client computes them once the workers are up.
    """
    from distributed.versions import get_versions

    platform.uname().processor  # noqa: B018 (computed on first access, then kept)
    get_versions()


def local_intervals() -> dict[str, str]:
    """The `LOCAL_INTERVALS` whose keys are still at distributed's default value.

    A key set in a dask configuration file, in a ``DASK_...`` environment variable or with
    ``dask.config.set`` keeps its value.
    """
    defaults = dask.config.merge(*dask.config.defaults)
    return {
        key: value
        for key, value in LOCAL_INTERVALS.items()
        if dask.config.get(key, None) == dask.config.get(key, None, config=defaults)
    }


def _local_client(
    n_workers: int | None, threads_per_worker: int, memory_limit: str | None
) -> distributed.Client:
    # The scheduler, the nannies and the client read the intervals as they are made; each
    # nanny hands its configuration to its worker process (a restarted one too).
    with dask.config.set(local_intervals()):
        return _start_local_client(n_workers, threads_per_worker, memory_limit)


def _start_local_client(
    n_workers: int | None, threads_per_worker: int, memory_limit: str | None
) -> distributed.Client:
    cache_host_facts()
    if n_workers is None:
        n_workers = min(CPU_COUNT, 4)
    if server_started() and hasattr(distributed.utils, "_forkserver_preload_set"):
        distributed.utils._forkserver_preload_set = True  # see server_started
    with _port_fallback_allowed():
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            memory_limit=memory_limit or "auto",
            host="127.0.0.1",
            dashboard_address=LOCAL_DASHBOARD,
            # The HTTP server starts; the Bokeh dashboard loads on its first visit.
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
            preload=[WORKER_PRELOAD],
        )
    try:
        load_dashboard_on_first_visit(cluster.scheduler)
        client = distributed.Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    _close_cluster_with_client(client, cluster)
    logger.info(
        "Local cluster of %d worker processes; dashboard at %s", n_workers, dashboard_link(client)
    )
    return client


def _connect(address: str) -> distributed.Client:
    try:
        client = distributed.Client(address, timeout=SCHEDULER_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ConfigError(
            f"Could not reach the Dask scheduler at {address!r} within {SCHEDULER_TIMEOUT:g} s "
            f"({err.__class__.__name__}: {err}). Check that a scheduler is running there "
            "(`dask scheduler` prints its address) and reachable from this machine, or leave "
            "out the scheduler address to start a local cluster."
        ) from err
    logger.info("Connected to scheduler %s; dashboard at %s", address, dashboard_link(client))
    return client


def _jobqueue_class(cluster: str) -> type[JobQueueCluster]:
    if ":" in cluster:
        return _import_cluster_class(cluster)
    if cluster not in JOBQUEUE_CLUSTERS:
        choices = ", ".join(["local", *JOBQUEUE_CLUSTERS, "module:Class"])
        raise ConfigError(f"Unknown cluster {cluster!r}; choose one of: {choices}.")
    jobqueue = _import_jobqueue(f"cluster={cluster!r}")
    return getattr(jobqueue, JOBQUEUE_CLUSTERS[cluster])


def _import_jobqueue(needed_by: str = "a jobqueue cluster") -> ModuleType:
    """Import ``dask_jobqueue``, keeping this process's SIGINT (Ctrl-C) handler.

    dask-jobqueue (0.9) installs a SIGINT handler that calls ``sys.exit()`` as it is imported
    (``dask_jobqueue/runner.py``). In the main thread that would turn Ctrl-C into a silent
    exit with status 0 (no "Interrupted" message, status 130 expected by batch scripts); in
    any other thread ``signal.signal`` raises ``ValueError``, so the import fails there.
    :func:`client_in_background` therefore imports it in the calling thread first.

    Parameters
    ----------
    needed_by
        What needs it, for the error message.

    Returns
    -------
    module : `types.ModuleType`
        The ``dask_jobqueue`` module.

    Raises
    ------
    ConfigError
        If dask-jobqueue is not installed, or if it is first imported outside the main thread.
    """
    if "dask_jobqueue" in sys.modules:
        return sys.modules["dask_jobqueue"]
    if threading.current_thread() is not threading.main_thread():
        raise ConfigError(
            f"{needed_by} needs dask-jobqueue, which cannot be imported first outside the main "
            "thread (it installs a signal handler as it is imported); `import dask_jobqueue` "
            "in the main thread before starting the cluster from another thread."
        )
    handler = signal.getsignal(signal.SIGINT)
    try:
        return importlib.import_module("dask_jobqueue")
    except ImportError as err:
        raise ConfigError(
            f"{needed_by} needs dask-jobqueue, which is not installed; install it with "
            "`pip install 'spherex_dask[jobqueue]'`."
        ) from err
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)


def _import_cluster_class(path: str) -> type[JobQueueCluster]:
    module_name, _, attr = path.partition(":")
    _import_jobqueue(f"cluster={path!r}")  # first: the module named likely imports it
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"Cannot import cluster class {path!r}: {err}.") from err
    from dask_jobqueue import JobQueueCluster

    if not (isinstance(cls, type) and issubclass(cls, JobQueueCluster)):
        raise ConfigError(f"{path!r} is not a dask_jobqueue.JobQueueCluster subclass.")
    return cls


def _close_cluster_with_client(client: distributed.Client, cluster: Any) -> None:
    """Make ``client.close()`` also close the cluster it was made for, once.

    Only the first call closes the cluster: ``Client.__del__`` calls ``close`` again when the
    client is garbage-collected, possibly in a thread that is starting another cluster, and
    closing a cluster there waits for a lock that thread holds.
    """
    original_close = client.close
    cluster_closed = False

    def close(*args: Any, **kwargs: Any) -> Any:
        nonlocal cluster_closed
        try:
            return original_close(*args, **kwargs)
        finally:
            if not cluster_closed:
                cluster_closed = True
                cluster.close()

    client.close = close  # type: ignore[method-assign]


@contextmanager
def _port_fallback_allowed() -> Iterator[None]:
    """Let distributed move the dashboard to a free port without a warning turning into an error."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Port \d+ is already in use", category=UserWarning
        )
        yield
