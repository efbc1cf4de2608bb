# SPDX-License-Identifier: BSD-3-Clause
"""Query builders: dimension records, data IDs, dataset search (find-first) and lookup.

Builders return :class:`sqlalchemy.Select` objects; the registry streams their rows with
``yield_per`` (a server-side cursor on PostgreSQL), so results are never materialised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa

from ..errors import DataIdError, QueryError
from ..types import CollectionType, DataId, DatasetRef, DatasetType, DimensionRecord, Timespan
from ._collections import CollectionRecord
from ._database import Database
from ._datasets import DatasetStore
from ._records import row_to_record
from ._resolver import DimensionResolver

__all__ = ["QueryEngine", "SearchPath"]

logger = logging.getLogger(__name__)


class SearchPath:
    """A flattened collection search path split by collection type, with ranks."""

    def __init__(self, records: Sequence[CollectionRecord]) -> None:
        self.records = list(records)
        self.rank = {r.id: i for i, r in enumerate(self.records)}
        self.by_type: dict[CollectionType, list[int]] = {t: [] for t in CollectionType}
        for record in self.records:
            self.by_type[record.type].append(record.id)

    def rank_of(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        """A SQL expression giving the rank of the collection id in ``column``."""
        if len(self.rank) == 1:
            return sa.literal(0, sa.Integer)
        return sa.case(self.rank, value=column, else_=len(self.rank))


class QueryEngine:
    """Builds and runs the registry's read queries."""

    def __init__(self, db: Database, datasets: DatasetStore) -> None:
        self._db = db
        self._datasets = datasets
        self._dimensions = datasets.dimensions
        self.universe = datasets.universe
        self._find_statements: dict[tuple[CollectionType, tuple[str, ...]], sa.Select[Any]] = {}

    def resolver(
        self,
        key_columns: Mapping[str, sa.ColumnElement[Any]],
        tables_in_from: Mapping[str, sa.FromClause] | None = None,
    ) -> DimensionResolver:
        """A name resolver for a query whose FROM clause holds ``key_columns``."""
        return DimensionResolver(
            self.universe, self._db.tables, self._dimensions.layouts, key_columns, tables_in_from
        )

    # -- dimension records ----------------------------------------------------------------
    def dimension_records(
        self,
        element: str,
        *,
        where: str,
        bind: Mapping[str, Any] | None,
        data_id: Mapping[str, Any] | None,
    ) -> Iterator[DimensionRecord]:
        """Stream the records of ``element`` matching ``where`` and ``data_id``."""
        layout = self._dimensions.layout(element)
        table = self._db.tables.elements[element]
        keys = {
            d: table.c[c] for c, d in zip(layout.key_columns, layout.key_dimensions, strict=True)
        }
        keys.update({i: table.c[i] for i in layout.implied})
        resolver = self.resolver(keys, {element: table})
        conditions = resolver.where(where, bind, data_id)
        stmt = (
            sa.select(table)
            .select_from(resolver.apply_joins(table))
            .where(*conditions)
            .order_by(*[table.c[c] for c in layout.key_columns])
        )
        return self._db.stream(stmt, lambda _, row: row_to_record(layout, row._mapping))

    # -- data IDs -------------------------------------------------------------------------
    def data_id_select(
        self, dimensions: Iterable[str]
    ) -> tuple[tuple[str, ...], DimensionResolver, sa.FromClause]:
        """The FROM clause enumerating the data IDs of ``dimensions`` and its resolver.

        One table is joined per "leaf" dimension (one no other requested dimension requires
        or implies).  A requested implied dimension (``planning_period`` with ``exposure``)
        takes its value from the implying element's column, never from a join of its own
        table, which would relate it to nothing but the instrument.
        """
        dims = self.universe.sorted(dimensions)
        if not dims:
            raise DataIdError("query_data_ids needs at least one dimension.")
        required = {
            r for d in dims for r in self.universe.sorted(self.universe[d].requires) if r != d
        }
        implied = {i: d for d in dims for i in self.universe[d].implies if i in dims}
        keys: dict[str, sa.ColumnElement[Any]] = {}
        in_from: dict[str, sa.FromClause] = {}
        from_clause: sa.FromClause | None = None
        for leaf in [d for d in dims if d not in required and d not in implied]:
            from_clause = self._join_element(from_clause, leaf, keys, in_from, dims)
        for name, source in implied.items():
            if name not in keys:
                if source not in in_from:
                    from_clause = self._join_element(from_clause, source, keys, in_from, dims)
                keys[name] = in_from[source].c[name]
        assert from_clause is not None
        return dims, self.resolver(keys, in_from), from_clause

    def _join_element(
        self,
        from_clause: sa.FromClause | None,
        element: str,
        keys: dict[str, sa.ColumnElement[Any]],
        in_from: dict[str, sa.FromClause],
        dims: tuple[str, ...],
    ) -> sa.FromClause:
        """Join ``element``'s table on the key values already in ``keys``; record its columns."""
        layout = self._dimensions.layouts[element]
        table = self._db.tables.elements[element]
        on = [
            table.c[c] == keys[d]
            for c, d in zip(layout.key_columns, layout.key_dimensions, strict=True)
            if d in keys
        ]
        on += [table.c[i] == keys[i] for i in layout.implied if i in dims and i in keys]
        for c, d in zip(layout.key_columns, layout.key_dimensions, strict=True):
            keys.setdefault(d, table.c[c])
        for i in layout.implied:
            keys.setdefault(i, table.c[i])
        in_from[element] = table
        if from_clause is None:
            return table
        return from_clause.join(table, sa.and_(sa.true(), *on))

    def data_ids(
        self,
        dimensions: Iterable[str],
        *,
        where: str,
        bind: Mapping[str, Any] | None,
        data_id: Mapping[str, Any] | None,
        datasets: Sequence[tuple[int, DatasetType]],
        path: SearchPath | None,
    ) -> Iterator[DataId]:
        """Stream the distinct data IDs of ``dimensions`` satisfying the constraints."""
        dims, resolver, from_clause = self.data_id_select(dimensions)
        conditions = resolver.where(where, bind, data_id)
        implied = {i for d in dims for i in self.universe[d].implies if i in dims}
        conditions += [resolver.key_columns[i].is_not(None) for i in sorted(implied)]
        for type_id, dataset_type in datasets:
            assert path is not None
            # Implied values (planning_period) are stored in the dataset tables too.
            stored = (*dataset_type.dimensions, *self.universe.implied(dataset_type.dimensions))
            shared = [d for d in stored if d in dims]
            source = self.dataset_source(type_id, path, dataset_type, with_rank=False).subquery()
            conditions.append(
                sa.exists().where(*[source.c[d] == resolver.key_columns[d] for d in shared])
            )
        columns = [resolver.key_columns[d].label(d) for d in dims]
        stmt = (
            sa.select(*columns)
            .select_from(resolver.apply_joins(from_clause))
            .where(*conditions)
            .distinct()
            .order_by(*[sa.literal_column(d) for d in dims])
        )
        return self._db.stream(stmt, lambda _, row: DataId(dict(zip(dims, row, strict=True))))

    # -- datasets -------------------------------------------------------------------------
    def dataset_source(
        self, type_id: int, path: SearchPath, dataset_type: DatasetType, *, with_rank: bool
    ) -> sa.Select[Any]:
        """``(dataset_id, [rank,] <dimension columns>)`` of one type in the search path."""
        tables = self._db.tables
        dims = tables.dimension_columns
        parts = []
        sources = [
            (tables.dataset, tables.dataset.c.run_id, tables.dataset.c.id, CollectionType.RUN),
            (
                tables.dataset_tagged,
                tables.dataset_tagged.c.collection_id,
                tables.dataset_tagged.c.dataset_id,
                CollectionType.TAGGED,
            ),
        ]
        if dataset_type.is_calibration:
            calib = tables.dataset_calibration
            sources.append(
                (calib, calib.c.collection_id, calib.c.dataset_id, CollectionType.CALIBRATION)
            )
        for table, collection_column, id_column, kind in sources:
            ids = path.by_type[kind]
            if not ids:
                continue
            columns = [id_column.label("dataset_id"), *[table.c[d] for d in dims]]
            if with_rank:
                columns.append(path.rank_of(collection_column).label("rank"))
            parts.append(
                sa.select(*columns).where(
                    table.c.dataset_type_id == type_id, collection_column.in_(ids)
                )
            )
        if not parts:
            empty = sa.select(
                sa.literal(None).label("dataset_id"), *[sa.literal(None).label(d) for d in dims]
            ).where(sa.false())
            return cast("sa.Select[Any]", empty)
        return parts[0] if len(parts) == 1 else sa.union_all(*parts)  # type: ignore[return-value]

    def dataset_select(
        self,
        type_id: int,
        dataset_type: DatasetType,
        path: SearchPath,
        *,
        where: str,
        bind: Mapping[str, Any] | None,
        data_id: Mapping[str, Any] | None,
        find_first: bool,
    ) -> sa.Select[Any]:
        """The query for the datasets of one type in the search path (rows of ``dataset``)."""
        if find_first and path.by_type[CollectionType.CALIBRATION] and dataset_type.is_calibration:
            raise QueryError(
                "find_first=True cannot choose between validity ranges of CALIBRATION "
                f"collections ({', '.join(r.name for r in path.records if r.type is CollectionType.CALIBRATION)}); "
                "use find_dataset with a timespan, or find_first=False."
            )
        run_only = not any(
            path.by_type[t] for t in (CollectionType.TAGGED, CollectionType.CALIBRATION)
        )
        if run_only and (not find_first or len(path.by_type[CollectionType.RUN]) <= 1):
            stmt = self._run_select(type_id, dataset_type, path, where, bind, data_id)
        else:
            stmt = self._general_select(
                type_id, dataset_type, path, where, bind, data_id, find_first
            )
        return stmt

    def ref_columns(self, dataset_type: DatasetType) -> list[sa.ColumnElement[Any]]:
        """The columns :meth:`DatasetStore.ref_converter` expects: id, run_id, dimensions."""
        dataset = self._db.tables.dataset
        return [dataset.c.id, dataset.c.run_id, *[dataset.c[d] for d in dataset_type.dimensions]]

    def _keys(
        self, table: sa.FromClause, dataset_type: DatasetType
    ) -> dict[str, sa.ColumnElement[Any]]:
        keys: dict[str, sa.ColumnElement[Any]] = {d: table.c[d] for d in dataset_type.dimensions}
        keys.update({i: table.c[i] for i in self.universe.implied(dataset_type.dimensions)})
        return keys

    def _run_select(
        self,
        type_id: int,
        dataset_type: DatasetType,
        path: SearchPath,
        where: str,
        bind: Any,
        data_id: Any,
    ) -> sa.Select[Any]:
        dataset = self._db.tables.dataset
        resolver = self.resolver(self._keys(dataset, dataset_type))
        conditions = resolver.where(where, bind, data_id)
        runs = path.by_type[CollectionType.RUN]
        run_condition = (
            dataset.c.run_id == runs[0] if len(runs) == 1 else dataset.c.run_id.in_(runs)
        )
        return (
            sa.select(*self.ref_columns(dataset_type))
            .select_from(resolver.apply_joins(dataset))
            .where(dataset.c.dataset_type_id == type_id, run_condition, *conditions)
        )

    def _general_select(
        self,
        type_id: int,
        dataset_type: DatasetType,
        path: SearchPath,
        where: str,
        bind: Any,
        data_id: Any,
        find_first: bool,
    ) -> sa.Select[Any]:
        dataset = self._db.tables.dataset
        source = self.dataset_source(type_id, path, dataset_type, with_rank=find_first).subquery(
            "source"
        )
        if find_first:
            number = sa.func.row_number().over(
                partition_by=[source.c[d] for d in dataset_type.dimensions], order_by=source.c.rank
            )
            ranked = sa.select(source.c.dataset_id, number.label("n")).subquery("ranked")
            chosen = sa.select(ranked.c.dataset_id).where(ranked.c.n == 1)
        else:
            chosen = sa.select(source.c.dataset_id)
        resolver = self.resolver(self._keys(dataset, dataset_type))
        conditions = resolver.where(where, bind, data_id)
        return (
            sa.select(*self.ref_columns(dataset_type))
            .select_from(resolver.apply_joins(dataset))
            .where(dataset.c.id.in_(chosen), *conditions)
        )

    # -- find_dataset ---------------------------------------------------------------------
    def _find_statement(self, kind: CollectionType, dims: tuple[str, ...]) -> sa.Select[Any]:
        """The query of :meth:`find` in collections of one type (built once, with parameters
        ``type_id``, ``ids``, ``k_<dimension>`` and, for calibrations, ``begin``/``end``):
        rows of dataset id, collection id, run id (and validity start for calibrations)."""
        cached = self._find_statements.get((kind, dims))
        if cached is not None:
            return cached
        tables = self._db.tables
        if kind is CollectionType.RUN:
            table, collection_column, id_column = (
                tables.dataset,
                tables.dataset.c.run_id,
                tables.dataset.c.id,
            )
            stmt: sa.Select[Any] = sa.select(id_column, collection_column, table.c.run_id)
        else:
            table = (
                tables.dataset_tagged
                if kind is CollectionType.TAGGED
                else tables.dataset_calibration
            )
            collection_column, id_column = table.c.collection_id, table.c.dataset_id
            stmt = sa.select(id_column, collection_column, tables.dataset.c.run_id).join_from(
                table, tables.dataset, tables.dataset.c.id == id_column
            )
        stmt = stmt.where(
            table.c.dataset_type_id == sa.bindparam("type_id"),
            collection_column.in_(sa.bindparam("ids", expanding=True)),
            *[table.c[d] == sa.bindparam(f"k_{d}") for d in dims],
        )
        if kind is CollectionType.CALIBRATION:
            stmt = stmt.add_columns(table.c.validity_begin).where(
                table.c.validity_begin < sa.bindparam("end"),
                table.c.validity_end > sa.bindparam("begin"),
            )
        self._find_statements[(kind, dims)] = stmt
        return stmt

    def find(
        self,
        conn: sa.Connection,
        type_id: int,
        dataset_type: DatasetType,
        key: tuple[Any, ...],
        path: SearchPath,
        timespan: Timespan | None,
    ) -> DatasetRef | None:
        """The first dataset of ``key`` in the search path (a timespan picks calibrations)."""
        dims = dataset_type.dimensions
        best: tuple[tuple[int, int, int], Any, int] | None = None
        for kind in CollectionType:
            ids = path.by_type[kind]
            if not ids or (kind is CollectionType.CALIBRATION and not dataset_type.is_calibration):
                continue
            if kind is CollectionType.CALIBRATION and timespan is None:
                raise QueryError(
                    f"Finding {dataset_type.name!r} in CALIBRATION collection(s) needs a "
                    "timespan, or a data ID with a temporal dimension (e.g. exposure)."
                )
            stmt = self._find_statement(kind, dims)
            values: dict[str, Any] = {"type_id": type_id, "ids": list(ids)}
            values.update({f"k_{d}": v for d, v in zip(dims, key, strict=True)})
            if timespan is not None and kind is CollectionType.CALIBRATION:
                values.update(begin=timespan.begin_ns, end=timespan.end_ns)
            for row in conn.execute(stmt, values):
                preference = 0
                if kind is CollectionType.CALIBRATION and timespan is not None:
                    # Prefer the range containing the timespan's start, then the latest start.
                    preference = 0 if row[3] <= timespan.begin_ns else 1
                    order = (path.rank[row[1]], preference, -row[3])
                else:
                    order = (path.rank[row[1]], 0, 0)
                if best is None or order < best[0]:
                    best = (order, row[0], row[2])
        if best is None:
            return None
        return DatasetRef(
            id=best[1],
            dataset_type=dataset_type,
            data_id=DataId(dict(zip(dims, key, strict=True))),
            run=self._datasets.collections.by_id(conn, best[2]).name,
        )
