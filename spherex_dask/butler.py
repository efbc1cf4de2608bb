# SPDX-License-Identifier: BSD-3-Clause
"""The Butler: one facade over the registry (what exists) and the datastore (the bytes)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._config import RepoConfig
from .dimensions import DimensionUniverse
from .errors import (
    ChecksumError,
    ConfigError,
    DataIdValueError,
    DatasetNotFoundError,
    FileMissingError,
    IngestError,
    MissingCollectionError,
    SpherexDaskError,
)
from .io import FileDatastore
from .registry import Registry
from .types import DataId, DatasetLocation, DatasetRef, DatasetType, QuantumRecord, Timespan

if TYPE_CHECKING:
    import uuid

__all__ = ["Butler", "FileDataset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileDataset:
    """A file to ingest: where it is, what it is, and optionally how to read it.

    Examples
    --------
    >>> FileDataset(path="sim_exposure_000001_array_3.fits", dataset_type="raw",
    ...             data_id={"instrument": "SPHEREx", "exposure": 1, "detector": 3}).dataset_type
    'raw'
    """

    path: str
    dataset_type: str
    data_id: Mapping[str, Any]
    formatter: str | None = None


def _as_list(collections: str | Sequence[str] | None) -> list[str]:
    if collections is None:
        return []
    if isinstance(collections, str):
        return [c.strip() for c in collections.split(",") if c.strip()]
    return list(collections)


class Butler:
    """Read and write datasets of one repository.

    Parameters
    ----------
    root
        The repository directory (holding ``butler.yaml``).
    run
        The RUN collection ``put`` and ``ingest`` write to by default.
    collections
        The collections ``get`` and ``find_dataset`` search by default, in order
        (a comma-separated string is accepted).
    writeable
        Open the registry for writing.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> butler = Butler.create(root)
    >>> butler.registry.universe.name
    'spherex'
    """

    def __init__(
        self,
        root: str | Path,
        *,
        run: str | None = None,
        collections: str | Sequence[str] | None = None,
        writeable: bool = True,
    ) -> None:
        self.root = Path(root)
        self.config = RepoConfig.load(self.root)
        self.registry = Registry.open(
            self.config.database_url(self.root),
            writeable=writeable,
            schema=self.config.registry_schema or None,
        )
        self.datastore = FileDatastore(
            self.config.datastore_url(self.root),
            templates=self.config.templates,
            formatters=self.config.formatters,
            storage_options=self.config.storage_options or None,
            checksum=self.config.checksum,
        )
        self.run = run
        self.collections = _as_list(collections) or ([run] if run else [])
        if run is not None and writeable:
            self.registry.register_run(run)

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | Path,
        *,
        db: str | None = None,
        schema: str | None = None,
        dimension_config: str | Path | None = None,
        datastore_root: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        checksum: str | None = None,
    ) -> Butler:
        """Create a new repository at ``root`` and return a Butler for it.

        Parameters
        ----------
        root
            Directory of the new repository (created if missing; must not hold one).
        db
            SQLAlchemy URL of the registry database (default: SQLite inside ``root``), e.g.
            ``postgresql+psycopg://postgres@127.0.0.1:5432/test``.
        schema
            PostgreSQL schema for the registry tables.
        dimension_config
            A custom dimension universe YAML file (default: the SPHEREx universe).
        datastore_root
            Where files go (default ``root``); an ``s3://bucket/prefix`` URL for S3.
        storage_options
            fsspec options for ``datastore_root``.
        checksum
            Checksum algorithm (``blake2b`` or ``md5``) recorded for every file written or
            ingested, or ``None`` (default) for none.

        Raises
        ------
        ConfigError
            If ``root`` already holds a repository or the dimension config is invalid.
        """
        root = Path(root)
        config = RepoConfig(
            registry_db=db,
            registry_schema=schema,
            datastore_root=datastore_root,
            storage_options=dict(storage_options or {}),
            checksum=checksum,
        )
        if (root / "butler.yaml").exists():
            raise ConfigError(f"A repository already exists at {str(root)!r}.")
        universe = (
            DimensionUniverse.from_yaml(Path(dimension_config))
            if dimension_config is not None
            else DimensionUniverse.default()
        )
        root.mkdir(parents=True, exist_ok=True)
        kwargs = {"schema": schema} if schema else {}
        Registry.create(config.database_url(root), universe=universe, **kwargs).close()
        config.save(root)
        logger.info("Created repository %s", root)
        return cls(root)

    def close(self) -> None:
        """Release the registry's database connections."""
        self.registry.close()

    def __enter__(self) -> Butler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Butler({str(self.root)!r}, run={self.run!r}, collections={self.collections!r})"

    # -- resolution ----------------------------------------------------------------------
    def _collections(self, collections: str | Sequence[str] | None) -> list[str]:
        result = _as_list(collections) or self.collections
        if not result:
            raise SpherexDaskError(
                "No collections to search: pass collections=[...] or open the Butler with "
                "collections=... (see `spherex-dask query-collections REPO`)."
            )
        return result

    def _run(self, run: str | None, *, register: bool = True) -> str:
        result = run or self.run
        if not result:
            raise SpherexDaskError("No RUN collection: pass run=... or open the Butler with run=.")
        if register:
            self.registry.register_run(result)
        return result

    def find_dataset(
        self,
        dataset_type: str | DatasetType,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        timespan: Timespan | None = None,
        **kwargs: Any,
    ) -> DatasetRef | None:
        """Find the dataset of this type and data ID in the first collection holding one."""
        return self.registry.find_dataset(
            dataset_type,
            data_id,
            collections=self._collections(collections),
            timespan=timespan,
            **kwargs,
        )

    def _resolve(
        self,
        dataset_type: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        timespan: Timespan | None,
        kwargs: dict[str, Any],
    ) -> tuple[DatasetRef, str | None]:
        if isinstance(dataset_type, DatasetRef):
            return dataset_type, dataset_type.dataset_type.component
        name = dataset_type if isinstance(dataset_type, str) else dataset_type.name
        parent, _, component = name.partition(".")
        ref = self.find_dataset(
            parent, data_id, collections=collections, timespan=timespan, **kwargs
        )
        if ref is None:
            searched = ", ".join(self._collections(collections))
            given = dict(data_id or {}, **kwargs)
            advice = (
                self._unknown_value(given)
                or self._calibration_hint(parent, given, collections, timespan)
                or "check the data ID and collections with `spherex-dask query-datasets`."
            )
            raise DatasetNotFoundError(
                f"No {parent!r} dataset with data ID {given} in collections [{searched}]; {advice}"
            )
        return ref, component or None

    def _calibration_hint(
        self,
        parent: str,
        data_id: Mapping[str, Any],
        collections: str | Sequence[str] | None,
        timespan: Timespan | None,
    ) -> str | None:
        """Why a calibration lookup found nothing, when datasets of the data ID are certified
        in the collections searched, but for other times: their validity ranges and the
        time looked up."""
        from .types import CollectionType

        try:
            dataset_type = self.registry.get_dataset_type(parent)
            if not dataset_type.is_calibration:
                return None
            calibs = self.registry.query_collections(
                self._collections(collections),
                collection_types=[CollectionType.CALIBRATION],
                flatten_chains=True,
            )
            if not calibs:
                return None
            own = {k: v for k, v in data_id.items() if k in dataset_type.dimensions}
            refs = list(
                self.registry.query_datasets(
                    parent, collections=calibs, data_id=own, find_first=False
                )
            )
            ranges = [
                f"{validity} in {name!r}"
                for name, _, validity in self.registry.query_associations(refs)
                if validity is not None and name in calibs
            ]
            if timespan is None:
                records = self.registry.expand_data_id(data_id).records or {}
                exposure = records.get("exposure")
                timespan = exposure.timespan if exposure is not None else None
        except SpherexDaskError:
            return None
        if not ranges or timespan is None:
            return None
        return (
            f"the {parent!r} datasets of this data ID are certified only for "
            f"{'; '.join(ranges[:5])}, and the lookup was for {timespan}. Certify one valid "
            "then with `spherex-dask certify-calibrations` (--begin-date, --end-date)."
        )

    def _unknown_value(self, data_id: Mapping[str, Any]) -> str | None:
        """Why no dataset can have ``data_id``, when one of its values has no dimension
        record (a detector or exposure that does not exist): the registry's message."""
        try:
            self.registry.expand_data_id(data_id)
        except DataIdValueError as err:
            return str(err)
        except SpherexDaskError:  # another problem with the data ID: the general advice
            return None
        return None

    def _locations(self, ref: DatasetRef) -> list[DatasetLocation]:
        locations = self.registry.get_locations([ref.id]).get(ref.id, [])
        if not locations:
            try:
                self.registry.get_dataset(ref.id)
            except DatasetNotFoundError:
                raise DatasetNotFoundError(
                    f"Dataset {ref.dataset_type.name} {ref.data_id} ({ref.id}) of run {ref.run!r} "
                    f"is not in the registry of {str(self.root)!r}: it was pruned, or the ref "
                    "comes from another repository. Look it up again with find_dataset or "
                    "query_datasets."
                ) from None
            raise DatasetNotFoundError(
                f"Dataset {ref.dataset_type.name} {ref.data_id} ({ref.id}) in run {ref.run!r} is "
                "registered but has no stored file in the datastore."
            )
        return locations

    # -- reading -------------------------------------------------------------------------
    def get(
        self,
        dataset_type: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        timespan: Timespan | None = None,
        verify: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Read a dataset; images come back as lazy, chunked ``xarray.Dataset`` objects.

        ``"raw.flags"`` reads one component; ``parameters={"bbox": (y0, y1, x0, x1)}`` reads
        one region only. ``verify=True`` first checks the file's size and the checksum
        recorded at put or ingest (repositories created with ``checksum=``), which reads
        the whole file once; by default files are not verified, so that reads stay lazy.

        Raises
        ------
        DatasetNotFoundError
            If no dataset matches in the collections searched.
        FileMissingError, ChecksumError, FormatterError
            If the file is missing, altered (``ChecksumError`` only with ``verify=True``) or
            unreadable.
        """
        ref, component = self._resolve(dataset_type, data_id, collections, timespan, kwargs)
        return self.datastore.get(
            ref, self._locations(ref), parameters=parameters, component=component, verify=verify
        )

    def get_uri(
        self,
        dataset_type: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> str:
        """The URI (local path or ``s3://``) of a dataset's file."""
        ref, _ = self._resolve(dataset_type, data_id, collections, None, kwargs)
        return self.datastore.uri(self._locations(ref)[0])

    def exists(
        self,
        dataset_type: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Whether the dataset is registered *and* its file is present."""
        try:
            ref, _ = self._resolve(dataset_type, data_id, collections, None, kwargs)
            locations = self._locations(ref)
        except DatasetNotFoundError:
            return False
        return all(self.datastore.exists(loc) for loc in locations)

    # -- writing -------------------------------------------------------------------------
    def _dataset_type(self, dataset_type: str | DatasetType) -> DatasetType:
        if isinstance(dataset_type, DatasetType):
            self.registry.register_dataset_type(dataset_type)
            return dataset_type
        return self.registry.get_dataset_type(dataset_type)

    def put(
        self,
        obj: Any,
        dataset_type: str | DatasetType,
        data_id: Mapping[str, Any] | None = None,
        *,
        run: str | None = None,
        formatter: str | None = None,
        **kwargs: Any,
    ) -> DatasetRef:
        """Store ``obj`` as a new dataset in ``run`` and register it.

        The registry rows are inserted inside a transaction that commits only after the file
        is written; if the write fails nothing is registered, and if the commit fails the
        file is removed.
        """
        dt = self._dataset_type(dataset_type)
        run = self._run(run)
        expanded = self.registry.expand_data_id(data_id, dimensions=dt.dimensions, **kwargs)
        ref = DatasetRef.make(dt, expanded, run, deterministic=False)
        location: DatasetLocation | None = None
        try:
            with self.registry.transaction():
                (ref,) = self.registry.import_datasets([ref])
                location = self.datastore.put(
                    obj, _with_records(ref, expanded), formatter=formatter
                )
                self.registry.insert_locations([location])
        except BaseException:
            if location is not None and not self._registered([location]):
                self.datastore.remove([location])
            raise
        return ref

    def ingest(
        self,
        *datasets: FileDataset,
        transfer: str = "auto",
        run: str | None = None,
        progress: bool = False,
    ) -> list[DatasetRef]:
        """Register existing files, all or nothing.

        Every file is checked before any is transferred; copies into a local datastore then run
        on a few threads (they wait on the disk). If one transfer or the registry insert fails,
        the transfers made are undone.

        Parameters
        ----------
        *datasets
            The files and what they are.
        transfer
            ``copy``, ``move``, ``symlink``, ``relsymlink``, ``hardlink``, ``auto`` or
            ``direct`` (leave the file where it is and record its URI).
        run
            RUN collection to ingest into (default: the Butler's ``run``).
        progress
            Show a progress bar while data IDs are resolved.

        Raises
        ------
        IngestError
            Naming the file that could not be ingested; nothing was registered or moved.
        """
        run = self._run(run, register=False)
        refs = self._refs_for_ingest(datasets, run, progress=progress)
        items = [(ds.path, ref) for ds, ref in zip(datasets, refs, strict=True)]
        formatters = {ds.formatter for ds in datasets}
        formatter = formatters.pop() if len(formatters) == 1 else None
        try:
            locations = self.datastore.prepare_ingest(
                items, transfer=transfer, formatter=formatter
            )
        except IngestError as err:
            if isinstance(err.__cause__, FileExistsError):
                err.add_note(self._explain_taken_path(refs, run, str(err.__cause__.filename)))
            raise
        try:
            with self.registry.transaction():
                self.registry.register_run(run)
                self.registry.import_datasets(refs)
                self.registry.insert_locations(locations)
        except BaseException as err:
            if not self._registered(locations):
                self.datastore.undo_ingest(locations, transfer=transfer)
            if isinstance(err, SpherexDaskError) and not isinstance(err, IngestError):
                raise IngestError(
                    f"Ingest into run {run!r} failed; nothing was registered: {err}"
                ) from err
            raise
        logger.info("Ingested %d file(s) into %s (%s)", len(refs), run, transfer)
        return refs

    def _registered(self, locations: Sequence[DatasetLocation]) -> bool:
        """Whether the registry holds ``locations`` (all or none: they were inserted in one
        transaction; the first one's id and path are compared), asked before undoing a write
        or transfer that failed.

        An interrupt (Ctrl-C, SIGTERM) can arrive after the transaction has committed and
        before the code after it runs; the files are then registered and must stay. If the
        registry cannot be asked, they are taken as not registered, as the failure most
        likely came before the commit.
        """
        if not locations:
            return False
        try:
            first = locations[0]
            stored = self.registry.get_locations([first.dataset_id]).get(first.dataset_id)
            # The same path: a dataset that existed before (an import of an id already here)
            # has another location, and the new copy must still be removed.
            return any(loc.path == first.path for loc in stored or [])
        except Exception:
            logger.debug("Could not ask the registry about %s", locations[0], exc_info=True)
            return False

    def _explain_taken_path(self, refs: Sequence[DatasetRef], run: str, path: str) -> str:
        """What to do about a destination of an ingest that a file already occupies.

        Either datasets of the ingest are registered in ``run`` (ingested before), or none is
        and the file was left by an ingest that was killed between transferring its files and
        registering them (or another ingest into ``run`` is between those steps now).
        """
        try:
            self.registry.get_collection_type(run)
        except MissingCollectionError:
            run_exists, found = False, 0
            where = f"run {run!r} does not exist"
        else:
            run_exists = True
            by_type: dict[str, list[DatasetRef]] = {}
            for ref in refs:
                by_type.setdefault(ref.dataset_type.name, []).append(ref)
            found = sum(
                match is not None
                for name, group in by_type.items()
                for match in self.registry.find_datasets(
                    name, [r.data_id for r in group], collections=[run]
                )
            )
            where = f"no dataset of this ingest is registered in run {run!r}"
        if found:
            return (
                f"{found} of the {len(refs)} dataset(s) of this ingest are registered in run "
                f"{run!r} already: ingest only the other files, or into another run "
                "(--output-run, or run=)."
            )
        run_dir = self.datastore.root.rstrip("/") + "/" + run
        files = (
            f"everything under {run_dir!r}"
            if not run_exists and path.startswith(run_dir + "/")
            else f"the files under {run_dir!r} that no dataset of the run refers to"
        )
        return (
            f"The file is registered to no dataset ({where}): an earlier ingest into {run!r} "
            "was killed after transferring its files and before registering them, or another "
            f"ingest into {run!r} is between those steps now. If no other ingest into {run!r} "
            f"is running, delete the files that interrupted ingest left ({files}; with "
            "transfer 'move' they are your originals: move them back instead) and ingest again."
        )

    def _refs_for_ingest(
        self, datasets: Sequence[FileDataset], run: str, *, progress: bool
    ) -> list[DatasetRef]:
        types: dict[str, DatasetType] = {}
        for name in dict.fromkeys(ds.dataset_type for ds in datasets):
            try:
                types[name] = self.registry.get_dataset_type(name)
            except SpherexDaskError as err:
                path = next(ds.path for ds in datasets if ds.dataset_type == name)
                raise IngestError(f"Cannot ingest {path!r}: {err}") from err
        data_ids = self._expand_for_ingest(datasets, types, progress=progress)
        refs: list[DatasetRef] = []
        seen: dict[tuple[str, DataId], str] = {}
        for ds, data_id in zip(datasets, data_ids, strict=True):
            dt = types[ds.dataset_type]
            key = (dt.name, data_id)
            if key in seen:
                raise IngestError(
                    f"Cannot ingest {ds.path!r}: it has the same dataset type and data ID "
                    f"({dt.name} {data_id}) as {seen[key]!r}."
                )
            seen[key] = ds.path
            refs.append(DatasetRef.make(dt, data_id, run, deterministic=False))
        return refs

    def _expand_for_ingest(
        self, datasets: Sequence[FileDataset], types: Mapping[str, DatasetType], *, progress: bool
    ) -> list[DataId]:
        """Expanded data IDs in the order of ``datasets``: batched per dataset type; when a
        batch fails, one by one, so that the error names the file."""
        out: dict[int, DataId] = {}
        for name, dt in types.items():
            indices = [i for i, ds in enumerate(datasets) if ds.dataset_type == name]
            try:
                expanded = self.registry.expand_data_ids(
                    [datasets[i].data_id for i in indices], dimensions=dt.dimensions
                )
            except SpherexDaskError:
                expanded = []
                for i in _maybe_progress(indices, progress, "resolving data IDs"):
                    try:
                        expanded.append(
                            self.registry.expand_data_id(
                                datasets[i].data_id, dimensions=dt.dimensions
                            )
                        )
                    except SpherexDaskError as err:
                        raise IngestError(f"Cannot ingest {datasets[i].path!r}: {err}") from err
            out.update(zip(indices, expanded, strict=True))
        return [out[i] for i in range(len(datasets))]

    # -- queries (delegated) ---------------------------------------------------------------
    def query_datasets(
        self,
        dataset_types: Any,
        *,
        collections: str | Sequence[str] | None = None,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        find_first: bool = True,
        **kwargs: Any,
    ) -> Iterator[DatasetRef]:
        """Stream the datasets matching a query (see ``Registry.query_datasets``)."""
        return self.registry.query_datasets(
            dataset_types,
            collections=self._collections(collections),
            where=where,
            bind=bind,
            find_first=find_first,
            **kwargs,
        )

    def query_data_ids(self, dimensions: str | Iterable[str], **kwargs: Any) -> Iterator[DataId]:
        """Stream distinct data IDs (see ``Registry.query_data_ids``)."""
        return self.registry.query_data_ids(dimensions, **kwargs)

    def query_dimension_records(self, element: str, **kwargs: Any) -> Iterator[Any]:
        """Stream dimension records (see ``Registry.query_dimension_records``)."""
        return self.registry.query_dimension_records(element, **kwargs)

    def query_quanta(
        self,
        *,
        collections: str | Sequence[str] | None = None,
        task_label: str | None = None,
        status: str | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> Iterator[QuantumRecord]:
        """Provenance of executed quanta in ``collections`` (default: the Butler's, else all);
        see ``Registry.query_quanta``."""
        return self.registry.query_quanta(
            collections=_as_list(collections) or self.collections or None,
            task_label=task_label,
            status=status,
            data_id=data_id,
        )

    # -- removal ---------------------------------------------------------------------------
    def prune_datasets(self, refs: Iterable[DatasetRef], *, purge: bool = True) -> int:
        """Remove datasets: with ``purge`` from the registry and the datastore, else only
        their files (``unstore``: the registry keeps the dataset, without a file).

        Returns the number of datasets pruned.
        """
        refs = list(refs)
        locations = self.registry.get_locations([r.id for r in refs])
        flat = [loc for locs in locations.values() for loc in locs]
        with self.registry.transaction():
            if purge:
                self.registry.remove_datasets(refs)
            else:
                self.registry.remove_locations([r.id for r in refs])
        self.datastore.remove(flat)
        return len(refs)

    def remove_runs(self, names: Iterable[str], *, unstore: bool = True) -> int:
        """Remove whole RUN collections, their datasets and (with ``unstore``) their files.

        All or nothing: the runs are removed from the registry in one transaction, and files
        are deleted only after it commits, so a name that is missing, not a RUN, or still in
        a chain leaves every run listed as it was.

        Returns the number of datasets removed.

        Raises
        ------
        MissingCollectionError, CollectionTypeError, CollectionError
            If a name does not exist, is not a RUN, or is a child of a CHAINED collection.
        """
        total = 0
        locations: list[DatasetLocation] = []
        with self.registry.transaction():
            for name in names:
                refs = list(
                    self.registry.query_datasets(..., collections=[name], find_first=False)
                )
                found = self.registry.get_locations([r.id for r in refs])
                locations += [loc for locs in found.values() for loc in locs]
                total += len(self.registry.remove_run(name))
        if unstore:
            self.datastore.remove(locations)
        return total

    # -- moving data between repositories ------------------------------------------------------
    def retrieve_artifacts(
        self,
        refs: Iterable[DatasetRef],
        destination: str | Path,
        *,
        transfer: str = "copy",
        preserve_path: bool = True,
    ) -> list[str]:
        """Copy the files of ``refs`` to a local directory; returns the paths written."""
        refs = list(refs)
        locations = self.registry.get_locations([r.id for r in refs])
        flat = [loc for r in refs for loc in locations.get(r.id, [])]
        return self.datastore.retrieve(
            flat, str(destination), transfer=transfer, preserve_path=preserve_path
        )

    def verify_artifacts(
        self, refs: Iterable[DatasetRef], *, progress: bool = False
    ) -> dict[DatasetRef, SpherexDaskError]:
        """Check that the files of ``refs`` exist, with the sizes and checksums recorded.

        A file with a recorded checksum is read in full; others are checked for existence
        and size. A dataset stored without a file (pruned with ``purge=False``) is not a
        problem. Nothing is changed.

        Parameters
        ----------
        refs
            The datasets to check, e.g. from ``query_datasets(..., find_first=False)``.
        progress
            Show a progress bar (for 20 datasets or more).

        Returns
        -------
        problems : `dict` [`DatasetRef`, `SpherexDaskError`]
            Each dataset whose file is missing (``FileMissingError``) or changed
            (``ChecksumError``), with the error ``get(..., verify=True)`` would raise, which
            names the file; empty when every file is as recorded.
        """
        refs = list(refs)
        locations = self.registry.get_locations([r.id for r in refs])
        problems: dict[DatasetRef, SpherexDaskError] = {}
        for ref in _maybe_progress(refs, progress, "verify", unit="dataset"):
            for location in locations.get(ref.id, []):
                try:
                    self.datastore.verify(location)
                except (FileMissingError, ChecksumError) as err:
                    problems[ref] = err
                    break
        return problems

    def export(
        self, refs: Iterable[DatasetRef], directory: str | Path, *, chains: Sequence[str] = ()
    ) -> Path:
        """Export datasets (records, files, and their TAGGED and CALIBRATION memberships with
        validity ranges) to ``directory`` for :meth:`import_`, with the definitions of the
        CHAINED collections ``chains`` (and of the chains among their members)."""
        from ._transfer import export_datasets

        return export_datasets(self, list(refs), Path(directory), chains=list(chains))

    def import_(
        self, directory: str | Path, *, transfer: str = "copy", chains: bool = True
    ) -> list[DatasetRef]:
        """Import what :meth:`export` wrote, keeping dataset ids, runs and data IDs, and
        certifying and tagging the datasets as they were; with ``chains``, making the CHAINED
        collections the export defines (all or nothing)."""
        from ._transfer import import_datasets

        return import_datasets(self, Path(directory), transfer=transfer, chains=chains)

    def dataset_uuid_refs(self, ids: Iterable[uuid.UUID]) -> list[DatasetRef]:
        """Look up datasets by id."""
        return [self.registry.get_dataset(i) for i in ids]


def _with_records(ref: DatasetRef, data_id: DataId) -> DatasetRef:
    """``ref`` with the expanded data ID (records for file templates)."""
    if ref.data_id.records is not None:
        return ref
    return DatasetRef(id=ref.id, dataset_type=ref.dataset_type, data_id=data_id, run=ref.run)


def _maybe_progress(
    items: Sequence[Any], enabled: bool, desc: str, *, unit: str = "file"
) -> Iterable[Any]:
    if not enabled or len(items) < 20:
        return items
    from ._progress import progress_bar as tqdm

    return tqdm(items, desc=desc, unit=unit)


def remove_tree(path: str | Path) -> None:
    """Remove a directory tree if it exists (used by tests and the demo)."""
    shutil.rmtree(path, ignore_errors=True)
