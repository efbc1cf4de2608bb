# SPDX-License-Identifier: BSD-3-Clause
"""Start local Dask workers from a warm fork server instead of fresh interpreters.

A local worker spawned the default way (``multiprocessing`` "spawn") starts a new interpreter
that imports distributed, numpy, dask.array, xarray and the formatters: about 1.5 s of CPU
each, paid by every worker at once on the cores the command itself needs. The CLI instead
starts ``multiprocessing``'s fork server first thing, before its own imports. The server
imports those libraries once, in parallel with the command, and every worker is then forked
from it, ready. The server is a single-threaded process of its own, so forking from it is
safe (unlike forking the command, which runs threads).

Only commands that start a local cluster call :func:`start_worker_forkserver`; library users
(``make_client`` in a notebook) keep distributed's configured start method. This module
imports nothing heavy: it runs before the command's own imports.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._yaml import fast_safe_load
from ._server_exit import SERVER_MARKER

__all__ = ["METHOD_ENV", "METHOD_KEY", "server_started", "start_worker_forkserver"]

logger = logging.getLogger(__name__)

#: The dask configuration key choosing how local worker processes are started.
METHOD_KEY = "distributed.worker.multiprocessing-method"
#: The environment variable setting it.
METHOD_ENV = "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD"

#: Modules the server imports before it forks any worker (see ``_warmup``), after the one that
#: lets it exit without the interpreter's teardown (``_server_exit``; it must come first).
PRELOAD = ("spherex_dask.pipeline._server_exit", "distributed", "spherex_dask.pipeline._warmup")

_started = False


def start_worker_forkserver() -> bool:
    """Start the fork server local workers are made from, and make local clusters use it.

    Does nothing (and returns ``False``) when the platform has no fork server, or when the
    worker start method is configured explicitly (``distributed.worker.multiprocessing-method``
    in a dask config file or ``DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD``): that choice
    is kept. Must run before ``distributed`` is imported, so that an explicit setting can be
    told from distributed's default.

    The server is started with distributed's ``distributed.nanny.pre-spawn-environ``
    variables (``OMP_NUM_THREADS``...) set, as distributed's nanny sets them before spawning a
    worker, so that forked workers start with them too; all but ``MALLOC_TRIM_THRESHOLD_`` at
    its default value (see :func:`_server_environ`).

    The server starts before dask is imported (about 0.15 s, which the server's own imports
    then overlap), with the variables of distributed's defaults. The dask configuration, read
    next, is then checked: when a configuration file sets the start method or other
    pre-spawn variables, the server is left unused (it exits with this process) and the
    workers are started distributed's way, with the configured variables.

    Returns
    -------
    started : `bool`
        Whether local workers will be forked from the server.
    """
    global _started
    if _started:
        return True
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    if "distributed" in sys.modules:  # its defaults are loaded: a user's choice is hidden
        logger.debug("Not starting the worker fork server: distributed is imported already")
        return False
    if METHOD_ENV in {k.upper().replace("-", "_") for k in os.environ}:
        logger.debug("Keeping the worker start method set by %s", METHOD_ENV)
        return False
    defaults = _distributed_defaults()
    original = dict(os.environ)
    default_environ = _nanny_environ(defaults)
    environ = _server_environ(default_environ, default_environ, original)
    os.environ.update(environ)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    os.environ[SERVER_MARKER] = "1"  # read (and removed) by _server_exit in the server only
    try:
        multiprocessing.forkserver.ensure_running()  # the server imports while we go on
    finally:
        os.environ.pop(SERVER_MARKER, None)

    import dask.config

    configured = dask.config.get(METHOD_KEY, None)  # set by the user, not a default
    dask.config.update_defaults(defaults)
    configured_environ = dask.config.get("distributed.nanny.pre-spawn-environ", None)
    wanted = _server_environ(configured_environ, default_environ, original)
    if configured is not None or wanted != environ:
        for key in environ:  # as if the server had never been started
            if key in original:
                os.environ[key] = original[key]
            else:
                os.environ.pop(key, None)
        logger.debug(
            "Not using the worker fork server: the dask configuration sets the start method "
            "(%r) or the pre-spawn environment (%r)",
            configured,
            wanted,
        )
        return False
    dask.config.set({METHOD_KEY: "forkserver"})
    _started = True
    logger.debug("Local workers will be forked from server process (preloading %s)", PRELOAD)
    return True


#: The glibc variable of distributed's pre-spawn variables that the fork server leaves out
#: while it has distributed's default value (see `_server_environ`).
TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"


def _server_environ(config: Any, default_config: Any, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables the fork server starts with: the pre-spawn variables of ``config``
    (see `_pre_spawn_environ`), without ``MALLOC_TRIM_THRESHOLD_`` while it has the value of
    distributed's ``default_config`` and ``environ`` does not set it.

    distributed sets ``MALLOC_TRIM_THRESHOLD_=65536`` so that the memory a worker frees goes
    back to the system at once. Setting it also turns glibc's dynamic mmap threshold off:
    every allocation over 128 kB is then a new mapping, whose pages the kernel zeroes and
    faults in one by one, and unmaps when it is freed. A quantum allocates and frees planes of
    16 MB over and over, which glibc otherwise reuses. On 24 quanta of 2040 x 2040 with
    2 workers, the run took 3.90 s with the variable and 3.50 s without (median of 6 paired
    runs), for a worker peak RSS of 187 and 223 MiB. Workers spawned the usual way (library
    users' ``make_client``) keep distributed's setting.
    """
    env = _pre_spawn_environ(config, environ)
    default = dict(default_config or {}).get(TRIM_VARIABLE)
    if (
        TRIM_VARIABLE not in environ
        and default is not None
        and env.get(TRIM_VARIABLE) == str(default)
    ):
        env.pop(TRIM_VARIABLE)
    return env


def _distributed_defaults() -> dict[str, Any]:
    """distributed's default configuration (its ``distributed.yaml``), without importing it."""
    spec = importlib.util.find_spec("distributed")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "distributed.yaml"
    if not path.exists():
        return {}
    return dict(fast_safe_load(path.read_text()) or {})


def _nanny_environ(defaults: dict[str, Any]) -> Any:
    """``distributed.nanny.pre-spawn-environ`` of a configuration mapping (None if absent)."""
    return defaults.get("distributed", {}).get("nanny", {}).get("pre-spawn-environ")


def _pre_spawn_environ(config: Any, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables to set before starting worker processes, as ``distributed.nanny.Nanny`` does.

    For each configured variable, a value already in the environment (``environ``, default
    ``os.environ``) wins; ``None`` sets nothing. ``PYTHONHASHSEED`` is 6640 unless configured
    (and not 0), so that every worker hashes alike.
    """
    current = os.environ if environ is None else environ
    env = {
        str(k): current.get(str(k), str(v)) for k, v in dict(config or {}).items() if v is not None
    }
    if env.get("PYTHONHASHSEED") in (None, "0"):
        env["PYTHONHASHSEED"] = "6640"
    return env


def server_started() -> bool:
    """Whether :func:`start_worker_forkserver` started the server in this process.

    When it did, ``distributed`` need not choose the server's preload modules: its first
    forkserver context would otherwise import its required and optional packages (pandas
    among them) into this process just to list them, about 0.3 s and 70 MB here. The
    local-cluster helper marks that choice as made (``distributed.utils``'s
    ``_forkserver_preload_set``; nothing happens if a later distributed drops it).
    """
    return _started
