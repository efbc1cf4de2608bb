# SPDX-License-Identifier: BSD-3-Clause
"""Imported first by the worker fork server (see ``_forkserver``): a quick exit for it.

The fork server holds distributed, numpy, xarray, dask.array, astropy and zarr. When the
command that started it exits, the server sees its end of the pipe close and exits too, and
the interpreter's teardown of all those modules took 0.3-0.4 s here. The server still holds
the command's stdout and stderr for that long (it passes them on to the workers), so a caller
reading the command's output -- a script, ``subprocess.run(..., capture_output=True)`` -- waited
that much longer than the command ran.

Imported before anything else the server preloads, this module registers an exit handler
that runs after the exit handlers of those libraries (they are registered later, and exit
handlers run last-registered first): it flushes the standard streams and ends the process
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

__all__ = ["exit_without_teardown"]

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


atexit.register(exit_without_teardown)
