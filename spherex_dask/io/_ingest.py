# SPDX-License-Identifier: BSD-3-Clause
"""All-or-nothing ingest of existing files into a :class:`FileDatastore`, and its undo."""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import IngestError, SpherexDaskError
from ..types import DatasetLocation, DatasetRef
from ._fs import is_local, join, local_path, path_exists
from ._transfer import resolve_mode, transfer, undo_transfer
from .formatters import Formatter

if TYPE_CHECKING:
    from ._datastore import FileDatastore

__all__ = ["IngestPlan", "plan_ingest", "run_ingest"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestPlan:
    """One file to ingest: where from, where to, read by which formatter."""

    source: str
    ref: DatasetRef
    formatter: Formatter
    path: str  # relative to the root, or the absolute source URI for "direct"
    final: str
    size: int
    checksum: str | None


def _describe(source: str, ref: DatasetRef) -> str:
    return f"{source!r} (as {ref.dataset_type.name} {ref.data_id!r} in run {ref.run!r})"


def _choose_formatter(
    store: FileDatastore, source: str, ref: DatasetRef, name: str | None
) -> Formatter:
    name = name or store.formatter_overrides.get(ref.dataset_type.parent_name)
    options = store.storage_options
    if name is not None:
        formatter = store.formatters[name]
        if not formatter.can_read(source, storage_options=options):
            raise IngestError(
                f"File {_describe(source, ref)} is not readable as {name!r}; is it corrupt or of another format?"
            )
        return formatter
    storage_class = store.storage_classes[ref.dataset_type.storage_class]
    for candidate in storage_class.ingest_formatters or (storage_class.default_formatter,):
        formatter = store.formatters[candidate]
        if formatter.can_read(source, storage_options=options):
            return formatter
    raise IngestError(
        f"File {_describe(source, ref)} is not readable as any {storage_class.name} format "
        f"(tried {', '.join(storage_class.ingest_formatters)}); is it corrupt or truncated? Pass formatter= to force one."
    )


def _suffix(source: str, formatter: Formatter) -> str:
    name = source.rstrip("/").rsplit("/", 1)[-1].lower()
    return next(
        (
            e
            for e in sorted(formatter.extensions, key=len, reverse=True)
            if name.endswith(e.lower())
        ),
        formatter.extensions[0],
    )


def _plan_one(
    store: FileDatastore, source: str, ref: DatasetRef, mode: str, formatter_name: str | None
) -> IngestPlan:
    if is_local(source):
        source = os.path.abspath(local_path(source))
    if not path_exists(source, store.storage_options):
        raise IngestError(f"File {_describe(source, ref)} does not exist.")
    resolve_mode(mode, source_local=is_local(source), root_local=store.is_local)
    formatter = _choose_formatter(store, source, ref, formatter_name)
    size, digest = store._measure(source, None if is_local(source) else store.storage_options)
    if mode == "direct":
        return IngestPlan(source, ref, formatter, source, source, size, digest)
    relative = store.templates.format(ref) + _suffix(source, formatter)
    final = join(store.root, relative)
    if path_exists(final, store.storage_options) or (store.is_local and os.path.islink(final)):
        raise IngestError(
            f"Cannot ingest {_describe(source, ref)}: {final!r} exists in the datastore "
            "(ingested already, or the file template maps two datasets to one path)."
        ) from FileExistsError(errno.EEXIST, "exists in the datastore", final)
    return IngestPlan(source, ref, formatter, relative, final, size, digest)


def plan_ingest(
    store: FileDatastore, items: Sequence[tuple[str, DatasetRef]], mode: str, formatter: str | None
) -> list[IngestPlan]:
    """Check every file and destination before anything moves.

    Raises
    ------
    IngestError
        Naming the first file that is missing, unreadable, or whose destination is taken.
    """
    plans: list[IngestPlan] = []
    finals: dict[str, str] = {}
    sources: set[str] = set()
    for source, ref in items:
        try:
            plan = _plan_one(store, source, ref, mode, formatter)
        except IngestError:
            raise
        except SpherexDaskError as err:
            raise IngestError(f"Cannot ingest {_describe(source, ref)}: {err}") from err
        if mode != "direct" and plan.final in finals:
            raise IngestError(
                f"Files {finals[plan.final]!r} and {plan.source!r} would both go to {plan.final!r}; "
                "the file template is not unique for these datasets."
            )
        if mode == "move" and plan.source in sources:
            raise IngestError(f"File {plan.source!r} appears twice; it cannot be moved twice.")
        finals[plan.final] = plan.source
        sources.add(plan.source)
        plans.append(plan)
    return plans


def run_ingest(
    store: FileDatastore, plans: Sequence[IngestPlan], mode: str
) -> list[DatasetLocation]:
    """Transfer every planned file, or none: a failure undoes the transfers already made.

    Copies into a local datastore run on :data:`TRANSFER_THREADS` threads: they wait on the
    disk (reads, writes, fsyncs), not on the CPU. After a failure no further transfer starts;
    those under way finish and are undone with the others. An interrupt (Ctrl-C, SIGTERM) is
    a failure too, wherever it lands until the locations are returned: while the transfers
    are being handed to the threads, while they run, or after the last one.
    """
    done, failure = _transfer_all(store, plans, mode)
    if failure is not None:
        plan, err = failure
        _undo(store, done)
        if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit: undone, re-raised
            raise err
        raise IngestError(
            f"Ingest failed on {_describe(plan.source, plan.ref)}: {err}. "
            f"The {len(done)} transfer(s) already made were undone; nothing was ingested."
        ) from err
    try:
        for plan, used in done:
            if used == "move":
                store._moved[plan.final] = plan.source
        logger.debug("Ingested %d file(s) by %s", len(plans), mode)
        return [
            DatasetLocation(
                dataset_id=p.ref.id,
                path=p.path,
                formatter=p.formatter.name,
                size=p.size,
                checksum=p.checksum,
            )
            for p in plans
        ]
    except BaseException:  # an interrupt after the last transfer
        _undo(store, done)
        raise


#: Threads copying files into a local datastore.
TRANSFER_THREADS = 4

#: Transfer modes run on threads. Links and renames are single cheap system calls, for which
#: handing each file to a thread costs more than it saves (symlinks: 2,900 files/s on one
#: thread, 2,100 on four); copies gain (600 -> 750-800 files/s with their fsyncs).
THREADED_MODES = frozenset({"copy"})


def _transfer_all(
    store: FileDatastore, plans: Sequence[IngestPlan], mode: str
) -> tuple[list[tuple[IngestPlan, str]], tuple[IngestPlan, BaseException] | None]:
    """The transfers made (with the mode used) and the first failure, if any (plan order)."""

    parents: set[str] = set()  # local parent directories made (or found) by this ingest

    def one(plan: IngestPlan) -> str:
        parent = os.path.dirname(local_path(plan.final)) if store.is_local else None
        if parent is not None and parent not in parents:
            os.makedirs(parent, exist_ok=True)
            parents.add(parent)  # a set's add is atomic: threads may at worst both make it
        return transfer(
            plan.source,
            plan.final,
            mode,
            storage_options=store.storage_options,
            fsync=store.fsync,
            make_parents=parent is None,
        )

    done: list[tuple[IngestPlan, str]] = []
    if not store.is_local or len(plans) < 2 or mode not in THREADED_MODES:
        for plan in plans:
            try:
                done.append((plan, one(plan)))
            except BaseException as err:
                return done, (plan, err)
        return done, None
    # Each thread records its own transfer as it ends (list.append is atomic).
    finished: list[tuple[int, str]] = []  # (plan index, mode used)

    def tracked(index: int) -> None:
        finished.append((index, one(plans[index])))

    failure: tuple[IngestPlan, BaseException] | None = None
    futures: list[Future[None]] = []
    pool = ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="spherex-dask-ingest")
    try:
        with _signals_held():
            for index in range(len(plans)):
                futures.append(pool.submit(tracked, index))
        for index, future in enumerate(futures):
            error = future.exception()
            if error is not None:
                failure = (plans[index], error)
                break
    except BaseException as err:  # interrupted while handing out the transfers or waiting
        failure = (plans[0], err)
    # Those not started never run; those under way end. Both this wait and the list of what
    # was made run to the end through interrupts: what was made must be known to be undone.
    _, interrupt = _to_the_end(
        lambda: pool.shutdown(wait=True, cancel_futures=failure is not None)
    )
    made, later = _to_the_end(lambda: [(plans[i], used) for i, used in sorted(finished)])
    interrupt = interrupt or later
    if failure is None and interrupt is not None:
        failure = (plans[-1], interrupt)
    return done + made, failure


#: The signals a command turns into an interrupt (Ctrl-C; SIGTERM, see ``cli._signals``).
_INTERRUPTS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while the transfer threads start; one that came is raised as
    the block ends (through the handler that was in place).

    ``ThreadPoolExecutor.submit`` queues the transfer, then starts a thread and waits for it.
    Interrupted there, it never returns the future, and the pool never joins that thread: the
    transfer would run unseen and never be undone. Python runs signal handlers in the main
    thread only, between two bytecodes, so the handlers are swapped for one that keeps the
    signal (blocking the signal would not do: one already received is handled all the same).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: nothing to hold here
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous: dict[int, Any] = {}
    try:
        for interrupt in _INTERRUPTS:
            if signal.getsignal(interrupt) is not None:  # None: a handler set outside Python
                previous[interrupt] = signal.signal(interrupt, hold)
        yield
    finally:
        for interrupt, handler in previous.items():
            signal.signal(interrupt, handler)
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)  # raises KeyboardInterrupt (or cli's Terminated)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(held[0])


T = TypeVar("T")


def _to_the_end(step: Callable[[], T]) -> tuple[T, BaseException | None]:
    """Run ``step`` (which may be run again) until it ends without an interrupt (Ctrl-C,
    SIGTERM); return its result and the first interrupt, if any."""
    interrupt: BaseException | None = None
    while True:
        try:
            return step(), interrupt
        except (KeyboardInterrupt, SystemExit) as err:
            interrupt = interrupt or err


def _undo(store: FileDatastore, done: list[tuple[IngestPlan, str]]) -> None:
    for plan, used in reversed(done):
        try:
            undo_transfer(plan.source, plan.final, used, storage_options=store.storage_options)
            store._moved.pop(plan.final, None)
        except OSError as err:  # keep undoing the others; report what is left behind
            logger.warning("Could not undo %s of %s -> %s: %s", used, plan.source, plan.final, err)
