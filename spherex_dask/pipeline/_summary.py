# SPDX-License-Identifier: BSD-3-Clause
"""The summary of a pipeline run: quanta per task and state, outputs, time and bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..types import QuantumRecord

__all__ = ["RunSummary", "TaskRunSummary"]

_COLUMNS = ("task", "succeeded", "failed", "skipped", "outputs", "bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRunSummary:
    """Counts for one task of a run (``skipped``: not run because an upstream quantum failed)."""

    task: str
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    outputs: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """What :func:`~spherex_dask.pipeline.run_quantum_graph` did.

    Attributes
    ----------
    run
        The output RUN collection.
    tasks
        One row per task, in pipeline order.
    failures
        Provenance of every failed quantum (``error`` holds the traceback).
    skipped
        Provenance of every quantum not run because an upstream quantum failed.
    wall_time
        Seconds from submission to the last registration.
    not_in_graph
        Quanta the graph builder had left out (missing inputs, existing outputs).
    already_done
        How many of those it left out because their outputs exist (``--skip-existing``).

    Examples
    --------
    >>> s = RunSummary(run="out/run1", tasks=(TaskRunSummary(task="subtract", succeeded=3,
    ...                outputs=3, bytes=3000),), wall_time=1.5)
    >>> s.ok, s.outputs, s.bytes_written
    (True, 3, 3000)
    >>> print(s.format())
    Run out/run1: 3 quanta succeeded, 0 failed, 0 skipped; 3 outputs, 3.0 kB written in 1.5 s.
    task      succeeded  failed  skipped  outputs  bytes
    --------  ---------  ------  -------  -------  -----
    subtract          3       0        0        3   3000
    """

    run: str
    tasks: tuple[TaskRunSummary, ...] = ()
    failures: tuple[QuantumRecord, ...] = ()
    skipped: tuple[QuantumRecord, ...] = ()
    wall_time: float = 0.0
    not_in_graph: int = 0
    already_done: int = 0
    dashboard: str | None = field(default=None, compare=False)

    def _why_left_out(self) -> str:
        """``their outputs exist``, ``they cannot run`` or both, counted."""
        cannot = self.not_in_graph - self.already_done
        if not cannot:
            return "their outputs exist"
        if not self.already_done:
            return "they cannot run (see the graph's summary)"
        return f"{self.already_done} whose outputs exist, {cannot} that cannot run"

    @property
    def ok(self) -> bool:
        """Whether no quantum failed or was skipped."""
        return not self.failures and not self.skipped

    @property
    def succeeded(self) -> int:
        """Number of quanta that succeeded."""
        return sum(t.succeeded for t in self.tasks)

    @property
    def outputs(self) -> int:
        """Number of datasets written and registered."""
        return sum(t.outputs for t in self.tasks)

    @property
    def bytes_written(self) -> int:
        """Bytes of the files written."""
        return sum(t.bytes for t in self.tasks)

    def format(self, *, max_failures: int = 20) -> str:
        """A headline, a table per task and, for each failed quantum, its data ID and error."""
        n_failed = sum(t.failed for t in self.tasks)
        n_skipped = sum(t.skipped for t in self.tasks)
        lines = [
            f"Run {self.run}: {self.succeeded} quanta succeeded, {n_failed} failed, "
            f"{n_skipped} skipped; {self.outputs} outputs, {format_bytes(self.bytes_written)} "
            f"written in {self.wall_time:.1f} s."
        ]
        if self.not_in_graph:
            why = self._why_left_out()
            lines.append(
                f"({self.not_in_graph} quanta were left out when the graph was built: {why}.)"
            )
        lines += _table([[str(getattr(t, c)) for c in _COLUMNS] for t in self.tasks])
        if self.failures:
            lines.append("Failed quanta:")
            lines += [
                f"  {r.task_label} {r.data_id!r}: {r.error_summary}"
                for r in self.failures[:max_failures]
            ]
            if len(self.failures) > max_failures:
                lines.append(f"  ... and {len(self.failures) - max_failures} more")
        return "\n".join(lines)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(_COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([cells[0].ljust(widths[0]), *rest]).rstrip()

    return [line(_COLUMNS), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def format_bytes(n: int) -> str:
    """Human-readable size in powers of 1000.

    Examples
    --------
    >>> format_bytes(999), format_bytes(1_234_567)
    ('999 B', '1.2 MB')
    """
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
