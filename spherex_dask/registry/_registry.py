# SPDX-License-Identifier: BSD-3-Clause
"""The :class:`Registry` facade: the SQL catalogue of dimensions, dataset types, collections
and datasets.

Each public method runs in one transaction (or joins the enclosing :meth:`Registry.transaction`
as a savepoint); no connection leaves the registry.  Queries stream their results.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import EllipsisType
from typing import Any, Literal

import sqlalchemy as sa

from ..dimensions import DimensionUniverse
from ..errors import (
    CollectionError,
    ConfigError,
    DimensionNotInQueryError,
    QueryError,
    UniverseMismatchError,
)
from ..types import (
    CollectionType,
    DataId,
    DatasetLocation,
    DatasetRef,
    DatasetType,
    DimensionRecord,
    QuantumRecord,
    Timespan,
)
from ._calibrations import CalibrationStore
from ._collections import CollectionStore, is_pattern
from ._database import Database, make_engine, parse_url
from ._dataset_types import DatasetTypeStore
from ._datasets import DatasetStore, chunked
from ._dimensions import DimensionStore
from ._locations import LocationStore
from ._lookups import DatasetFinder
from ._quanta import QuantumStore
from ._queries import QueryEngine, SearchPath
from ._schema import SCHEMA_VERSION, build_tables

__all__ = ["Registry"]

logger = logging.getLogger(__name__)

DatasetTypeArg = str | DatasetType
RefsArg = Iterable[DatasetRef | uuid.UUID]


def _ids(refs: RefsArg) -> list[uuid.UUID]:
    return [r.id if isinstance(r, DatasetRef) else uuid.UUID(str(r)) for r in refs]


def _names(dimensions: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """Dimension names as a tuple (None stays None); one name given as a string is one
    dimension, not a sequence of letters."""
    if dimensions is None:
        return None
    return (dimensions,) if isinstance(dimensions, str) else tuple(dimensions)


def _describe_universe_difference(stored: DimensionUniverse, given: DimensionUniverse) -> str:
    if stored.name != given.name or stored.version != given.version:
        return f"stored {stored.name!r} v{stored.version}, given {given.name!r} v{given.version}"
    names = sorted(set(stored.elements) ^ set(given.elements))
    names += [n for n in stored.elements if n in given.elements and stored[n] != given[n]]
    return f"elements differing: {', '.join(names) or '(configuration details)'}"


class Registry:
    """The SQL catalogue of a repository (SQLite or PostgreSQL, through SQLAlchemy Core).

    Use :meth:`create` or :meth:`open`; close with :meth:`close` or a ``with`` block.

    Examples
    --------
    >>> reg = Registry.create("sqlite://")
    >>> reg.register_run("demo")
    True
    >>> reg.query_collections()
    ['demo']
    >>> reg.close()
    """

    def __init__(self, db: Database, universe: DimensionUniverse, url: str) -> None:
        self._db = db
        self.universe = universe
        self.url = url
        self._dimensions = DimensionStore(db, universe)
        self._dataset_types = DatasetTypeStore(db, universe)
        self._collections = CollectionStore(db)
        self._datasets = DatasetStore(
            db, universe, self._dimensions, self._dataset_types, self._collections
        )
        self._calibrations = CalibrationStore(db, self._datasets)
        self._locations = LocationStore(db, self._datasets)
        self._queries = QueryEngine(db, self._datasets)
        self._quanta = QuantumStore(db, universe, self._collections, self._queries.resolver)
        self._finder = DatasetFinder(db, self._datasets)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls, url: str, *, universe: DimensionUniverse | None = None, schema: str | None = None
    ) -> Registry:
        """Create the registry tables in a new database (or PostgreSQL schema).

        Parameters
        ----------
        url
            ``sqlite:///path/registry.sqlite3`` (a bare path also works) or
            ``postgresql+psycopg://user@host:port/database`` (optionally ``?schema=name``).
        universe
            The dimension universe; the SPHEREx default if omitted.  It is stored in the
            database, so the repository describes itself.
        schema
            PostgreSQL schema to create the tables in (created if missing).

        Raises
        ------
        ConfigError
            If a registry already exists there, or the URL is not supported.
        """
        parsed, schema = parse_url(url, schema)
        universe = universe or DimensionUniverse.default()
        tables = build_tables(universe)
        engine = make_engine(parsed, schema=schema)
        try:
            with engine.begin() as conn:
                if schema:
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                if sa.inspect(conn).has_table("meta"):
                    raise ConfigError(
                        f"A registry already exists at {url!r}; open it with Registry.open."
                    )
                tables.metadata.create_all(conn)
                conn.execute(
                    sa.insert(tables.meta),
                    [
                        {"key": "universe", "value": universe.to_yaml()},
                        {"key": "schema_version", "value": SCHEMA_VERSION},
                    ],
                )
        except BaseException:
            engine.dispose()
            raise
        logger.info("Created registry at %s.", parsed.render_as_string(hide_password=True))
        return cls(Database(engine, tables), universe, url)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        universe: DimensionUniverse | None = None,
        writeable: bool = True,
        schema: str | None = None,
    ) -> Registry:
        """Open an existing registry.

        Raises
        ------
        ConfigError
            If there is no registry at ``url`` or the server cannot be reached.
        UniverseMismatchError
            If ``universe`` is given and differs from the one stored in the repository.
        """
        parsed, schema = parse_url(url, schema)
        engine = make_engine(parsed, schema=schema, must_exist=True)
        try:
            stored = cls._read_meta(engine, url)
        except BaseException:
            engine.dispose()
            raise
        if universe is not None and universe != stored:
            engine.dispose()
            raise UniverseMismatchError(
                f"The registry at {url!r} uses a different dimension universe "
                f"({_describe_universe_difference(stored, universe)}). Open it without a "
                "universe to use the stored one, or create a new repository."
            )
        return cls(Database(engine, build_tables(stored), writeable=writeable), stored, url)

    @staticmethod
    def _read_meta(engine: sa.Engine, url: str) -> DimensionUniverse:
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table("meta"):
                    raise ConfigError(
                        f"No registry at {url!r}: the database has no registry tables. "
                        "Create one with Registry.create (or 'spherex-dask create')."
                    )
                meta: dict[str, Any] = dict(
                    conn.execute(sa.text("SELECT key, value FROM meta")).all()
                )
        except sa.exc.OperationalError as err:
            raise ConfigError(f"Cannot connect to the registry at {url!r}: {err.orig}") from err
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(
                f"The registry at {url!r} has schema version {meta.get('schema_version')!r}; "
                f"this spherex_dask reads version {SCHEMA_VERSION}."
            )
        return DimensionUniverse.from_yaml(meta["universe"])

    def close(self) -> None:
        """Release all database connections."""
        self._db.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    @property
    def is_writeable(self) -> bool:
        """Whether the registry was opened for writing."""
        return self._db.writeable

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group registry calls into one database transaction.

        Calls made inside join it; if the block raises, everything rolls back.

        Examples
        --------
        >>> reg = Registry.create("sqlite://")
        >>> try:
        ...     with reg.transaction():
        ...         _ = reg.register_run("a")
        ...         raise RuntimeError("boom")
        ... except RuntimeError:
        ...     pass
        >>> reg.query_collections()
        []
        """
        with self._db.transaction():
            yield

    # -- dimension records ----------------------------------------------------------------
    def insert_dimension_records(
        self,
        element: str,
        records: Iterable[Mapping[str, Any] | DimensionRecord],
        *,
        skip_existing: bool = False,
    ) -> int:
        """Insert dimension records in bulk; return the number inserted.

        Raises
        ------
        RecordConflictError
            If a record with the same key exists (unless ``skip_existing``).
        DataIdValueError
            If a record references a dimension value that has no record.
        """
        rows = self._dimensions.prepare(element, records)
        return self._db.write(
            lambda c: self._dimensions.insert(c, element, rows, skip_existing=skip_existing)
        )

    def sync_dimension_records(
        self, element: str, records: Iterable[Mapping[str, Any] | DimensionRecord]
    ) -> int:
        """Insert missing records and check existing ones are identical; return number inserted.

        Raises
        ------
        RecordConflictError
            Naming the differing fields and both values.
        """
        rows = self._dimensions.prepare(element, records)
        return self._db.write(lambda c: self._dimensions.sync(c, element, rows))

    def query_dimension_records(
        self,
        element: str,
        *,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> Iterator[DimensionRecord]:
        """Stream the records of ``element`` matching a where expression and a data ID."""
        return self._queries.dimension_records(element, where=where, bind=bind, data_id=data_id)

    def expand_data_id(
        self,
        data_id: Mapping[str, Any] | None = None,
        *,
        dimensions: str | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> DataId:
        """Standardise a data ID, fill implied dimensions and attach dimension records.

        Alternate keys are accepted: ``{"instrument": "SPHEREx", "exposure":
        "2025W19_2B_0073_2"}`` or ``{"exposure.obs_id": ...}``.

        Raises
        ------
        DataIdError
            For an unknown dimension, a missing key or a value of the wrong type.
        DataIdValueError
            For a value with no dimension record.
        """
        values = dict(data_id or {}, **kwargs)
        with self._db.read() as conn:
            return self._dimensions.expand(conn, values, _names(dimensions))

    def expand_data_ids(
        self,
        data_ids: Iterable[Mapping[str, Any]],
        *,
        dimensions: str | Iterable[str] | None = None,
    ) -> list[DataId]:
        """:meth:`expand_data_id` for many data IDs, in one read and few queries.

        The records of each dimension element are fetched for all the data IDs at once
        (ingesting 10,000 files otherwise costs one query per exposure).

        Raises
        ------
        DataIdError, DataIdValueError
            As :meth:`expand_data_id`, for the first data ID that cannot be expanded.
        """
        with self._db.read() as conn:
            return self._dimensions.expand_many(conn, list(data_ids), _names(dimensions))

    # -- dataset types --------------------------------------------------------------------
    def register_dataset_type(self, dataset_type: DatasetType) -> bool:
        """Register a dataset type; return whether it was new (idempotent).

        Raises
        ------
        DatasetTypeConflictError
            If the name is registered with a different definition.
        DatasetTypeError
            For an invalid name, a component name or an unknown dimension.
        """
        return self._db.write(lambda c: self._dataset_types.register(c, dataset_type))

    def get_dataset_type(self, name: str) -> DatasetType:
        """The registered dataset type ``name`` (``raw.image`` gives a component type).

        Raises
        ------
        MissingDatasetTypeError
            Listing the registered types.
        """
        with self._db.read() as conn:
            return self._dataset_types.get(conn, name)[1]

    def query_dataset_types(self, pattern: str = "*") -> list[DatasetType]:
        """Registered dataset types whose names match the glob ``pattern``."""
        with self._db.read() as conn:
            return self._dataset_types.query(conn, pattern)

    def remove_dataset_type(self, name: str) -> None:
        """Remove a dataset type that has no datasets."""
        self._db.write(lambda c: self._dataset_types.remove(c, name))

    # -- collections ----------------------------------------------------------------------
    def register_run(self, name: str, *, doc: str = "") -> bool:
        """Create a RUN collection; return whether it was new."""
        return self.register_collection(name, CollectionType.RUN, doc=doc)

    def register_collection(
        self, name: str, collection_type: CollectionType, *, doc: str = ""
    ) -> bool:
        """Create a collection of any type; return whether it was new.

        Raises
        ------
        CollectionTypeError
            If it exists with another type.
        """
        return self._db.write(lambda c: self._collections.register(c, name, collection_type, doc))

    def get_collection_type(self, name: str) -> CollectionType:
        """The type of a collection (:class:`MissingCollectionError` lists similar names)."""
        with self._db.read() as conn:
            return self._collections.get(conn, name).type

    def get_collection_doc(self, name: str) -> str:
        """The documentation string of a collection."""
        with self._db.read() as conn:
            return self._collections.get(conn, name).doc

    def remove_collection(self, name: str) -> None:
        """Remove a collection; a RUN must be empty (use :meth:`remove_run` otherwise).

        Raises
        ------
        CollectionError
            If a chain references it, or it is a non-empty RUN.
        """

        def remove(conn: sa.Connection) -> None:
            record = self._collections.get(conn, name)
            self._collections.check_unreferenced(conn, record)
            if record.type is CollectionType.RUN:
                count = self._datasets.count_in_run(conn, record)
                if count:
                    raise CollectionError(
                        f"RUN {name!r} holds {count} dataset(s); remove it with its datasets "
                        "instead (`spherex-dask remove-runs`, or Butler.remove_runs)."
                    )
                self._quanta.delete_run(conn, record.id)
            tables = self._db.tables
            for table in (tables.dataset_tagged, tables.dataset_calibration):
                conn.execute(sa.delete(table).where(table.c.collection_id == record.id))
            self._collections.delete(conn, record)

        self._db.write(remove)

    def set_collection_chain(
        self, parent: str, children: Sequence[str], *, flatten: bool = False
    ) -> None:
        """Set the ordered children of a CHAINED collection (``flatten`` stores the leaves).

        Raises
        ------
        CollectionCycleError
            If the chain would contain itself.
        """
        self._db.write(lambda c: self._collections.set_chain(c, parent, children, flatten=flatten))

    def get_collection_chain(self, parent: str) -> tuple[str, ...]:
        """The direct children of a CHAINED collection, in search order."""
        with self._db.read() as conn:
            record = self._collections.get(conn, parent, expected=CollectionType.CHAINED)
            return tuple(c.name for c in self._collections.children(conn, record))

    def get_collection_parent_chains(self, name: str) -> set[str]:
        """The CHAINED collections that list ``name`` directly.

        Raises
        ------
        MissingCollectionError
            If there is no collection ``name``.
        """
        with self._db.read() as conn:
            return set(self._collections.parents(conn, self._collections.get(conn, name)))

    def query_collections(
        self,
        pattern: str | Iterable[str] = "*",
        *,
        collection_types: Iterable[CollectionType] | None = None,
        flatten_chains: bool = False,
        include_chains: bool = True,
    ) -> list[str]:
        """Collection names matching glob ``pattern`` (sorted; chains expanded in order if
        ``flatten_chains``), optionally restricted to some types."""
        with self._db.read() as conn:
            return self._collections.query(
                conn,
                pattern,
                collection_types=collection_types,
                flatten_chains=flatten_chains,
                include_chains=include_chains,
            )

    # -- datasets -------------------------------------------------------------------------
    def insert_datasets(
        self,
        dataset_type: DatasetTypeArg,
        data_ids: Iterable[Mapping[str, Any]],
        run: str,
        *,
        id_mode: Literal["unique", "deterministic"] = "unique",
    ) -> list[DatasetRef]:
        """Insert new datasets of one type into a RUN, all or nothing.

        ``id_mode="deterministic"`` gives UUID5 ids of (dataset type, data ID, run), the ids
        :meth:`DatasetRef.make` computes.

        Raises
        ------
        DatasetConflictError
            Naming datasets that already exist for the same (type, data ID, run).
        DataIdError, DataIdValueError
            For invalid data IDs or values without dimension records.
        """

        def insert(conn: sa.Connection) -> list[DatasetRef]:
            type_id, registered = self._dataset_types.resolve(conn, dataset_type)
            record = self._collections.get(conn, run, expected=CollectionType.RUN)
            return self._datasets.insert(
                conn, registered.parent_type(), type_id, record, data_ids, id_mode
            )

        data_ids = list(data_ids)
        return self._db.write(insert)

    def import_datasets(
        self, refs: Iterable[DatasetRef], *, skip_existing: bool = False
    ) -> list[DatasetRef]:
        """Insert datasets whose ids were made elsewhere (e.g. by workers), all or nothing.

        With ``skip_existing``, refs identical to registered ones are skipped, so repeating an
        import is harmless; a different dataset under the same id or data ID is still an error.
        """
        refs = list(refs)
        return self._db.write(
            lambda c: self._datasets.import_refs(c, refs, skip_existing=skip_existing)
        )

    def get_dataset(self, dataset_id: uuid.UUID) -> DatasetRef:
        """The dataset with this id (:class:`DatasetNotFoundError` if there is none)."""
        with self._db.read() as conn:
            return self._datasets.require(conn, [dataset_id])[dataset_id]

    def associate(self, tagged: str, refs: RefsArg) -> None:
        """Add datasets to a TAGGED collection (one per dataset type and data ID)."""
        ids = _ids(refs)
        self._db.write(
            lambda c: self._datasets.associate(
                c, self._collections.get(c, tagged, expected=CollectionType.TAGGED), ids
            )
        )

    def disassociate(self, tagged: str, refs: RefsArg) -> None:
        """Remove datasets from a TAGGED collection."""
        ids = _ids(refs)
        self._db.write(
            lambda c: self._datasets.disassociate(
                c, self._collections.get(c, tagged, expected=CollectionType.TAGGED), ids
            )
        )

    def certify(self, collection: str, refs: RefsArg, timespan: Timespan) -> None:
        """Make calibration datasets valid for ``timespan`` in a CALIBRATION collection.

        Raises
        ------
        CalibrationConflictError
            If a dataset of the same type and data ID is already valid for an overlapping
            range (both ranges are named); nothing is changed.
        """
        ids = _ids(refs)
        self._db.write(
            lambda c: self._calibrations.certify(
                c,
                self._collections.get(c, collection, expected=CollectionType.CALIBRATION),
                ids,
                timespan,
            )
        )

    def decertify(
        self,
        collection: str,
        dataset_type: DatasetTypeArg,
        timespan: Timespan,
        *,
        data_ids: Iterable[Mapping[str, Any]] | None = None,
    ) -> int:
        """Remove ``timespan`` from validity ranges (removing, truncating or splitting them).

        Returns the number of validity ranges affected.
        """

        def decertify(conn: sa.Connection) -> int:
            record = self._collections.get(conn, collection, expected=CollectionType.CALIBRATION)
            type_id, registered = self._dataset_types.resolve(conn, dataset_type)
            std = None
            if data_ids is not None:
                dims = registered.dimensions
                std = [
                    DataId(dict(zip(dims, self._datasets.key_tuple(dims, d), strict=True)))
                    for d in data_ids
                ]
            return self._calibrations.decertify(conn, record, type_id, registered, timespan, std)

        return self._db.write(decertify)

    def query_associations(
        self, refs: RefsArg
    ) -> list[tuple[str, uuid.UUID, Timespan | None]]:
        """The TAGGED and CALIBRATION memberships of datasets.

        Returns
        -------
        associations : `list` [`tuple`]
            ``(collection, dataset id, validity)`` for each membership, ``validity`` None in
            a TAGGED collection; ordered by collection name, then validity.

        Examples
        --------
        >>> reg = Registry.create("sqlite://")
        >>> reg.query_associations([])
        []
        """
        ids = _ids(refs)
        tables = self._db.tables
        coll = tables.collection
        out: list[tuple[str, uuid.UUID, Timespan | None]] = []
        with self._db.read() as conn:
            for chunk in chunked(ids):
                tag = tables.dataset_tagged
                stmt = sa.select(coll.c.name, tag.c.dataset_id).join(
                    coll, coll.c.id == tag.c.collection_id
                ).where(self._db.in_values(tag.c.dataset_id, chunk))
                out += [(row[0], uuid.UUID(str(row[1])), None) for row in conn.execute(stmt)]
                cal = tables.dataset_calibration
                stmt = sa.select(
                    coll.c.name, cal.c.dataset_id, cal.c.validity_begin, cal.c.validity_end
                ).join(coll, coll.c.id == cal.c.collection_id).where(
                    self._db.in_values(cal.c.dataset_id, chunk)
                )
                out += [
                    (row[0], uuid.UUID(str(row[1])), Timespan.from_ns(row[2], row[3]))
                    for row in conn.execute(stmt)
                ]
        out.sort(key=lambda a: (a[0], a[2].begin_ns if a[2] else 0, str(a[1])))
        return out

    def remove_datasets(self, refs: RefsArg) -> None:
        """Delete datasets, their collection memberships and their location records."""
        ids = _ids(refs)
        self._db.write(lambda c: self._datasets.remove(c, ids))

    def remove_run(self, name: str) -> list[DatasetRef]:
        """Delete a RUN and its datasets; return the removed refs (so files can be deleted)."""

        def remove(conn: sa.Connection) -> list[DatasetRef]:
            run = self._collections.get(conn, name, expected=CollectionType.RUN)
            self._collections.check_unreferenced(conn, run)
            self._quanta.delete_run(conn, run.id)
            return self._datasets.remove_run(conn, run)

        return self._db.write(remove)

    # -- lookups and queries ----------------------------------------------------------------
    def _search_path(self, conn: sa.Connection, collections: str | Sequence[str]) -> SearchPath:
        return SearchPath(self._collections.flatten(conn, collections))

    def find_dataset(
        self,
        dataset_type: DatasetTypeArg,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str],
        timespan: Timespan | None = None,
        **kwargs: Any,
    ) -> DatasetRef | None:
        """The first dataset of ``dataset_type`` and ``data_id`` in the collection search path.

        Chains are flattened in order.  In CALIBRATION collections the dataset whose validity
        overlaps ``timespan`` is chosen; without a timespan, the exposure record's timespan is
        used when the data ID has an exposure.  The data ID may have more dimensions than the
        dataset type (a dark is found with an exposure's data ID).  Returns ``None`` if no
        dataset matches.
        """
        values = dict(data_id.to_dict() if isinstance(data_id, DataId) else data_id or {}, **kwargs)
        # Extra dimensions are allowed, but a misspelt key must not be ignored.
        self.universe.check_known((k.partition(".")[0] for k in values), values)
        with self._db.read() as conn:
            type_id, registered = self._dataset_types.resolve(conn, dataset_type)
            values = self._resolve_values(conn, values)
            key = self._datasets.key_tuple(
                registered.dimensions, {d: values[d] for d in registered.dimensions if d in values}
            )
            path = self._search_path(conn, collections)
            if (
                timespan is None
                and registered.is_calibration
                and path.by_type[CollectionType.CALIBRATION]
            ):
                timespan = self._data_id_timespan(conn, values, data_id)
            return self._queries.find(conn, type_id, registered, key, path, timespan)

    def find_datasets(
        self,
        dataset_type: DatasetTypeArg,
        data_ids: Sequence[Mapping[str, Any]],
        *,
        collections: str | Sequence[str],
        timespans: Sequence[Timespan | None] | None = None,
    ) -> list[DatasetRef | None]:
        """:meth:`find_dataset` for many data IDs at once, in a few set-based queries.

        Returns one ref (or ``None``) per data ID, in order.  ``timespans`` gives each data
        ID's timespan for CALIBRATION collections; where it is ``None`` (or not given), the
        timespan of the data ID's most specific temporal dimension record is used, as
        :meth:`find_dataset` does.

        Raises
        ------
        QueryError
            If ``timespans`` is not as long as ``data_ids``, or a calibration lookup in a
            CALIBRATION collection has no timespan.
        """
        data_ids = list(data_ids)
        spans: list[Timespan | None] = (
            [None] * len(data_ids) if timespans is None else list(timespans)
        )
        if len(spans) != len(data_ids):
            raise QueryError(
                f"find_datasets got {len(spans)} timespans for {len(data_ids)} data IDs; give "
                "one per data ID (None where the data ID's own timespan should be used)."
            )
        with self._db.read() as conn:
            type_id, registered = self._dataset_types.resolve(conn, dataset_type)
            path = self._search_path(conn, collections)
            keys = self._datasets.lookup_keys(
                registered.dimensions, data_ids, lambda d: self._resolve_values(conn, d)
            )
            if registered.is_calibration and path.by_type[CollectionType.CALIBRATION]:
                self._fill_timespans(conn, data_ids, spans)
            return self._finder.find(conn, type_id, registered, keys, spans, path)

    def _resolve_values(self, conn: sa.Connection, data_id: Mapping[str, Any]) -> dict[str, Any]:
        """A data ID as a dict, with ``element.field`` keys and alternate values resolved."""
        values = data_id.to_dict() if isinstance(data_id, DataId) else dict(data_id)
        if any("." in k or self._dimensions.is_alternate_value(k, v) for k, v in values.items()):
            values = self._dimensions.resolve_alternates(conn, values)
        return values

    def _fill_timespans(
        self,
        conn: sa.Connection,
        data_ids: Sequence[Mapping[str, Any]],
        spans: list[Timespan | None],
    ) -> None:
        """Replace missing timespans by those of the data IDs' temporal dimension records."""
        wanted = {
            i: self._resolve_values(conn, data_ids[i]) for i, t in enumerate(spans) if t is None
        }
        temporal = [e for e in self.universe.elements if self.universe[e].temporal]
        self._dimensions.prefetch_for(conn, wanted.values(), temporal)
        for i, values in wanted.items():
            spans[i] = self._data_id_timespan(conn, values, data_ids[i])
            if spans[i] is None:
                raise QueryError(
                    f"Data ID {dict(data_ids[i])!r} has no temporal dimension with a timespan "
                    "(e.g. exposure), so a calibration cannot be chosen in the CALIBRATION "
                    "collections searched; pass its timespan in timespans."
                )

    def _data_id_timespan(
        self, conn: sa.Connection, values: Mapping[str, Any], data_id: Any
    ) -> Timespan | None:
        records = getattr(data_id, "records", None) or {}
        for element in reversed(self.universe.sorted(d for d in values if d in self.universe)):
            if not self.universe[element].temporal:
                continue
            record = records.get(element)
            if record is None:
                layout = self._dimensions.layouts[element]
                key = tuple(self.universe.coerce_value(d, values[d]) for d in layout.key_dimensions)
                record = self._dimensions.get_record(conn, element, key)
            if record is not None and record.timespan is not None:
                return record.timespan
        return None

    def _chosen_dataset_types(
        self, conn: sa.Connection, dataset_types: Any
    ) -> tuple[list[tuple[int, DatasetType]], bool]:
        """The (id, type) pairs ``dataset_types`` names, and whether every one of them was
        chosen by ``...`` or a pattern (none was named explicitly)."""
        if dataset_types is ...:
            dataset_types = ["*"]
        elif isinstance(dataset_types, str | DatasetType):
            dataset_types = [dataset_types]
        out = []
        by_pattern = True
        for item in dataset_types:
            if isinstance(item, str) and is_pattern(item):
                out += [
                    self._dataset_types.get(conn, t.name)
                    for t in self._dataset_types.query(conn, item)
                ]
            else:
                out.append(self._dataset_types.resolve(conn, item))
                by_pattern = False
        return out, by_pattern

    def _dataset_selects(
        self,
        types: list[tuple[int, DatasetType]],
        by_pattern: bool,
        path: SearchPath,
        **options: Any,
    ) -> list[tuple[DatasetType, sa.Select[Any]]]:
        """The dataset query of each of ``types`` (``options``: where, bind, data_id,
        find_first).

        When the types were chosen by ``...`` or patterns, a type without a dimension that
        ``where`` names (``detector`` for ``packages``) cannot match and is left out, unless
        every type is. A type named explicitly gets the error, naming it.

        Raises
        ------
        DimensionNotInQueryError
            Naming the dataset type and the dimension it does not have.
        """
        selects = []
        errors: list[DimensionNotInQueryError] = []
        for type_id, dataset_type in types:
            try:
                stmt = self._queries.dataset_select(type_id, dataset_type, path, **options)
            except DimensionNotInQueryError as err:
                dims = ", ".join(dataset_type.dimensions) or "none"
                error = DimensionNotInQueryError(
                    f"Dataset type {dataset_type.name!r} (dimensions: {dims}) cannot match "
                    f"the query: {err} Name dataset types that have it, or leave it out of "
                    "the query."
                )
                if not by_pattern:
                    raise error from err
                errors.append(error)
                continue
            selects.append((dataset_type, stmt))
        if errors and not selects:
            raise errors[0]
        if errors:
            logger.debug("Left out dataset types that cannot match the query: %s", errors)
        return selects

    def query_datasets(
        self,
        dataset_types: DatasetTypeArg | Iterable[DatasetTypeArg] | EllipsisType,
        *,
        collections: str | Sequence[str],
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
        find_first: bool = True,
        **kwargs: Any,
    ) -> Iterator[DatasetRef]:
        """Stream datasets of the given types in ``collections`` matching ``where``/``data_id``.

        ``dataset_types`` may hold names, glob patterns, :class:`DatasetType` objects, or be
        ``...`` for every registered type.  With ``find_first`` only the first dataset of each data ID in the search order is
        returned.  Names and bind values are checked before the iterator is returned.
        """
        constraint = dict(
            data_id.to_dict() if isinstance(data_id, DataId) else data_id or {}, **kwargs
        )
        with self._db.read() as conn:
            types, by_pattern = self._chosen_dataset_types(conn, dataset_types)
            path = self._search_path(conn, collections)
        selects = self._dataset_selects(
            types, by_pattern, path, where=where, bind=bind, data_id=constraint,
            find_first=find_first,
        )  # fmt: skip
        return itertools.chain.from_iterable(
            self._db.stream(stmt, self._datasets.ref_converter(dt)) for dt, stmt in selects
        )

    def count_datasets(
        self,
        dataset_types: DatasetTypeArg | Iterable[DatasetTypeArg] | EllipsisType,
        *,
        collections: str | Sequence[str],
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
        find_first: bool = True,
        **kwargs: Any,
    ) -> int:
        """The number of datasets :meth:`query_datasets` would return, counted in the database.

        Takes the same arguments (data ID values as keywords too) and raises the same errors,
        but runs one ``SELECT COUNT(*)`` per dataset type instead of streaming the rows.
        """
        constraint = dict(
            data_id.to_dict() if isinstance(data_id, DataId) else data_id or {}, **kwargs
        )
        total = 0
        with self._db.read() as conn:
            path = self._search_path(conn, collections)
            types, by_pattern = self._chosen_dataset_types(conn, dataset_types)
            selects = self._dataset_selects(
                types, by_pattern, path, where=where, bind=bind, data_id=constraint,
                find_first=find_first,
            )  # fmt: skip
            for _, stmt in selects:
                count = sa.select(sa.func.count()).select_from(stmt.subquery())
                total += int(conn.scalar(count) or 0)
        return total

    def query_data_ids(
        self,
        dimensions: str | Iterable[str],
        *,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
        datasets: DatasetTypeArg | Iterable[DatasetTypeArg] | None = None,
        collections: str | Sequence[str] | None = None,
    ) -> Iterator[DataId]:
        """Stream distinct data IDs of ``dimensions`` (required dimensions only).

        ``dimensions`` is a list of names, or one name (``"exposure"``).  ``datasets``
        restricts them to data IDs for which datasets of those types exist in
        ``collections`` (matched on the dimensions they share).
        """
        types: list[tuple[int, DatasetType]] = []
        path = None
        if datasets is not None:
            if collections is None:
                raise QueryError("query_data_ids: 'datasets' needs 'collections' to search in.")
            with self._db.read() as conn:
                types, _ = self._chosen_dataset_types(conn, datasets)
                path = self._search_path(conn, collections)
        return self._queries.data_ids(
            _names(dimensions) or (), where=where, bind=bind, data_id=data_id, datasets=types, path=path
        )

    # -- provenance --------------------------------------------------------------------------
    def insert_quanta(self, records: Iterable[QuantumRecord]) -> None:
        """Record executed quanta (replacing earlier records with the same ids, e.g. re-runs)."""
        records = list(records)
        self._db.write(lambda c: self._quanta.insert(c, records))

    def query_quanta(
        self,
        *,
        collections: str | Sequence[str] | None = None,
        run: str | None = None,
        task_label: str | None = None,
        status: str | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> Iterator[QuantumRecord]:
        """Stream the provenance records of quanta matching every filter given.

        ``collections`` are flattened and their RUNs searched (a missing collection is an
        error; a missing ``run`` just matches nothing); ``status`` is one of
        ``succeeded``, ``failed`` and ``skipped``; ``data_id`` may be partial.
        """
        with self._db.read() as conn:
            stmt = self._quanta.select(
                conn,
                collections=collections,
                run=run,
                task_label=task_label,
                status=status,
                data_id=data_id,
            )
        return self._quanta.stream(stmt)

    # -- opaque location records --------------------------------------------------------------
    def insert_locations(self, locations: Iterable[DatasetLocation]) -> None:
        """Record where datasets' bytes live (idempotent for identical records)."""
        locations = list(locations)
        self._db.write(lambda c: self._locations.insert(c, locations))

    def get_locations(
        self, dataset_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[DatasetLocation]]:
        """The location records of datasets; every requested id is a key (maybe empty list)."""
        ids = list(dataset_ids)
        with self._db.read() as conn:
            return self._locations.get(conn, ids)

    def remove_locations(self, dataset_ids: Iterable[uuid.UUID]) -> None:
        """Delete the location records of datasets."""
        ids = list(dataset_ids)
        self._db.write(lambda c: self._locations.remove(c, ids))
