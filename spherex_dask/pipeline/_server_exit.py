# SPDX-License-Identifier: BSD-3-Clause
"""Imported first by the worker fork server (see ``_forkserver``): a quick exit for it.

The fork server holds distributed, numpy, xarray, dask.array, astropy and zarr. When the
command that started it exits, the server sees its end of the pipe close and exits too, and
the interpreter's teardown of all those modules took 0.3-0.4 s here. The server still holds
the command's stdout and stderr for that long (it passes them on to the workers), so a caller
reading the command's output -- a script, ``subprocess.run(..., capture_output=True)`` -- waited
that much longer than the command ran.

Imported before anything else the server preloads (and acting only there, see
:data:`SERVER_MARKER`), this module registers an exit handler that runs after the exit
handlers of those libraries (they are registered later, and exit handlers run
last-registered first): it flushes the standard streams and ends the process
without the teardown. The only handler it skips is multiprocessing's own, registered before
it, which ends and joins the process's ``multiprocessing`` children; the server has none (it
forks workers with ``os.fork``). Workers forked from the server inherit the handler but never
run it: multiprocessing ends them with ``os._exit`` as they finish; and the handler only acts
in the process that imported this module. The server's exit status is 0, as it is when its
command closes the pipe.
"""

from __future__ import annotations

import atexit
import os
import sys

__all__ = ["SERVER_MARKER", "exit_without_teardown"]

#: Set to "1" only in the environment the fork server is started with (``_forkserver``). The
#: handler is registered only where it is found, and it is removed from the environment at
#: once: imported anywhere else -- pytest's doctest collection imports every module -- this
#: module does nothing (ending the process with status 0 would hide its own exit status).
SERVER_MARKER = "SPHEREX_DASK_FORK_SERVER"

_SERVER_PID = os.getpid()


def exit_without_teardown() -> None:
    """In the fork server, end the process now, without the interpreter's teardown;
    elsewhere (a process forked from it) do nothing."""
    if os.getpid() != _SERVER_PID:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(0)


if os.environ.pop(SERVER_MARKER, None) == "1":
    atexit.register(exit_without_teardown)
