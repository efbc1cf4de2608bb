# SPDX-License-Identifier: BSD-3-Clause
"""SIGTERM handled as Ctrl-C is: what a command started is undone or recorded, then it exits.

``kill PID``, ``scancel`` and a batch system's time limit send SIGTERM, whose default action
ends the process at once: an ingest would leave the files it had transferred, unregistered,
and a pipeline run would say nothing of what finished. The console script raises
:class:`Terminated` instead, in the main thread, wherever the command is; the ``except
BaseException`` clean-ups that Ctrl-C runs then run too, and the command exits with status
143 (128 + SIGTERM), which is what shells and batch systems report for a terminated process.
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["INTERRUPTED_STATUS", "Terminated", "raise_on_sigterm"]

#: Exit status of a command ended by Ctrl-C (128 + SIGINT).
INTERRUPTED_STATUS = 128 + signal.SIGINT


class Terminated(KeyboardInterrupt):
    """The process was sent SIGTERM (raised by the handler :func:`raise_on_sigterm` sets)."""

    #: Exit status of a command ended by SIGTERM.
    exit_status = 128 + signal.SIGTERM


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM while the command cleans up ends the process at once, as users expect
    # of a repeated kill.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated


def raise_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread (once; a second one kills)."""
    signal.signal(signal.SIGTERM, _raise_terminated)
