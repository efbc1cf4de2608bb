# SPDX-License-Identifier: BSD-3-Clause
"""Pipeline commands: ``qgraph`` (build a quantum graph), ``run`` (execute it on Dask) and
``query-quanta`` (provenance)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._output import echo_rows, format_option, handle_errors, repo_argument, split_collections

if TYPE_CHECKING:
    import distributed

    from ..butler import Butler
    from ..pipeline import OutputCollections, QuantumGraph
    from ..registry import Registry

F = TypeVar("F", bound=Callable[..., Any])


def _graph_options(func: F) -> F:
    """Options shared by ``qgraph`` and ``run``: repository, collections, selection, config."""
    options = [
        click.option(
            "-b",
            "--butler",
            "repo",
            required=True,
            type=click.Path(file_okay=False),
            help="The repository.",
        ),
        click.option(
            "-i",
            "--input",
            "inputs",
            multiple=True,
            help="Input collections, in search order (comma-separated or repeated).",
        ),
        click.option(
            "-o",
            "--output",
            default=None,
            help="CHAINED output collection: NAME -> [NAME/run-<time>, inputs...].",
        ),
        click.option(
            "--output-run",
            default=None,
            help="Output RUN collection (default: OUTPUT/run-<UTC time>).",
        ),
        click.option(
            "--extend-run",
            is_flag=True,
            help="Write into the run at the head of the output chain (or --output-run).",
        ),
        click.option(
            "--skip-existing",
            is_flag=True,
            help="Leave out quanta whose outputs exist in the output collection.",
        ),
        click.option(
            "--replace-run",
            is_flag=True,
            help="Put the new run in place of the one at the head of the output chain.",
        ),
        click.option(
            "-d", "--where", default="", help='Restrict the data IDs, e.g. "detector IN (1..3)".'
        ),
        click.option(
            "-c",
            "--config",
            "overrides",
            multiple=True,
            metavar="LABEL:FIELD=VALUE",
            help="Task config override (repeatable), e.g. stack:weighting=uniform.",
        ),
        click.option(
            "--fail-on-missing",
            is_flag=True,
            help="Stop with an error when a quantum's prerequisite is missing.",
        ),
        click.option(
            "--qgraph-dot",
            type=click.Path(dir_okay=False),
            default=None,
            help="Write the quantum graph as GraphViz DOT.",
        ),
        click.option(
            "--qgraph-png",
            type=click.Path(dir_okay=False),
            default=None,
            help="Render the quantum graph (PNG, or SVG/PDF by suffix; needs graphviz).",
        ),
        click.option(
            "--save-qgraph",
            type=click.Path(dir_okay=False),
            default=None,
            help="Save the quantum graph as JSON (for run -g).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _plan(registry: Registry, opts: dict[str, Any], output_run: str | None) -> OutputCollections:
    from ..pipeline import plan_outputs

    return plan_outputs(
        registry,
        inputs=split_collections(opts["inputs"]),
        output=opts["output"],
        output_run=output_run,
        extend_run=opts["extend_run"],
        replace_run=opts["replace_run"],
        skip_existing=opts["skip_existing"],
    )


def _build(
    butler: Butler, pipeline_path: str, opts: dict[str, Any]
) -> tuple[QuantumGraph, OutputCollections]:
    from ..pipeline import Pipeline, build_quantum_graph

    pipeline = Pipeline.from_yaml(pipeline_path).apply_overrides(opts["overrides"])
    plan = _plan(butler.registry, opts, opts["output_run"])
    graph = build_quantum_graph(
        pipeline,
        butler.registry,
        input_collections=plan.inputs,
        output_run=plan.run,
        where=opts["where"],
        fail_on_missing=opts["fail_on_missing"],
        skip_existing_in=plan.skip_existing_in,
    )
    if plan.chain is not None:
        graph.metadata["output"] = plan.chain  # for run -g without -o
    return graph, plan


def _export(graph: QuantumGraph, opts: dict[str, Any]) -> None:
    """Write the files asked for by --qgraph-dot, --qgraph-png and --save-qgraph.

    Raises
    ------
    click.ClickException
        Naming the file that cannot be written (a missing directory, no permission).
    """
    try:
        _write_exports(graph, opts)
    except OSError as err:
        raise click.ClickException(
            f"Cannot write {err.filename or 'the graph file'}: {err.strerror or err}. Give a "
            "path in an existing, writable directory."
        ) from err


def _write_exports(graph: QuantumGraph, opts: dict[str, Any]) -> None:
    if opts["qgraph_dot"]:
        graph.write_dot(opts["qgraph_dot"])
        click.echo(f"Wrote {opts['qgraph_dot']}")
    if opts["qgraph_png"]:
        click.echo(f"Wrote {graph.render(opts['qgraph_png'])}")
    if opts["save_qgraph"]:
        graph.save(opts["save_qgraph"])
        click.echo(f"Wrote {opts['save_qgraph']}")


def _echo_graph(graph: QuantumGraph, *, max_skipped: int = 10) -> None:
    from ..pipeline import format_summary

    click.echo(f"Quantum graph: {len(graph)} quanta, outputs to run {graph.output_run}")
    click.echo(format_summary(graph.summary()))
    missing = [s for s in graph.skipped if s.kind != "outputs_exist"]
    for s in missing[:max_skipped]:
        click.echo(f"  not run: {s.task_label} {s.data_id!r}: {s.kind}: {s.reason}")
    if len(missing) > max_skipped:
        click.echo(f"  ... and {len(missing) - max_skipped} more not run")
    partial = [(q, reason) for q in graph for reason in q.left_out]
    for q, reason in partial[:max_skipped]:
        click.echo(f"  runs without an input: {q.task_label} {q.data_id!r}: {reason}")
    if len(partial) > max_skipped:
        click.echo(f"  ... and {len(partial) - max_skipped} more inputs left out")


@click.command("qgraph")
@click.option(
    "-p",
    "--pipeline",
    "pipeline_path",
    required=True,
    help="Pipeline YAML (path.yaml, or path.yaml#label,subset).",
)
@_graph_options
@handle_errors
def qgraph(pipeline_path: str, **opts: Any) -> None:
    """Build the quantum graph of a pipeline and print its summary (nothing is run)."""
    from ..butler import Butler

    with Butler(opts["repo"], writeable=False) as butler:
        graph, _ = _build(butler, pipeline_path, opts)
    _echo_graph(graph)
    _export(graph, opts)


def _load_graph(
    butler: Butler, path: str, opts: dict[str, Any]
) -> tuple[QuantumGraph, OutputCollections]:
    from ..errors import PipelineError
    from ..pipeline import QuantumGraph
    from ..pipeline._prepare import skip_existing_outputs

    graph = QuantumGraph.load(path)
    if opts["output_run"] not in (None, graph.output_run):
        raise PipelineError(
            f"The graph in {path} writes to run {graph.output_run!r}, not {opts['output_run']!r}; "
            "drop --output-run or rebuild the graph."
        )
    if opts["output"] is None:
        opts["output"] = graph.metadata.get("output")  # the -o the graph was built with
    if not opts["inputs"]:
        opts["inputs"] = graph.input_collections
    if butler.registry.query_collections(graph.output_run):
        opts["extend_run"] = True  # the run was made by an earlier (partial) execution
        if opts["skip_existing"]:
            graph = skip_existing_outputs(graph, butler.registry)
    return graph, _plan(butler.registry, opts, graph.output_run)


@click.command("run")
@click.option(
    "-p", "--pipeline", "pipeline_path", default=None, help="Pipeline YAML to build the graph from."
)
@click.option(
    "-g",
    "--qgraph",
    "qgraph_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A graph saved by qgraph --save-qgraph (instead of -p).",
)
@_graph_options
@click.option(
    "--prune-replaced",
    type=click.Choice(["purge", "unstore"]),
    default=None,
    help="With --replace-run: remove the replaced run (purge) or its files (unstore).",
)
@click.option(
    "--register-dataset-types",
    is_flag=True,
    help="Register output dataset types that are not registered yet.",
)
@click.option(
    "-j",
    "--processes",
    "n_workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local worker processes (default: min(CPUs, 4)).",
)
@click.option("--scheduler", default=None, help="Address of a running scheduler (tcp://host:port).")
@click.option(
    "--cluster",
    default="local",
    show_default=True,
    help="local, slurm or pbs (dask-jobqueue, configured by the jobqueue YAML).",
)
@click.option(
    "--output-format",
    type=click.Choice(["zarr", "fits"]),
    default=None,
    help="Format of image outputs (default: zarr).",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    help="Show progress: a bar in a terminal, a line a minute in a log file.",
)
@handle_errors
def run(pipeline_path: str | None, qgraph_file: str | None, **opts: Any) -> None:
    """Build (or load) a quantum graph and run it on a Dask cluster, registering the outputs.

    Exits with status 1 when a quantum failed, after printing the summary and each failure.
    """
    from contextlib import ExitStack

    if (pipeline_path is None) == (qgraph_file is None):
        raise click.UsageError("Give exactly one of -p PIPELINE and -g QGRAPH.")
    if opts["prune_replaced"] and not opts["replace_run"]:
        raise click.UsageError("--prune-replaced needs --replace-run.")
    named_files_exist = _named_files_exist(opts["repo"], pipeline_path, qgraph_file)
    if named_files_exist and opts["scheduler"] is None and opts["cluster"] == "local":
        from ..pipeline._forkserver import start_worker_forkserver

        start_worker_forkserver()  # before the imports below, to overlap with them
    from ..pipeline._cluster import client_in_background

    # The cluster starts while the graph is built (it is closed if the graph cannot run),
    # unless a file named on the command line is missing: that error comes at once.
    cluster_options = {
        "scheduler": opts["scheduler"],
        "cluster": opts["cluster"],
        "n_workers": opts["n_workers"],
    }
    with ExitStack() as stack:
        get_client = (
            stack.enter_context(client_in_background(**cluster_options))
            if named_files_exist
            else None
        )
        from ..butler import Butler

        with Butler(opts["repo"]) as butler:
            if qgraph_file is not None:
                graph, plan = _load_graph(butler, qgraph_file, opts)
            else:
                graph, plan = _build(butler, pipeline_path or "", opts)
            _echo_graph(graph)
            _export(graph, opts)
            if not len(graph):
                click.echo("Nothing to run.")
                return
            if get_client is None:
                get_client = stack.enter_context(client_in_background(**cluster_options))
            ok = _execute(butler, graph, plan, opts, get_client)
    if not ok:
        raise SystemExit(1)


def _named_files_exist(repo: str, pipeline_path: str | None, qgraph_file: str | None) -> bool:
    """Whether the repository's butler.yaml and the pipeline or graph file exist (URLs count
    as existing: they are not checked here)."""
    from pathlib import Path

    def exists(path: str) -> bool:
        return "://" in path or Path(path).exists()

    named = qgraph_file if qgraph_file is not None else (pipeline_path or "").split("#", 1)[0]
    repo_ok = "://" in repo or (Path(repo) / "butler.yaml").exists()
    return repo_ok and exists(named)


def _execute(
    butler: Butler,
    graph: QuantumGraph,
    plan: OutputCollections,
    opts: dict[str, Any],
    get_client: Callable[[], distributed.Client],
) -> bool:
    from ..errors import SpherexDaskError
    from ..pipeline import (
        apply_outputs,
        check_graph,
        check_prunable,
        prune_replaced,
        run_quantum_graph,
    )
    from ..pipeline._cluster import dashboard_link
    from ._signals import INTERRUPTED_STATUS, Terminated

    check_graph(
        graph,
        butler,
        register_dataset_types=opts["register_dataset_types"],
        output_format=opts["output_format"],
    )
    if opts["prune_replaced"]:
        check_prunable(butler.registry, plan, graph)
    # The output collections are made once a cluster is there to fill them: a cluster that
    # cannot start leaves the repository as it was.
    client = get_client()
    before = _collections_before(butler.registry, plan)
    apply_outputs(butler.registry, plan)
    if plan.chain:
        click.echo(f"Output collection {plan.chain} -> {', '.join(plan.chain_members)}")
    click.echo(f"Dask dashboard: {dashboard_link(client) or '(none)'}")
    try:
        summary = run_quantum_graph(
            graph,
            butler,
            client,
            progress=opts["progress"],
            output_format=opts["output_format"],
            register_dataset_types=opts["register_dataset_types"],
        )
    except SpherexDaskError as err:
        try:
            _restore_collections(butler, plan, *before)
        except SpherexDaskError as undo:
            err.add_note(f"The output collections could not be restored: {undo}")
        raise
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (cli._signals.Terminated)
        terminated = isinstance(err, Terminated)
        _echo_interrupted(butler.registry, graph, plan, terminated=terminated)
        raise SystemExit(Terminated.exit_status if terminated else INTERRUPTED_STATUS) from None
    click.echo(summary.format())
    if plan.replaced_run and opts["prune_replaced"]:
        if summary.ok:
            count = prune_replaced(butler, plan.replaced_run, opts["prune_replaced"])
            click.echo(
                f"Pruned replaced run {plan.replaced_run} ({opts['prune_replaced']}, {count} datasets)."
            )
        else:
            click.echo(f"Kept replaced run {plan.replaced_run}: quanta failed.")
    return summary.ok


def _echo_interrupted(
    registry: Registry, graph: QuantumGraph, plan: OutputCollections, *, terminated: bool
) -> None:
    """Say, after Ctrl-C or SIGTERM, what finished (it is registered) and how to run the
    rest."""
    ids = {q.id for q in graph}
    finished = sum(
        1 for r in registry.query_quanta(run=plan.run, status="succeeded") if r.id in ids
    )
    rest = "the same command with --extend-run --skip-existing"
    if plan.replaced_run is not None:
        rest += (
            f" instead of --replace-run (the replaced run {plan.replaced_run} stays in the "
            "repository, off the chain)"
        )
    click.echo(
        f"\n{'Terminated (SIGTERM)' if terminated else 'Interrupted'}: "
        f"{finished} of {len(graph)} quanta finished and are registered in run "
        f"{plan.run}; the others did not finish and nothing of theirs is registered. To run "
        f"the rest: {rest}.",
        err=True,
    )


def _collections_before(
    registry: Registry, plan: OutputCollections
) -> tuple[bool, tuple[str, ...] | None]:
    """Whether the output run exists, and the output chain's members (``None``: no chain)."""
    run_exists = bool(registry.query_collections(plan.run))
    chain = None
    if plan.chain is not None and registry.query_collections(plan.chain):
        chain = registry.get_collection_chain(plan.chain)
    return run_exists, chain


def _restore_collections(
    butler: Butler, plan: OutputCollections, run_existed: bool, chain: tuple[str, ...] | None
) -> None:
    """Undo :func:`apply_outputs` after a run that stopped before any quantum was recorded
    (inputs without files...): the chain as it was, no new run (nor the task configs that
    may have been written into it)."""
    registry = butler.registry
    if run_existed or next(iter(registry.query_quanta(run=plan.run)), None) is not None:
        return  # quanta ran: their records (and the run) stay
    with registry.transaction():
        if plan.chain is not None:
            if chain is None:
                registry.remove_collection(plan.chain)
            else:
                registry.set_collection_chain(plan.chain, chain)
    butler.remove_runs([plan.run])


_QUANTA_COLUMNS = ["task", "data_id", "status", "start", "seconds", "worker", "run", "error"]


def _quantum_row(record: Any, *, full: bool) -> dict[str, Any]:
    seconds = (
        round((record.end - record.start).total_seconds(), 3)
        if record.start is not None and record.end is not None
        else None
    )
    row = {
        "id": str(record.id),
        "task": record.task_label,
        "data_id": record.data_id.to_dict(),
        "status": record.status,
        "start": record.start.isoformat() if record.start else None,
        "end": record.end.isoformat() if record.end else None,
        "seconds": seconds,
        "worker": record.worker,
        "run": record.run,
        "error": record.error if full else record.error_summary,
    }
    if full:
        row["inputs"] = [str(i) for i in record.inputs]
        row["outputs"] = [str(i) for i in record.outputs]
    return row


@click.command("query-quanta")
@repo_argument
@click.option(
    "--collections",
    multiple=True,
    help="Runs (or chains of runs) to search (comma-separated or repeated; default all).",
)
@click.option("--task", "task_label", default=None, help="Only quanta of this task label.")
@click.option(
    "--status",
    type=click.Choice(["succeeded", "failed", "skipped"]),
    default=None,
    help="Only quanta that ended so.",
)
@click.option(
    "--data-id",
    "data_id",
    multiple=True,
    metavar="DIMENSION=VALUE",
    help="Only quanta whose data ID has this value (repeatable).",
)
@format_option
@handle_errors
def query_quanta(
    repo: str,
    collections: Sequence[str],
    task_label: str | None,
    status: str | None,
    data_id: Sequence[str],
    fmt: str,
) -> None:
    """List the provenance of executed quanta: task, data ID, status, time, worker, error."""
    from ._output import parse_bind
    from ._repo import open_registry

    registry = open_registry(repo)
    try:
        records = registry.query_quanta(
            collections=split_collections(collections) or None,
            task_label=task_label,
            status=status,
            data_id=parse_bind(data_id, option="--data-id") or None,
        )
        rows = [_quantum_row(r, full=fmt == "json") for r in records]
    finally:
        registry.close()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
    else:
        echo_rows(rows, _QUANTA_COLUMNS, fmt)
