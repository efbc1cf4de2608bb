# SPDX-License-Identifier: BSD-3-Clause
"""Datasets: bulk insert and import, lookup by id, TAGGED membership and removal."""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa

from ..dimensions import DimensionUniverse
from ..errors import DataIdError, DatasetConflictError, DatasetNotFoundError
from ..types import INT64_MAX, INT64_MIN, DataId, DatasetRef, DatasetType
from ._collections import CollectionRecord, CollectionStore
from ._database import Database
from ._dataset_types import DatasetTypeStore
from ._dimensions import CHUNK, DimensionStore
from ._ids import deterministic_ids, paused_gc, random_uuids

__all__ = ["BATCH", "DatasetStore", "chunked"]

logger = logging.getLogger(__name__)

#: Rows per executemany batch.
BATCH = 5000

Key = tuple[Any, ...]


def chunked(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DatasetStore:
    """Reads and writes the ``dataset`` and ``dataset_tagged`` tables."""

    def __init__(
        self,
        db: Database,
        universe: DimensionUniverse,
        dimensions: DimensionStore,
        dataset_types: DatasetTypeStore,
        collections: CollectionStore,
    ) -> None:
        self._db = db
        self.universe = universe
        self.dimensions = dimensions
        self.dataset_types = dataset_types
        self.collections = collections
        self._key_types = {
            name: (e.key.python_type, e.key.length) for name, e in universe.elements.items()
        }

    # -- data IDs to rows ----------------------------------------------------------------
    def key_tuples(self, dims: tuple[str, ...], data_ids: Iterable[Mapping[str, Any]]) -> list[Key]:
        """:meth:`key_tuple` for many data IDs, with a C-speed path for well-typed dicts."""
        if not dims:  # a dataset type without dimensions
            return [self.key_tuple(dims, data_id) for data_id in data_ids]
        getter = operator.itemgetter(*dims)
        expected = tuple(self._key_types[d][0] for d in dims)
        size = len(dims)
        out: list[Key] = []
        for data_id in data_ids:
            if type(data_id) is dict and len(data_id) == size:
                try:
                    values = getter(data_id)
                except KeyError:
                    values = None
                if values is not None:
                    if size == 1:
                        values = (values,)
                    if tuple(map(type, values)) == expected:
                        out.append(values)
                        continue
            out.append(self.key_tuple(dims, data_id))
        self._check_lengths(dims, out)
        return out

    def _check_lengths(self, dims: tuple[str, ...], keys: Sequence[Key]) -> None:
        """Raise :class:`DataIdError` for a string value longer than its column, or an
        integer that does not fit in 64 bits, per column."""
        for i, dim in enumerate(dims):
            kind, length = self._key_types[dim]
            if not keys:
                continue
            if kind is str:
                bad = max(len(k[i]) for k in keys) > length
            else:
                column = [k[i] for k in keys]
                bad = min(column) < INT64_MIN or max(column) > INT64_MAX
            if bad:
                for key in keys:
                    self.universe.coerce_value(dim, key[i])  # raises naming the value

    def lookup_keys(
        self,
        dims: tuple[str, ...],
        data_ids: Iterable[Mapping[str, Any]],
        resolve: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> list[Key]:
        """The values of ``dims`` in data IDs that may have more dimensions (for lookups).

        Well-typed values are taken as they are; other data IDs are passed through
        ``resolve`` (alternate keys such as an obs_id) and :meth:`key_tuple`.
        """
        getter = operator.itemgetter(*dims) if dims else None
        expected = tuple(self._key_types[d][0] for d in dims)
        single = len(dims) == 1
        out: list[Key] = []
        for data_id in data_ids:
            key = None
            if getter is not None:
                try:
                    key = getter(data_id)
                except KeyError:
                    pass
                else:
                    key = (key,) if single else key
                    if tuple(map(type, key)) != expected:
                        key = None
            if key is None:
                values = resolve(data_id)
                key = self.key_tuple(dims, {d: values[d] for d in dims if d in values})
            out.append(key)
        self._check_lengths(dims, out)
        return out

    def key_tuple(self, dims: tuple[str, ...], data_id: Mapping[str, Any]) -> Key:
        """The values of ``dims`` in ``data_id``, type-checked and converted.

        Raises
        ------
        DataIdError
            For a missing dimension, a value of the wrong type or an unrelated extra key.
        """
        values = data_id.to_dict() if isinstance(data_id, DataId) else data_id
        out = []
        for dim in dims:
            try:
                value = values[dim]
            except KeyError:
                raise DataIdError(
                    f"Data ID {dict(values)!r} is missing required dimension {dim!r} "
                    f"(needs {', '.join(dims)})."
                ) from None
            kind, length = self._key_types[dim]
            if (
                type(value) is not kind
                or (isinstance(value, str) and len(value) > length)
                or (isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX)
            ):
                value = self.universe.coerce_value(dim, value)
            out.append(value)
        if len(values) != len(dims):
            extra = set(values) - set(dims) - set(self.universe.implied(dims))
            if extra:
                raise DataIdError(
                    f"Data ID {dict(values)!r} has dimension(s) {', '.join(sorted(extra))} that "
                    f"are not part of {', '.join(dims)}."
                )
        return tuple(out)

    def implied_values(
        self, conn: sa.Connection, dims: tuple[str, ...], keys: Sequence[Key]
    ) -> dict[str, list[Any]]:
        """Check every dimension value has a record; return implied-dimension column values.

        Records are checked once per distinct value; implied values are looked up per row.
        """
        implied: dict[str, list[Any]] = {}
        for element in dims:
            layout = self.dimensions.layouts[element]
            positions = [dims.index(d) for d in layout.key_dimensions]
            single = len(positions) == 1
            getter = operator.itemgetter(*positions)  # a value if single, else a tuple
            distinct = set(map(getter, keys))
            known = self.dimensions.require(
                conn, element, [(v,) for v in distinct] if single else distinct
            )
            for i, name in enumerate(layout.implied):
                if name in dims or name in implied:
                    continue
                sentinel = 0 if self.universe[name].key.type == "int" else ""
                value_of = {
                    (k[0] if single else k): sentinel if v[i] is None else v[i]
                    for k, v in known.items()
                }
                implied[name] = list(map(value_of.__getitem__, map(getter, keys)))
        return implied

    def make_rows(
        self,
        conn: sa.Connection,
        type_id: int,
        dims: tuple[str, ...],
        run_id: int,
        keys: Sequence[Key],
        ids: Sequence[uuid.UUID],
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Columns and row tuples of the ``dataset`` table, ready for :meth:`Database.bulk_insert`."""
        implied = self.implied_values(conn, dims, keys)
        columns = ["id", "dataset_type_id", "run_id", *dims, *implied]
        to_db = self._db.uuid_to_db
        if implied:
            extra = list(zip(*implied.values(), strict=True))
            rows = [
                (to_db(i), type_id, run_id, *k, *e)
                for i, k, e in zip(ids, keys, extra, strict=True)
            ]
        else:
            rows = [(to_db(i), type_id, run_id, *k) for i, k in zip(ids, keys, strict=True)]
        return columns, rows

    # -- inserting -----------------------------------------------------------------------
    def insert(
        self,
        conn: sa.Connection,
        dataset_type: DatasetType,
        type_id: int,
        run: CollectionRecord,
        data_ids: Iterable[Mapping[str, Any]],
        id_mode: Literal["unique", "deterministic"],
    ) -> list[DatasetRef]:
        """Insert new datasets of one type into one RUN; all or nothing."""
        dims = dataset_type.dimensions
        data_ids = list(data_ids)
        with paused_gc():
            keys = self.key_tuples(dims, data_ids)
            self._check_unique(dataset_type, run, dims, keys)
            if id_mode == "deterministic":
                ids = deterministic_ids(dataset_type.parent_name, dims, keys, run.name)
            elif id_mode == "unique":
                ids = random_uuids(len(keys))
            else:
                raise ValueError(f"id_mode must be 'unique' or 'deterministic', not {id_mode!r}.")
            columns, rows = self.make_rows(conn, type_id, dims, run.id, keys, ids)
            self.write_rows(
                conn,
                columns,
                rows,
                lambda: self.describe_conflicts(conn, type_id, dataset_type, run, keys),
            )
            return self.make_refs(dataset_type, run.name, ids, keys, data_ids)

    def make_refs(
        self,
        dataset_type: DatasetType,
        run: str,
        ids: Sequence[uuid.UUID],
        keys: Sequence[Key],
        data_ids: Sequence[Mapping[str, Any]],
    ) -> list[DatasetRef]:
        """Refs of inserted datasets; data IDs keep the records of given :class:`DataId` s."""
        dims = dataset_type.dimensions
        if all(type(d) is dict for d in data_ids):
            return [
                DatasetRef(
                    id=i,
                    dataset_type=dataset_type,
                    data_id=DataId(dict(zip(dims, k, strict=True))),
                    run=run,
                )
                for i, k in zip(ids, keys, strict=True)
            ]
        return [
            DatasetRef(
                id=i,
                dataset_type=dataset_type,
                data_id=DataId(
                    dict(zip(dims, k, strict=True)),
                    records=d.records if isinstance(d, DataId) else None,
                ),
                run=run,
            )
            for i, k, d in zip(ids, keys, data_ids, strict=True)
        ]

    def _check_unique(
        self,
        dataset_type: DatasetType,
        run: CollectionRecord,
        dims: tuple[str, ...],
        keys: Sequence[Key],
    ) -> None:
        if len(set(keys)) != len(keys):
            seen: set[Key] = set()
            dupes = [k for k in keys if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
            shown = "; ".join(repr(DataId(dict(zip(dims, k, strict=True)))) for k in dupes[:5])
            raise DatasetConflictError(
                f"The same data ID is given more than once for {dataset_type.name!r} in run "
                f"{run.name!r}: {shown}. Nothing was inserted."
            )

    def write_rows(
        self,
        conn: sa.Connection,
        columns: list[str],
        rows: Sequence[tuple[Any, ...]],
        describe: Callable[[], str],
    ) -> None:
        """Insert dataset rows in batches; turn a uniqueness violation into a clear error."""
        table = self._db.tables.dataset
        try:
            with conn.begin_nested():
                for batch in chunked(rows, BATCH):
                    self._db.bulk_insert(conn, table, columns, batch)
        except sa.exc.IntegrityError as err:
            raise DatasetConflictError(f"{describe()} Nothing was inserted.") from err

    def describe_conflicts(
        self,
        conn: sa.Connection,
        type_id: int,
        dataset_type: DatasetType,
        run: CollectionRecord,
        keys: Sequence[Key],
    ) -> str:
        """A message naming existing datasets that clash with ``keys`` in ``run``."""
        table = self._db.tables.dataset
        dims = dataset_type.dimensions
        columns = [table.c[d] for d in dims]
        found: list[str] = []
        for chunk in chunked(list(keys)):
            stmt = sa.select(table.c.id, *columns).where(
                table.c.run_id == run.id, table.c.dataset_type_id == type_id
            )
            if len(columns) > 1:
                stmt = stmt.where(sa.tuple_(*columns).in_(chunk))
            elif columns:  # else a type without dimensions: one dataset per run
                stmt = stmt.where(columns[0].in_([k[0] for k in chunk]))
            for row in conn.execute(stmt.limit(5)):
                found.append(f"{DataId(dict(zip(dims, row[1:], strict=True)))} (id {row[0]})")
            if len(found) >= 5:
                break
        what = "; ".join(found[:5]) or "(a concurrent writer, or an id already used)"
        return (
            f"Dataset(s) of type {dataset_type.name!r} already exist in run {run.name!r}: {what}."
        )

    def import_refs(
        self, conn: sa.Connection, refs: Sequence[DatasetRef], *, skip_existing: bool
    ) -> list[DatasetRef]:
        """Insert datasets whose ids were made elsewhere; all or nothing."""
        groups: dict[tuple[str, str], list[DatasetRef]] = {}
        for ref in refs:
            groups.setdefault((ref.dataset_type.parent_name, ref.run), []).append(ref)
        out: dict[uuid.UUID, DatasetRef] = {}
        with paused_gc():
            for group in groups.values():
                out.update(self._import_group(conn, group, skip_existing=skip_existing))
            return [out[r.id] for r in refs]

    def _standardize(
        self, dataset_type: DatasetType, run: str, refs: Sequence[DatasetRef]
    ) -> tuple[list[DatasetRef], list[Key]]:
        """Refs with the registered type and standardised data IDs, and their key tuples.

        A ref of the registered type whose data ID holds exactly the type's dimensions with
        well-typed values is kept as it is (the fast path of imports from workers).
        """
        dims = dataset_type.dimensions
        expected = tuple(self._key_types[d][0] for d in dims)
        getter = operator.itemgetter(*dims) if len(dims) > 1 else None
        same_type: set[int] = set()
        out: list[DatasetRef] = []
        keys: list[Key] = []
        for ref in refs:
            kind = ref.dataset_type
            if id(kind) not in same_type and kind == dataset_type:
                same_type.add(id(kind))
            if id(kind) in same_type and dims and len(ref.data_id) == len(dims):
                values = ref.data_id.to_dict()
                try:
                    key = getter(values) if getter is not None else (values[dims[0]],)
                except KeyError:
                    key = None
                if key is not None and tuple(map(type, key)) == expected:
                    out.append(ref)
                    keys.append(key)
                    continue
            key = self.key_tuple(dims, ref.data_id)
            data_id = DataId(dict(zip(dims, key, strict=True)), records=ref.data_id.records)
            out.append(DatasetRef(id=ref.id, dataset_type=dataset_type, data_id=data_id, run=run))
            keys.append(key)
        self._check_lengths(dims, keys)
        return out, keys

    def _import_group(
        self, conn: sa.Connection, group: list[DatasetRef], *, skip_existing: bool
    ) -> dict[uuid.UUID, DatasetRef]:
        from ..types import CollectionType

        type_id, registered = self.dataset_types.resolve(conn, group[0].dataset_type.parent_type())
        run = self.collections.get(conn, group[0].run, expected=CollectionType.RUN)
        dims = registered.dimensions
        wanted: dict[uuid.UUID, DatasetRef] = {}
        key_of: dict[uuid.UUID, Key] = {}
        for std, key in zip(*self._standardize(registered, run.name, group), strict=True):
            previous = wanted.setdefault(std.id, std)
            if previous is not std and previous != std:
                raise DatasetConflictError(
                    f"Dataset id {std.id} is given twice with different content: {previous} "
                    f"and {std}. Nothing was imported."
                )
            key_of[std.id] = key
        existing = self.fetch(conn, wanted) if skip_existing else {}
        for dataset_id, old in existing.items():
            new = wanted[dataset_id]
            if (old.dataset_type.name, old.run, old.data_id) != (
                new.dataset_type.name,
                new.run,
                new.data_id,
            ):
                raise DatasetConflictError(
                    f"Dataset id {dataset_id} already exists as {old.dataset_type.name} "
                    f"{old.data_id} in run {old.run!r}, not {new.dataset_type.name} {new.data_id} "
                    f"in run {new.run!r}. Nothing was imported."
                )
        todo = [i for i in wanted if i not in existing]
        keys = [key_of[i] for i in todo]
        self._check_unique(registered, run, dims, keys)
        columns, rows = self.make_rows(conn, type_id, dims, run.id, keys, todo)

        def describe() -> str:
            used = self.fetch(conn, todo)
            ids = (
                f" Id(s) already used: {', '.join(str(i) for i in list(used)[:5])}." if used else ""
            )
            return self.describe_conflicts(conn, type_id, registered, run, keys) + ids

        self.write_rows(conn, columns, rows, describe)
        return wanted

    # -- reading -------------------------------------------------------------------------
    def row_to_ref(
        self, conn: sa.Connection, row: Any, dataset_type: DatasetType | None = None
    ) -> DatasetRef:
        """The :class:`DatasetRef` of a row with ``id``, ``dataset_type_id``, ``run_id`` and dims."""
        if dataset_type is None:
            dataset_type = self.dataset_types.by_id(conn, row.dataset_type_id)
        mapping = row._mapping
        return DatasetRef(
            id=row.id,
            dataset_type=dataset_type,
            data_id=DataId({d: mapping[d] for d in dataset_type.dimensions}),
            run=self.collections.by_id(conn, row.run_id).name,
        )

    def ref_converter(
        self, dataset_type: DatasetType
    ) -> Callable[[sa.Connection, Any], DatasetRef]:
        """A fast row -> ref function for rows of ``(id, run_id, <dataset type dimensions>)``."""
        dims = dataset_type.dimensions
        runs: dict[int, str] = {}

        def convert(conn: sa.Connection, row: Any) -> DatasetRef:
            run = runs.get(row[1])
            if run is None:
                run = runs[row[1]] = self.collections.by_id(conn, row[1]).name
            return DatasetRef(
                id=row[0],
                dataset_type=dataset_type,
                data_id=DataId(dict(zip(dims, row[2:], strict=True))),
                run=run,
            )

        return convert

    def fetch(self, conn: sa.Connection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DatasetRef]:
        """Refs of the datasets with these ids (missing ones absent)."""
        table = self._db.tables.dataset
        found: dict[uuid.UUID, DatasetRef] = {}
        for chunk in chunked(list(set(ids))):
            for row in conn.execute(sa.select(table).where(table.c.id.in_(chunk))):
                found[row.id] = self.row_to_ref(conn, row)
        return found

    def require(self, conn: sa.Connection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DatasetRef]:
        """Like :meth:`fetch`, raising :class:`DatasetNotFoundError` for missing ids."""
        ids = list(ids)
        found = self.fetch(conn, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            shown = ", ".join(str(i) for i in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise DatasetNotFoundError(f"No dataset with id {shown}{more} in the registry.")
        return found

    # -- TAGGED collections --------------------------------------------------------------
    def associate(
        self, conn: sa.Connection, tagged: CollectionRecord, ids: Sequence[uuid.UUID]
    ) -> None:
        """Add datasets to a TAGGED collection (idempotent per dataset)."""
        self.require(conn, ids)
        dataset, tag = self._db.tables.dataset, self._db.tables.dataset_tagged
        dims = self._db.tables.dimension_columns
        stmt = self._db.insert_ignore(tag, index_elements=["collection_id", "dataset_id"])
        for chunk in chunked(list(dict.fromkeys(ids))):
            select = sa.select(
                sa.literal(tagged.id, sa.Integer),
                dataset.c.id,
                dataset.c.dataset_type_id,
                *[dataset.c[d] for d in dims],
            ).where(dataset.c.id.in_(chunk))
            try:
                with conn.begin_nested():
                    conn.execute(
                        stmt.from_select(
                            ["collection_id", "dataset_id", "dataset_type_id", *dims], select
                        )
                    )
            except sa.exc.IntegrityError as err:
                raise DatasetConflictError(
                    f"TAGGED collection {tagged.name!r} already holds another dataset of the same "
                    "dataset type and data ID as one of those given; disassociate it first."
                ) from err

    def disassociate(
        self, conn: sa.Connection, tagged: CollectionRecord, ids: Sequence[uuid.UUID]
    ) -> None:
        """Remove datasets from a TAGGED collection."""
        tag = self._db.tables.dataset_tagged
        for chunk in chunked(list(ids)):
            conn.execute(
                sa.delete(tag).where(tag.c.collection_id == tagged.id, tag.c.dataset_id.in_(chunk))
            )

    # -- removal -------------------------------------------------------------------------
    def _delete_dependents(
        self, conn: sa.Connection, condition: Callable[[sa.Column[Any]], Any]
    ) -> None:
        tables = self._db.tables
        for table in (tables.dataset_location, tables.dataset_tagged, tables.dataset_calibration):
            conn.execute(sa.delete(table).where(condition(table.c.dataset_id)))

    def remove(self, conn: sa.Connection, ids: Sequence[uuid.UUID]) -> None:
        """Delete datasets with their associations and locations."""
        self.require(conn, ids)
        dataset = self._db.tables.dataset
        for chunk in chunked(list(set(ids))):
            self._delete_dependents(conn, lambda c, chunk=chunk: c.in_(chunk))  # type: ignore[misc]  # mypy: lambda with defaults
            conn.execute(sa.delete(dataset).where(dataset.c.id.in_(chunk)))

    def remove_run(self, conn: sa.Connection, run: CollectionRecord) -> list[DatasetRef]:
        """Delete a RUN's datasets (with associations and locations) and the run itself."""
        self.collections.check_unreferenced(conn, run)
        dataset = self._db.tables.dataset
        rows = conn.execute(sa.select(dataset).where(dataset.c.run_id == run.id))
        refs = [self.row_to_ref(conn, row) for row in rows]
        in_run = sa.select(dataset.c.id).where(dataset.c.run_id == run.id)
        self._delete_dependents(conn, lambda c: c.in_(in_run))
        conn.execute(sa.delete(dataset).where(dataset.c.run_id == run.id))
        self.collections.delete(conn, run)
        logger.info("Removed run %s with %d dataset(s).", run.name, len(refs))
        return refs

    def count_in_run(self, conn: sa.Connection, run: CollectionRecord) -> int:
        """Number of datasets in a RUN."""
        dataset = self._db.tables.dataset
        stmt = sa.select(sa.func.count()).select_from(dataset).where(dataset.c.run_id == run.id)
        return int(conn.scalar(stmt) or 0)
