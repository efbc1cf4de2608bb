# SPDX-License-Identifier: BSD-3-Clause
"""Output collections as ``pipetask`` makes them.

``-o NAME`` makes a CHAINED collection ``NAME -> [NAME/run-<UTC time>, inputs...]``; running
again with ``-o NAME`` puts the new run first, so ``NAME`` always finds the latest outputs
first and the inputs last. ``--output-run`` names the run; ``--extend-run`` writes into the
run at the head of the chain; ``--replace-run`` puts the new run in its place (and
``--prune-replaced`` removes it after a successful run); ``--skip-existing`` leaves out the
quanta whose outputs already exist in the output collection.

:func:`plan_outputs` decides (reading the registry only), :func:`apply_outputs` creates the
run and (re)defines the chain, :func:`prune_replaced` removes a replaced run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import CollectionError, CollectionTypeError, MissingCollectionError, PipelineError
from ..types import CollectionType

if TYPE_CHECKING:
    from ..butler import Butler
    from ..registry import Registry
    from ._graph import QuantumGraph

__all__ = [
    "PRUNE_MODES",
    "OutputCollections",
    "apply_outputs",
    "check_prunable",
    "plan_outputs",
    "prune_replaced",
]

logger = logging.getLogger(__name__)

#: ``purge`` removes the replaced run and its datasets and files; ``unstore`` removes only
#: its files (the datasets stay registered, without a file).
PRUNE_MODES = ("purge", "unstore")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputCollections:
    """Where a run reads and writes, as decided by :func:`plan_outputs`.

    Attributes
    ----------
    run
        The RUN collection the outputs are written to.
    chain
        The CHAINED output collection (``-o``), or ``None``.
    chain_members
        The chain's members after the run (new run first).
    inputs
        The collections the quantum graph is built from, in search order.
    skip_existing_in
        Collections in which existing outputs mark a quantum as done.
    replaced_run
        The run that ``--replace-run`` takes off the chain, or ``None``.
    """

    run: str
    chain: str | None = None
    chain_members: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    skip_existing_in: tuple[str, ...] = ()
    replaced_run: str | None = None


def default_run_name(output: str, registry: Registry, now: datetime | None = None) -> str:
    """``OUTPUT/run-YYYYMMDDTHHMMSSZ`` (UTC), with ``-2``, ``-3``... if that run exists."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{output}/run-{stamp}"
    existing = set(registry.query_collections(f"{base}*"))
    name, n = base, 1
    while name in existing:
        n += 1
        name = f"{base}-{n}"
    return name


def _existing_chain(registry: Registry, output: str) -> tuple[str, ...] | None:
    try:
        kind = registry.get_collection_type(output)
    except MissingCollectionError:
        return None
    if kind is not CollectionType.CHAINED:
        raise CollectionTypeError(
            f"The output collection {output!r} exists as a {kind.value} collection; -o needs a "
            "CHAINED one (or a new name). Use --output-run to write into a RUN directly."
        )
    return registry.get_collection_chain(output)


def _is_contiguous_in(part: tuple[str, ...], whole: tuple[str, ...]) -> bool:
    """Whether ``part`` appears in ``whole`` as a contiguous run, in order."""
    n = len(part)
    return any(whole[i : i + n] == part for i in range(len(whole) - n + 1))


def plan_outputs(
    registry: Registry,
    *,
    inputs: Sequence[str] = (),
    output: str | None = None,
    output_run: str | None = None,
    extend_run: bool = False,
    replace_run: bool = False,
    skip_existing: bool = False,
    now: datetime | None = None,
) -> OutputCollections:
    """Decide the output run, the chain and the input collections; nothing is written.

    Parameters
    ----------
    registry
        The registry (read only).
    inputs
        Input collections (``-i``); may be empty when ``output`` exists (its chain is used).
        When it exists, they must appear in its chain, contiguous and in order (as with
        ``pipetask``).
    output
        Name of the CHAINED output collection (``-o``).
    output_run
        Name of the output RUN (default ``OUTPUT/run-<UTC time>``).
    extend_run
        Write into the run at the head of the ``output`` chain (or into ``output_run``).
    replace_run
        Take the run at the head of the chain off it and put the new run first.
    skip_existing
        Skip quanta whose outputs exist in the output collection (the chain, else the run).

    Raises
    ------
    PipelineError
        For contradictory options, no inputs, inputs the existing output chain does not hold,
        or no output named; and, with ``extend_run`` (without ``output_run``) or
        ``replace_run``, when the chain's head is not a RUN, is one of ``inputs``, or holds
        datasets no pipeline wrote (no quantum records): a chain made by hand that starts
        with an input.
    CollectionError
        If ``output`` is not a CHAINED collection, or a new run already exists.
    """
    if extend_run and replace_run:
        raise PipelineError("--extend-run and --replace-run exclude each other; choose one.")
    if output is None and output_run is None:
        raise PipelineError("Name an output: -o COLLECTION (a chain) or --output-run RUN.")
    chain = _existing_chain(registry, output) if output is not None else None
    if (replace_run or (extend_run and output_run is None)) and not chain:
        what = "--replace-run" if replace_run else "--extend-run without --output-run"
        raise PipelineError(
            f"{what} needs an existing output chain with a run at its head; "
            f"{output!r} {'is empty' if chain == () else 'does not exist'}. Run once with -o first."
        )
    previous = tuple(chain or ())
    if replace_run or (extend_run and output_run is None):
        _check_head(registry, str(output), previous[0], tuple(inputs), replace_run=replace_run)
    if previous and inputs and not _is_contiguous_in(tuple(inputs), previous):
        raise PipelineError(
            f"The output chain {output!r} exists as {output} -> {', '.join(previous)}, which does "
            f"not hold the inputs {', '.join(inputs)} in that order: they would be searched after "
            "what the chain holds, whose datasets would win. Leave out -i to read the chain's own "
            "inputs, write to a new -o, or redefine the chain with `spherex-dask "
            "collection-chain`."
        )
    head = previous[0] if previous else None
    if extend_run:
        run = output_run or str(head)
    else:
        run = output_run or default_run_name(str(output), registry, now)
        if run in registry.query_collections(run):
            raise CollectionError(
                f"The output run {run!r} exists; add --extend-run to write into it, or name a "
                "new one."
            )
    replaced = head if replace_run else None
    kept = [c for c in previous if c not in (run, replaced)]
    members = (run, *kept, *(c for c in inputs if c not in previous and c != run))
    search = tuple(c for c in (previous if chain else inputs) if c != replaced) or tuple(inputs)
    search = (*search, *(c for c in inputs if c not in search))
    if not search:
        raise PipelineError("No input collections: give -i COLLECTIONS (e.g. -i rawexpr,darkr).")
    skip_in: tuple[str, ...] = ()
    if skip_existing and chain and not replace_run:
        skip_in = (str(output),)
    elif skip_existing and registry.query_collections(run):
        skip_in = (run,)
    return OutputCollections(
        run=run,
        chain=output,
        chain_members=members if output is not None else (),
        inputs=search,
        skip_existing_in=skip_in,
        replaced_run=replaced,
    )


def _check_head(
    registry: Registry, output: str, head: str, inputs: tuple[str, ...], *, replace_run: bool
) -> None:
    """Refuse to extend or replace a chain's head that is not a run this command may use.

    A chain made by hand (``collection-chain``) can start with an input collection; writing
    into it, or taking it off the chain (and pruning it), would mix outputs with the inputs
    or lose them.
    """
    flag = "--replace-run" if replace_run else "--extend-run"
    action = "replace" if replace_run else "write into"
    kind = registry.get_collection_type(head)
    if kind is not CollectionType.RUN:
        raise PipelineError(
            f"{flag} would {action} the head of the output chain {output!r}, but its head "
            f"{head!r} is a {kind.value} collection, not a run. Put an output run first with "
            "`spherex-dask collection-chain`, or write to a new -o."
        )
    if head in inputs:
        raise PipelineError(
            f"{flag} would {action} {head!r}, the head of the output chain {output!r}, which is "
            f"one of the input collections (-i {','.join(inputs)}). Write to a new -o, or give "
            "--output-run to name the run to write to."
        )
    if _holds_datasets(registry, head) and not _has_quanta(registry, head):
        raise PipelineError(
            f"{flag} would {action} {head!r}, the head of the output chain {output!r}, but no "
            "pipeline wrote that run (it holds datasets and no quantum records): it looks like "
            "an input run put first by hand. Write to a new -o, or give --output-run to name the "
            "run to write to."
        )


def _holds_datasets(registry: Registry, run: str) -> bool:
    """Whether ``run`` holds datasets other than task configs and package versions."""
    from ._init_outputs import is_init_output

    found = registry.query_datasets(..., collections=[run], find_first=False)
    return any(not is_init_output(ref.dataset_type) for ref in found)


def _has_quanta(registry: Registry, run: str) -> bool:
    return next(iter(registry.query_quanta(run=run)), None) is not None


def check_prunable(registry: Registry, plan: OutputCollections, graph: QuantumGraph) -> None:
    """Raise, before anything runs, if ``--prune-replaced`` should not remove the replaced run.

    :func:`plan_outputs` already refuses to replace a run that no pipeline wrote; this checks
    what only the graph tells: that ``graph`` reads no dataset from the run. It also checks
    that no chain other than the output chain lists the run (removing it would fail after
    the run). Does nothing when ``plan`` replaces no run.

    Raises
    ------
    PipelineError
        Saying which of these holds and what to do.
    """
    run = plan.replaced_run
    if run is None:
        return
    advice = "Leave out --prune-replaced (the run stays in the repository, off the chain)."
    read = sorted(
        {
            f"{ref.dataset_type.name} {ref.data_id!r}"
            for quantum in graph
            for ref in (*quantum.input_refs(), *quantum.prerequisite_refs())
            if ref.run == run
        }
    )
    if read:
        raise PipelineError(
            f"--prune-replaced would remove {run!r}, but the pipeline reads {len(read)} "
            f"dataset(s) from it (first: {read[0]}). {advice}"
        )
    parents = registry.get_collection_parent_chains(run) - {plan.chain}
    if parents:
        raise PipelineError(
            f"--prune-replaced would remove {run!r}, which chain(s) {', '.join(sorted(parents))} "
            f"also list. {advice}"
        )


def apply_outputs(registry: Registry, plan: OutputCollections) -> None:
    """Create the output run and (re)define the chain, in one transaction."""
    with registry.transaction():
        registry.register_run(plan.run)
        if plan.chain is not None:
            registry.register_collection(plan.chain, CollectionType.CHAINED)
            registry.set_collection_chain(plan.chain, plan.chain_members)
    if plan.chain is not None:
        logger.info("Output chain %s -> %s", plan.chain, ", ".join(plan.chain_members))


def prune_replaced(butler: Butler, run: str, mode: str) -> int:
    """Remove a replaced run: ``purge`` (datasets, files and the run) or ``unstore`` (files).

    Returns the number of datasets pruned.

    Raises
    ------
    PipelineError
        For an unknown mode.
    """
    if mode not in PRUNE_MODES:
        raise PipelineError(f"Unknown prune mode {mode!r}; use one of {', '.join(PRUNE_MODES)}.")
    if mode == "purge":
        count = butler.remove_runs([run], unstore=True)
    else:
        refs = list(butler.registry.query_datasets(..., collections=[run], find_first=False))
        count = butler.prune_datasets(refs, purge=False)
    logger.info("Pruned replaced run %s (%s, %d dataset(s)).", run, mode, count)
    return count
