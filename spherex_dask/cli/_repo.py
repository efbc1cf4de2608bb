# SPDX-License-Identifier: BSD-3-Clause
"""Repository commands: create, register, query, collections, certify, prune, export, import."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._output import (
    collections_option,
    echo_rows,
    format_option,
    handle_errors,
    parse_bind,
    repo_argument,
    split_collections,
    where_options,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from ..butler import Butler
    from ..registry import Registry
    from ..types import DatasetRef

_COLLECTION_TYPES = ["RUN", "TAGGED", "CHAINED", "CALIBRATION"]


def open_registry(repo: str, *, writeable: bool = False) -> Registry:
    """The registry of ``repo`` without importing the datastore (fast for queries)."""
    from .._config import RepoConfig
    from ..registry import Registry

    config = RepoConfig.load(repo)
    schema = config.registry_schema or None
    return Registry.open(config.database_url(repo), writeable=writeable, schema=schema)


def open_butler(repo: str, **kwargs: Any) -> Butler:
    """A Butler for ``repo``."""
    from ..butler import Butler

    return Butler(repo, **kwargs)


def ref_row(ref: DatasetRef, uri: str | None = None) -> dict[str, Any]:
    """One dataset as a JSON-able row."""
    row = {
        "id": str(ref.id),
        "dataset_type": ref.dataset_type.name,
        "run": ref.run,
        "data_id": ref.data_id.to_dict(),
    }
    if uri is not None:
        row["uri"] = uri
    return row


def select_datasets(
    registry: Registry,
    dataset_types: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: tuple[str, ...],
    *,
    find_first: bool = True,
    find_all_option: bool = False,
) -> Iterator[DatasetRef]:
    """The datasets the common options select: types (default all), collections, ``--where``
    and ``--bind``.

    Without ``--collections`` every dataset of every RUN collection is selected once (there is
    no search order to take a first match in). ``find_all_option`` says whether the command
    has ``--find-all``, for the error about CALIBRATION collections.
    """
    from ..types import CollectionType

    colls = split_collections(collections)
    if not colls:
        colls = registry.query_collections("*", collection_types=[CollectionType.RUN])
        if not colls:
            return iter(())
        find_first = False
    if find_first:
        _check_no_calibration_search(registry, dataset_types, colls, find_all_option)
    return registry.query_datasets(
        list(dataset_types) or ...,
        collections=colls,
        where=where,
        bind=parse_bind(bind),
        find_first=find_first,
    )


def _check_no_calibration_search(
    registry: Registry,
    dataset_types: tuple[str, ...],
    collections: list[str],
    find_all_option: bool,
) -> None:
    """Refuse a first-match search of calibration datasets in CALIBRATION collections with
    advice in the command's terms (the registry's error speaks of Python arguments)."""
    from ..types import CollectionType

    calibrations = registry.query_collections(
        collections, collection_types=[CollectionType.CALIBRATION], flatten_chains=True
    )
    if not calibrations:
        return
    # Names and patterns (an unknown name matches nothing here; the query itself says so).
    types = [t for name in dataset_types or ("*",) for t in registry.query_dataset_types(name)]
    calibration_types = [t.name for t in types if t.is_calibration]
    if not calibration_types:
        return
    advice = (
        "add --find-all to select every certified dataset (each with its run)"
        if find_all_option
        else "name the RUN collection(s) holding the datasets instead"
    )
    raise click.ClickException(
        f"Cannot take the first match of {', '.join(calibration_types)} in CALIBRATION "
        f"collection(s) {', '.join(calibrations)}: a calibration can be certified there for "
        f"several validity ranges; {advice}."
    )


@click.command()
@click.argument("repo", type=click.Path(file_okay=False))
@click.option("--db", default=None, help="Registry database URL (default: SQLite inside REPO).")
@click.option("--schema", default=None, help="PostgreSQL schema for the registry tables.")
@click.option(
    "--dimension-config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A custom dimension universe YAML (default: the SPHEREx universe).",
)
@click.option("--datastore-root", default=None, help="Where files go, e.g. s3://bucket/prefix.")
@click.option(
    "--checksum",
    type=click.Choice(["blake2b", "md5"]),
    default=None,
    help="Record a checksum of every file written or ingested (verifiable later).",
)
@handle_errors
def create(
    repo: str,
    db: str | None,
    schema: str | None,
    dimension_config: str | None,
    datastore_root: str | None,
    checksum: str | None,
) -> None:
    """Create an empty repository at REPO."""
    from ..butler import Butler

    butler = Butler.create(
        repo,
        db=db,
        schema=schema,
        dimension_config=dimension_config,
        datastore_root=datastore_root,
        checksum=checksum,
    )
    click.echo(f"Created repository {repo} (registry: {butler.registry.url})")
    butler.close()


@click.command("register-instrument")
@repo_argument
@handle_errors
def register_instrument(repo: str) -> None:
    """Register the SPHEREx instrument, its six detectors and the standard dataset types."""
    from ..ingest import register_instrument as register

    registry = open_registry(repo, writeable=True)
    inserted = register(registry)
    click.echo(f"SPHEREx registered ({inserted} new dimension record(s)).")


@click.command("register-dataset-type")
@repo_argument
@click.argument("name")
@click.argument("storage_class")
@click.argument("dimensions", nargs=-1, required=True)
@click.option("--is-calibration", is_flag=True, help="Datasets of this type are calibrations.")
@handle_errors
def register_dataset_type(
    repo: str, name: str, storage_class: str, dimensions: tuple[str, ...], is_calibration: bool
) -> None:
    """Register dataset type NAME with STORAGE_CLASS and DIMENSIONS."""
    from ..io import default_storage_classes
    from ..types import DatasetType

    known = default_storage_classes()
    if storage_class not in known:
        raise click.BadParameter(
            f"Unknown storage class {storage_class!r}; choose one of {', '.join(sorted(known))}.",
            param_hint="STORAGE_CLASS",
        )
    registry = open_registry(repo, writeable=True)
    dt = DatasetType(
        name=name,
        dimensions=tuple(dimensions),
        storage_class=storage_class,
        is_calibration=is_calibration,
    )
    added = registry.register_dataset_type(dt)
    click.echo(f"{'Registered' if added else 'Already registered'}: {name}")


@click.command("query-dataset-types")
@repo_argument
@click.argument("pattern", default="*")
@format_option
@handle_errors
def query_dataset_types(repo: str, pattern: str, fmt: str) -> None:
    """List dataset types whose names match PATTERN (a glob)."""
    registry = open_registry(repo)
    rows = [
        {
            "name": t.name,
            "dimensions": list(t.dimensions),
            "storage_class": t.storage_class,
            "is_calibration": t.is_calibration,
        }
        for t in registry.query_dataset_types(pattern)
    ]
    echo_rows(rows, ["name", "dimensions", "storage_class", "is_calibration"], fmt)


@click.command("query-collections")
@repo_argument
@click.argument("pattern", default="*")
@click.option(
    "--collection-type",
    "collection_types",
    multiple=True,
    type=click.Choice(_COLLECTION_TYPES, case_sensitive=False),
    help="Only collections of this type (repeatable).",
)
@click.option(
    "--flatten-chains", is_flag=True, help="List the members of CHAINED collections instead."
)
@format_option
@handle_errors
def query_collections(
    repo: str, pattern: str, collection_types: tuple[str, ...], flatten_chains: bool, fmt: str
) -> None:
    """List collections matching PATTERN (a glob), with their types and chain members."""
    from ..types import CollectionType

    registry = open_registry(repo)
    types = [CollectionType(t.upper()) for t in collection_types] or None
    rows = []
    for name in registry.query_collections(
        pattern,
        collection_types=types,
        flatten_chains=flatten_chains,
        include_chains=not flatten_chains,
    ):
        ctype = registry.get_collection_type(name)
        row: dict[str, Any] = {"name": name, "type": ctype.value}
        if ctype is CollectionType.CHAINED:
            row["children"] = list(registry.get_collection_chain(name))
        rows.append(row)
    echo_rows(rows, ["name", "type", "children"], fmt)


@click.command("collection-chain")
@repo_argument
@click.argument("parent")
@click.argument("children", nargs=-1)
@click.option(
    "--mode",
    type=click.Choice(["redefine", "extend", "prepend", "remove"]),
    default="redefine",
    show_default=True,
    help="How CHILDREN change the chain.",
)
@click.option("--flatten", is_flag=True, help="Store the chain flattened (no nested chains).")
@handle_errors
def collection_chain(
    repo: str, parent: str, children: tuple[str, ...], mode: str, flatten: bool
) -> None:
    """Define or change the CHAINED collection PARENT from CHILDREN (comma-separated ok)."""
    from ..errors import MissingCollectionError
    from ..types import CollectionType

    registry = open_registry(repo, writeable=True)
    new = split_collections(children)
    try:
        current = list(registry.get_collection_chain(parent))
    except MissingCollectionError:
        registry.register_collection(parent, CollectionType.CHAINED)
        current = []
    chain = {
        "redefine": new,
        "extend": current + [c for c in new if c not in current],
        "prepend": new + [c for c in current if c not in new],
        "remove": [c for c in current if c not in new],
    }[mode]
    registry.set_collection_chain(parent, chain, flatten=flatten)
    click.echo(f"{parent}: [{', '.join(registry.get_collection_chain(parent))}]")


@click.command("query-datasets")
@repo_argument
@click.argument("dataset_types", nargs=-1)
@collections_option
@where_options
@click.option("--find-all", is_flag=True, help="All matches, not only the first in search order.")
@click.option("--show-uri", is_flag=True, help="Include each dataset's file URI (table output).")
@click.option("--limit", type=int, default=0, help="Stop after this many datasets (0: all).")
@format_option
@handle_errors
def query_datasets(
    repo: str,
    dataset_types: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: tuple[str, ...],
    find_all: bool,
    show_uri: bool,
    limit: int,
    fmt: str,
) -> None:
    """List datasets of DATASET_TYPES (default: all) in COLLECTIONS (default: all).

    Without --collections every dataset of every RUN collection is listed once.
    """
    registry = open_registry(repo)
    refs = []
    for ref in select_datasets(
        registry,
        dataset_types,
        collections,
        where,
        bind,
        find_first=not find_all,
        find_all_option=True,
    ):
        refs.append(ref)
        if limit and len(refs) >= limit:
            break
    uris: dict[Any, str] = {}
    if fmt == "json" or show_uri:
        butler = open_butler(repo, writeable=False)
        locations = registry.get_locations([r.id for r in refs])
        uris = {i: butler.datastore.uri(locs[0]) for i, locs in locations.items() if locs}
    rows = [ref_row(r, uris.get(r.id) if uris or fmt == "json" else None) for r in refs]
    columns = ["dataset_type", "run", "data_id", "id"] + (["uri"] if show_uri else [])
    echo_rows(rows, columns, fmt)


@click.command("query-data-ids")
@repo_argument
@click.argument("dimensions", nargs=-1, required=True)
@click.option("--datasets", multiple=True, help="Only data IDs with datasets of these types.")
@collections_option
@where_options
@format_option
@handle_errors
def query_data_ids(
    repo: str,
    dimensions: tuple[str, ...],
    datasets: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: tuple[str, ...],
    fmt: str,
) -> None:
    """List distinct data IDs over DIMENSIONS."""
    registry = open_registry(repo)
    colls = split_collections(collections) or None
    if datasets and colls is None:
        colls = registry.query_collections("*", flatten_chains=True)
    ids = registry.query_data_ids(
        list(dimensions),
        where=where,
        bind=parse_bind(bind),
        datasets=list(datasets) or None,
        collections=colls,
    )
    rows = [d.to_dict() for d in ids]
    echo_rows(rows, list(rows[0]) if rows else list(dimensions), fmt)


@click.command("query-dimension-records")
@repo_argument
@click.argument("element")
@where_options
@format_option
@handle_errors
def query_dimension_records(
    repo: str, element: str, where: str, bind: tuple[str, ...], fmt: str
) -> None:
    """List the records of dimension ELEMENT (e.g. detector, exposure)."""
    registry = open_registry(repo)
    rows = []
    for record in registry.query_dimension_records(element, where=where, bind=parse_bind(bind)):
        row = dict(record.values)
        if record.timespan is not None:
            row["timespan"] = str(record.timespan)
        rows.append(row)
    echo_rows(rows, list(rows[0]) if rows else [element], fmt)


@click.command("certify-calibrations")
@repo_argument
@click.argument("input_run")
@click.argument("collection")
@click.argument("dataset_type")
@click.option(
    "--begin-date", default=None, help="Start of validity (ISO time; default: unbounded)."
)
@click.option("--end-date", default=None, help="End of validity (ISO time; default: unbounded).")
@click.option(
    "--search-all-inputs", is_flag=True, help="Search INPUT_RUN as a chain (all members)."
)
@handle_errors
def certify_calibrations(
    repo: str,
    input_run: str,
    collection: str,
    dataset_type: str,
    begin_date: str | None,
    end_date: str | None,
    search_all_inputs: bool,
) -> None:
    """Certify DATASET_TYPE datasets of INPUT_RUN into CALIBRATION COLLECTION for a time range."""
    from ..types import CollectionType, Timespan, datetime_to_ns, parse_time

    def time_option(value: str | None, option: str) -> datetime | None:
        try:
            when = parse_time(value) if value else None
            if when is not None:
                datetime_to_ns(when)  # a time the registry can store
            return when
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint=option) from None

    begin = time_option(begin_date, "--begin-date")
    end = time_option(end_date, "--end-date")
    try:
        timespan = Timespan(begin, end)
    except ValueError as err:
        raise click.BadParameter(
            f"{err} Give an --end-date after the --begin-date.", param_hint="--end-date"
        ) from None
    registry = open_registry(repo, writeable=True)
    refs = list(
        registry.query_datasets(
            dataset_type, collections=[input_run], find_first=not search_all_inputs
        )
    )
    if not refs:
        raise click.ClickException(f"No {dataset_type!r} datasets in {input_run!r} to certify.")
    with registry.transaction():  # a failed certify leaves no new, empty collection behind
        registry.register_collection(collection, CollectionType.CALIBRATION)
        registry.certify(collection, refs, timespan)
    click.echo(f"Certified {len(refs)} {dataset_type} dataset(s) into {collection} for {timespan}.")


@click.command("prune-datasets")
@repo_argument
@click.argument("dataset_types", nargs=-1)
@collections_option
@where_options
@click.option("--unstore", is_flag=True, help="Remove files only; keep the registry entries.")
@click.option("--no-confirm", is_flag=True, help="Do not ask before removing.")
@handle_errors
def prune_datasets(
    repo: str,
    dataset_types: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: tuple[str, ...],
    unstore: bool,
    no_confirm: bool,
) -> None:
    """Remove datasets (registry entries and files) selected by type, collections and --where."""
    butler = open_butler(repo)
    if not split_collections(collections):
        raise click.UsageError("--collections is required (which RUN/TAGGED collections to prune).")
    refs = list(
        select_datasets(butler.registry, dataset_types, collections, where, bind, find_first=False)
    )
    if not refs:
        click.echo("Nothing to prune.")
        return
    if not no_confirm:
        click.confirm(f"Remove {len(refs)} dataset(s)?", abort=True)
    n = butler.prune_datasets(refs, purge=not unstore)
    click.echo(f"{'Unstored' if unstore else 'Removed'} {n} dataset(s).")


@click.command("remove-runs")
@repo_argument
@click.argument("pattern")
@click.option("--no-confirm", is_flag=True, help="Do not ask before removing.")
@handle_errors
def remove_runs(repo: str, pattern: str, no_confirm: bool) -> None:
    """Remove RUN collections matching PATTERN with all their datasets and files."""
    from ..types import CollectionType

    butler = open_butler(repo)
    runs = butler.registry.query_collections(pattern, collection_types=[CollectionType.RUN])
    if not runs:
        click.echo(f"No RUN collection matches {pattern!r}.")
        return
    if not no_confirm:
        click.confirm(f"Remove run(s) {', '.join(runs)} and their files?", abort=True)
    n = butler.remove_runs(runs)
    click.echo(f"Removed {len(runs)} run(s) and {n} dataset(s).")


@click.command("export")
@repo_argument
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("dataset_types", nargs=-1)
@collections_option
@where_options
@click.option(
    "--find-all",
    is_flag=True,
    help="Every dataset of the collections, not only the first match in search order (needed "
    "for a CALIBRATION collection, such as the calib of a pipeline's output chain).",
)
@click.option(
    "--chains/--no-chains",
    default=True,
    show_default=True,
    help="Export the definitions of the CHAINED collections given to --collections (and of "
    "the chains they contain), for import to make them.",
)
@handle_errors
def export(
    repo: str,
    directory: str,
    dataset_types: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: tuple[str, ...],
    find_all: bool,
    chains: bool,
) -> None:
    """Export datasets (records and files) to DIRECTORY, for `import` into another repository.

    Their memberships of TAGGED and CALIBRATION collections (with validity ranges) go with
    them: `import` tags and certifies them the same way. So do the CHAINED collections given
    to --collections, such as a pipeline's output collection.
    """
    from ..types import CollectionType

    butler = open_butler(repo, writeable=False)
    refs = list(
        select_datasets(
            butler.registry, dataset_types, collections, where, bind,
            find_first=not find_all, find_all_option=True,
        )
    )  # fmt: skip
    named = split_collections(collections) if chains else []
    # Names and glob patterns, as --collections takes them for the query.
    chained = (
        butler.registry.query_collections(named, collection_types=[CollectionType.CHAINED])
        if named
        else []
    )
    path = butler.export(refs, directory, chains=chained)
    with_chains = f" with chain(s) {', '.join(chained)}" if chained else ""
    click.echo(f"Exported {len(refs)} dataset(s){with_chains} to {path}")


@click.command("import")
@repo_argument
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--transfer",
    default="copy",
    show_default=True,
    type=click.Choice(["copy", "move", "symlink", "relsymlink", "hardlink", "auto"]),
)
@click.option(
    "--chains/--no-chains",
    default=True,
    show_default=True,
    help="Make the CHAINED collections the export defines (one that exists must have the "
    "same members).",
)
@handle_errors
def import_(repo: str, directory: str, transfer: str, chains: bool) -> None:
    """Import datasets exported to DIRECTORY, keeping ids, runs and data IDs, their
    certifications and tags, and the chains exported with them (all or nothing)."""
    refs = open_butler(repo).import_(directory, transfer=transfer, chains=chains)
    click.echo(f"Imported {len(refs)} dataset(s) from {directory}")


@click.command("retrieve-artifacts")
@repo_argument
@click.argument("destination", type=click.Path(file_okay=False))
@click.argument("dataset_types", nargs=-1)
@collections_option
@where_options
@click.option(
    "--transfer",
    default="copy",
    show_default=True,
    type=click.Choice(["copy", "symlink", "relsymlink", "hardlink", "auto"]),
)
@click.option("--no-preserve-path", is_flag=True, help="Put all files directly in DESTINATION.")
@handle_errors
def retrieve_artifacts(
    repo: str,
    destination: str,
    dataset_types: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: tuple[str, ...],
    transfer: str,
    no_preserve_path: bool,
) -> None:
    """Copy the files of the selected datasets to DESTINATION."""
    butler = open_butler(repo, writeable=False)
    refs = list(select_datasets(butler.registry, dataset_types, collections, where, bind))
    paths = butler.retrieve_artifacts(
        refs, Path(destination), transfer=transfer, preserve_path=not no_preserve_path
    )
    click.echo(f"Retrieved {len(paths)} file(s) to {destination}")


@click.command("verify")
@repo_argument
@click.argument("dataset_types", nargs=-1)
@collections_option
@where_options
@format_option
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@handle_errors
def verify(
    repo: str,
    dataset_types: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: tuple[str, ...],
    fmt: str,
    progress: bool,
) -> None:
    """Check that the files of the selected datasets exist, with the sizes and checksums
    recorded (default: every dataset of every RUN collection).

    Lists the datasets whose files are missing or changed, and exits with status 1 if there
    are any. Files whose checksums were recorded (``create --checksum``) are read in full.
    """
    butler = open_butler(repo, writeable=False)
    refs = list(
        select_datasets(butler.registry, dataset_types, collections, where, bind, find_first=False)
    )
    problems = butler.verify_artifacts(refs, progress=progress)
    locations = butler.registry.get_locations([r.id for r in refs])
    rows = [
        ref_row(ref, ", ".join(butler.datastore.uri(loc) for loc in locations.get(ref.id, [])))
        | {
            "problem": "missing" if isinstance(err, FileNotFoundError) else "changed",
            "error": str(err),
        }
        for ref, err in problems.items()
    ]
    if fmt == "json":
        echo_rows(rows, [], fmt)
    elif rows:
        echo_rows(rows, ["dataset_type", "run", "data_id", "problem", "uri"], fmt)
    files = sum(len(locs) for locs in locations.values())
    summed = sum(1 for locs in locations.values() for loc in locs if loc.checksum)
    checked = (
        f"{files} file(s) of {len(refs)} dataset(s), {summed} against a recorded checksum"
        if summed
        else f"{files} file(s) of {len(refs)} dataset(s) by size (no checksums are recorded: "
        "create repositories with --checksum to have them)"
    )
    if problems:
        raise click.ClickException(
            f"{len(problems)} of {len(refs)} dataset(s) have missing or changed files "
            f"(checked {checked}); the errors are in the output with --format json. Restore "
            "the files from a copy, or remove the datasets with `spherex-dask prune-datasets`."
        )
    if fmt != "json":
        click.echo(f"Verified {checked}: all present and as recorded.")
