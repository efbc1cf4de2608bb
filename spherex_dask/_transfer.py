# SPDX-License-Identifier: BSD-3-Clause
"""Export datasets (registry records and files) from one repository and import them into another."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    CollectionError,
    CollectionTypeError,
    ConfigError,
    DatasetConflictError,
    DatastoreError,
    MissingCollectionError,
)
from .types import (
    CollectionType,
    DataId,
    DatasetLocation,
    DatasetRef,
    DatasetType,
    DimensionRecord,
    Timespan,
    parse_time,
)

if TYPE_CHECKING:
    from .butler import Butler

__all__ = ["EXPORT_FILE", "export_datasets", "import_datasets"]

#: Name of the index file written by an export.
EXPORT_FILE = "export.json"


def _timespan_to_json(ts: Timespan | None) -> list[str | None] | None:
    if ts is None:
        return None
    return [
        None if ts.begin is None else ts.begin.isoformat(),
        None if ts.end is None else ts.end.isoformat(),
    ]


def _timespan_from_json(raw: list[str | None] | None) -> Timespan | None:
    if raw is None:
        return None
    return Timespan(*(None if v is None else parse_time(v) for v in raw))


def _record_to_json(record: DimensionRecord) -> dict[str, Any]:
    return {"values": dict(record.values), "timespan": _timespan_to_json(record.timespan)}


def export_datasets(
    butler: Butler, refs: list[DatasetRef], directory: Path, *, chains: Sequence[str] = ()
) -> Path:
    """Write ``refs`` (records, dataset types, runs, files, and their memberships of TAGGED
    and CALIBRATION collections with validity ranges) to ``directory``, with the definitions
    of the CHAINED collections ``chains`` (and of the chains they contain).

    All or nothing: the files are copied in one datastore retrieve, which removes what it
    copied if one file fails (e.g. is missing), so a failed export can simply be run again.

    Returns the path of the index file.

    Raises
    ------
    DatastoreError
        If ``directory`` holds an export already, or a file's destination is taken.
    FileMissingError
        If a dataset's file is missing from the datastore; nothing is left in ``directory``.
    MissingCollectionError, CollectionTypeError
        If a name of ``chains`` is not a CHAINED collection here (nothing is written).
    """
    # Absolute and normalised: the datastore returns the copies' absolute paths, which are
    # stored relative to the export directory (a relative ``directory`` such as ``exp`` or
    # ``../exp`` must give the same result).
    directory = Path(os.path.abspath(directory))
    if (directory / EXPORT_FILE).exists():
        raise DatastoreError(
            f"{str(directory)!r} holds an export already ({EXPORT_FILE}); export into a new "
            "or empty directory."
        )
    chain_definitions = _chains_to_json(butler, chains)
    directory.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict[str, dict[str, Any]]] = {}
    datasets = []
    locations = butler.registry.get_locations([r.id for r in refs])
    for ref in refs:
        expanded = butler.registry.expand_data_id(ref.data_id)
        for element, record in (expanded.records or {}).items():
            key = json.dumps(sorted(record.values.items()), default=str)
            records.setdefault(element, {})[key] = _record_to_json(record)
    flat = [loc for ref in refs for loc in locations.get(ref.id, [])]
    copies = butler.datastore.retrieve(
        flat, str(directory / "files"), transfer="copy", preserve_path=True
    )
    files: dict[uuid.UUID, list[str]] = {}
    for location, copy in zip(flat, copies, strict=True):
        files.setdefault(location.dataset_id, []).append(copy)
    for ref in refs:
        datasets.append(
            {
                "id": str(ref.id),
                "dataset_type": ref.dataset_type.name,
                "run": ref.run,
                "data_id": ref.data_id.to_dict(),
                "files": [str(Path(f).relative_to(directory)) for f in files.get(ref.id, [])],
                "formatters": [loc.formatter for loc in locations.get(ref.id, [])],
            }
        )
    types = {r.dataset_type.name: r.dataset_type for r in refs}
    index = {
        "format": "spherex_dask-export",
        "version": 1,
        "universe": butler.registry.universe.to_yaml(),
        "dataset_types": [
            {
                "name": t.name,
                "dimensions": list(t.dimensions),
                "storage_class": t.storage_class,
                "is_calibration": t.is_calibration,
            }
            for t in types.values()
        ],
        "runs": sorted({r.run for r in refs}),
        "dimension_records": {e: list(v.values()) for e, v in records.items()},
        "datasets": datasets,
        "associations": _associations_to_json(butler, refs),
        "chains": chain_definitions,
    }
    path = directory / EXPORT_FILE
    path.write_text(json.dumps(index, indent=1, default=str))
    return path


def import_datasets(
    butler: Butler, directory: Path, *, transfer: str = "copy", chains: bool = True
) -> list[DatasetRef]:
    """Import an export made by :func:`export_datasets`, keeping ids, runs and data IDs, and
    tagging and certifying the datasets in the TAGGED and CALIBRATION collections they were in;
    with ``chains``, the CHAINED collections the export defines are made too (one that exists
    here must have the same members).

    All or nothing: the dimension records, dataset types, runs and datasets are registered in
    one transaction, and the files transferred are removed again if anything fails (a
    truncated file in the export, a dataset that exists already).

    Raises
    ------
    ConfigError
        If ``directory`` holds no export, or the export's dimension universe differs.
    IngestError, DatasetConflictError, CalibrationConflictError, CollectionTypeError
        Naming the file that could not be imported, the datasets that exist already, a
        certification that overlaps one here, or a collection of another type here;
        nothing was registered or transferred.
    MissingCollectionError, CollectionError
        If a chain of the export lists a collection that is neither here nor defined by the
        export (only in exports made before chain members' types were saved; a member with
        no dataset in the export is made empty), or exists here with other members; nothing
        was registered or transferred.
    """
    from .dimensions import DimensionUniverse

    path = directory / EXPORT_FILE
    if not path.exists():
        raise ConfigError(f"{str(directory)!r} holds no export ({EXPORT_FILE} is missing).")
    index = json.loads(path.read_text())
    if DimensionUniverse.from_yaml(index["universe"]) != butler.registry.universe:
        raise ConfigError(
            f"The export in {str(directory)!r} uses a different dimension universe than "
            f"repository {str(butler.root)!r}."
        )
    registry = butler.registry
    locations: list[DatasetLocation] = []
    try:
        with registry.transaction():
            refs, items = _register_export(butler, index, directory)
            try:  # datasets here already: an error before any copy
                registry.import_datasets(refs)
            except DatasetConflictError as err:
                raise DatasetConflictError(
                    f"{err} Repository {str(butler.root)!r} holds datasets of the export in "
                    f"{str(directory)!r} already (was it imported before?); the import adds all "
                    "of an export or nothing: export again without them (other dataset types, "
                    "collections or --where) to add the rest."
                ) from err
            # Each file is checked as readable by the formatter it was written with (one
            # all-or-nothing transfer per formatter; the clean-up undoes earlier groups too).
            for formatter, group in _by_formatter(butler, items).items():
                locations += butler.datastore.prepare_ingest(
                    group, transfer=transfer, formatter=formatter
                )
            registry.insert_locations(locations)
            _import_associations(butler, index.get("associations", []))
            if chains:
                _import_chains(butler, index.get("chains", []), directory)
    except BaseException:
        if not butler._registered(locations):
            butler.datastore.undo_ingest(locations, transfer=transfer)
        raise
    return refs


def _associations_to_json(butler: Butler, refs: list[DatasetRef]) -> list[dict[str, Any]]:
    """The TAGGED and CALIBRATION memberships of ``refs`` (with validity ranges)."""
    registry = butler.registry
    kinds: dict[str, str] = {}
    out = []
    for name, dataset_id, validity in registry.query_associations(refs):
        if name not in kinds:
            kinds[name] = registry.get_collection_type(name).name
        out.append(
            {
                "collection": name,
                "type": kinds[name],
                "id": str(dataset_id),
                "validity": _timespan_to_json(validity),
            }
        )
    return out


def _import_associations(butler: Butler, associations: list[dict[str, Any]]) -> None:
    """Tag and certify the imported datasets as in the exporting repository, making the
    TAGGED and CALIBRATION collections that do not exist.

    Raises
    ------
    CollectionTypeError
        If a collection exists here with another type.
    CalibrationConflictError
        If a dataset of the same type and data ID is already certified here for an
        overlapping range.
    """
    from .types import CollectionType

    registry = butler.registry
    groups: dict[tuple[str, str, Timespan | None], list[uuid.UUID]] = {}
    for a in associations:
        validity = _timespan_from_json(a["validity"])
        groups.setdefault((a["collection"], a["type"], validity), []).append(uuid.UUID(a["id"]))
    for (name, kind, timespan), ids in groups.items():
        registry.register_collection(name, CollectionType[kind])
        if timespan is None:
            registry.associate(name, ids)
        else:
            registry.certify(name, ids, timespan)


def _chains_to_json(butler: Butler, names: Sequence[str]) -> list[dict[str, Any]]:
    """The members (with their types) of the CHAINED collections ``names`` and of the chains
    among their members, each chain after the chains it contains.

    The types let the import make a member of which the export holds no dataset (a run or
    CALIBRATION collection left out by the dataset types or ``--where`` chosen) as an empty
    collection, rather than fail.
    """
    registry = butler.registry
    members: dict[str, list[str]] = {}
    kinds: dict[str, CollectionType] = {}

    def visit(name: str, kind: CollectionType) -> None:
        if name in members:
            return
        if kind is not CollectionType.CHAINED:
            raise CollectionTypeError(
                f"{name!r} is a {kind.name} collection: only CHAINED collections are exported "
                "as definitions (RUN, TAGGED and CALIBRATION collections come with their "
                "datasets)."
            )
        children = list(registry.get_collection_chain(name))
        for child in children:
            kinds[child] = registry.get_collection_type(child)
            if kinds[child] is CollectionType.CHAINED:
                visit(child, kinds[child])
        members[name] = children

    for name in names:
        visit(name, registry.get_collection_type(name))
    return [
        {"name": name, "members": children, "member_types": {c: kinds[c].name for c in children}}
        for name, children in members.items()
    ]


def _import_chains(butler: Butler, chains: list[dict[str, Any]], directory: Path) -> None:
    """Make the export's CHAINED collections (inner chains first); a chain that exists here
    must list the same members. A member that is not here yet is made empty, with the type
    the export gives it.

    Raises
    ------
    MissingCollectionError
        If a member is neither here nor in the export (an export made before the members'
        types were saved).
    CollectionError
        If the chain exists here with other members (or is not a chain here).
    """
    registry = butler.registry
    for chain in chains:
        name, members = chain["name"], tuple(chain["members"])
        kinds = chain.get("member_types", {})
        missing = []
        for member in members:
            try:
                registry.get_collection_type(member)
            except MissingCollectionError:
                if member not in kinds:
                    missing.append(member)
                    continue
                registry.register_collection(member, CollectionType[kinds[member]])
        if missing:
            raise MissingCollectionError(
                f"Chain {name!r} of the export in {str(directory)!r} lists {missing}, which "
                f"{'is' if len(missing) == 1 else 'are'} neither in the export nor in "
                f"{str(butler.root)!r}. Make {'it' if len(missing) == 1 else 'them'} first, or "
                "import without the chains (import --no-chains, or chains=False)."
            )
        if registry.register_collection(name, CollectionType.CHAINED):
            registry.set_collection_chain(name, members)
            continue
        here = registry.get_collection_chain(name)
        if here != members:
            raise CollectionError(
                f"Chain {name!r} exists in {str(butler.root)!r} as {list(here)}; the export "
                f"defines it as {list(members)}. Import without the chains (import "
                "--no-chains, or chains=False) and change it with `spherex-dask "
                "collection-chain` if you want to."
            )


def _register_export(
    butler: Butler, index: dict[str, Any], directory: Path
) -> tuple[list[DatasetRef], list[tuple[str, DatasetRef, str | None]]]:
    """Register the export's dimension records, dataset types and runs; return its refs and
    the (file, ref, formatter recorded) triples to transfer."""
    registry = butler.registry
    for element in registry.universe.elements:
        raw = index["dimension_records"].get(element, [])
        if raw:
            registry.sync_dimension_records(
                element,
                [
                    DimensionRecord(element, r["values"], _timespan_from_json(r["timespan"]))
                    for r in raw
                ],
            )
    types = {}
    for t in index["dataset_types"]:
        dt = DatasetType(
            name=t["name"],
            dimensions=tuple(t["dimensions"]),
            storage_class=t["storage_class"],
            is_calibration=t["is_calibration"],
        )
        registry.register_dataset_type(dt)
        types[dt.name] = dt
    for run in index["runs"]:
        registry.register_run(run)
    refs: list[DatasetRef] = []
    items: list[tuple[str, DatasetRef, str | None]] = []
    for d in index["datasets"]:
        data_id = registry.expand_data_id(
            d["data_id"], dimensions=types[d["dataset_type"]].dimensions
        )
        ref = DatasetRef(
            id=uuid.UUID(d["id"]),
            dataset_type=types[d["dataset_type"]],
            data_id=DataId(data_id, records=data_id.records),
            run=d["run"],
        )
        refs.append(ref)
        formatters = d.get("formatters") or [None] * len(d["files"])
        items.extend(
            (str(directory / f), ref, name) for f, name in zip(d["files"], formatters, strict=True)
        )
    return refs, items


def _by_formatter(
    butler: Butler, items: list[tuple[str, DatasetRef, str | None]]
) -> dict[str | None, list[tuple[str, DatasetRef]]]:
    """The (file, ref) pairs to transfer, by the formatter recorded at export (None: unknown
    here, or not recorded: the datastore chooses from the file's content)."""
    groups: dict[str | None, list[tuple[str, DatasetRef]]] = {}
    for path, ref, name in items:
        known = name if name in butler.datastore.formatters else None
        groups.setdefault(known, []).append((path, ref))
    return groups
