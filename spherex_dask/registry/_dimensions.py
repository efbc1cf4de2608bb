# SPDX-License-Identifier: BSD-3-Clause
"""Dimension records: insert, sync, lookup, validation of data-ID values and data-ID expansion."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..dimensions import DimensionUniverse
from ..errors import DataIdError, DataIdValueError, RecordConflictError
from ..types import DataId, DimensionRecord
from ._database import Database
from ._records import ElementLayout, describe_key, record_to_row, row_to_record

__all__ = ["DimensionStore"]

logger = logging.getLogger(__name__)

#: Maximum number of keys per ``IN`` lookup.
CHUNK = 500
#: Entries kept per element in the caches of known keys and records.
_CACHE_LIMIT = 200_000


class DimensionStore:
    """Reads and writes the dimension-element tables of one registry.

    Dimension records are never updated or deleted, so known keys and records are cached.
    """

    def __init__(self, db: Database, universe: DimensionUniverse) -> None:
        self._db = db
        self.universe = universe
        self.layouts = {name: ElementLayout(universe, name) for name in universe.elements}
        self._implied: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
        self._records: dict[str, dict[tuple[Any, ...], DimensionRecord]] = {}
        db.on_rollback(self.clear_cache)

    def clear_cache(self) -> None:
        """Forget every cached key and record."""
        self._implied.clear()
        self._records.clear()

    def layout(self, element: str) -> ElementLayout:
        """The table layout of ``element``; unknown names raise :class:`DataIdError`."""
        if element not in self.layouts:
            self.universe[element]  # raises DataIdError listing the dimensions
        return self.layouts[element]

    # -- fetching ------------------------------------------------------------------------
    def fetch_rows(
        self, conn: sa.Connection, element: str, keys: Iterable[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], sa.RowMapping]:
        """Rows of ``element`` for primary-key tuples, keyed by that tuple (missing ones absent)."""
        layout = self.layouts[element]
        found: dict[tuple[Any, ...], sa.RowMapping] = {}
        for row in self._select_keys(conn, element, keys, self._db.tables.elements[element].c):
            mapping = row._mapping
            found[tuple(mapping[c] for c in layout.key_columns)] = mapping
        return found

    def _select_keys(
        self,
        conn: sa.Connection,
        element: str,
        keys: Iterable[tuple[Any, ...]],
        columns: Iterable[sa.ColumnElement[Any]],
    ) -> Iterator[sa.Row[Any]]:
        """``columns`` of the rows of ``element`` with these primary-key tuples.

        Keys are grouped by their required-dimension values so that each query is
        ``instrument = ? AND id IN (...)``, an index scan on both backends.
        """
        layout = self.layouts[element]
        table = self._db.tables.elements[element]
        prefix_columns = [table.c[c] for c in layout.required]
        key_column = table.c[layout.key_name]
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for key in keys:
            groups.setdefault(key[:-1], []).append(key[-1])
        for prefix, values in groups.items():
            same = [c == v for c, v in zip(prefix_columns, prefix, strict=True)]
            for start in range(0, len(values), CHUNK):
                chunk = values[start : start + CHUNK]
                stmt = sa.select(*columns).where(*same, self._db.in_values(key_column, chunk))
                yield from conn.execute(stmt).all()

    def get_record(
        self, conn: sa.Connection, element: str, key: tuple[Any, ...]
    ) -> DimensionRecord | None:
        """The record of ``element`` with primary key ``key``, or ``None`` if there is none."""
        cache = self._records.setdefault(element, {})
        record = cache.get(key)
        if record is None:
            row = self.fetch_rows(conn, element, [key]).get(key)
            if row is None:
                return None
            record = row_to_record(self.layouts[element], row)
            if len(cache) > _CACHE_LIMIT:
                cache.clear()
            cache[key] = record
        return record

    def prefetch_records(
        self, conn: sa.Connection, element: str, keys: Iterable[tuple[Any, ...]]
    ) -> None:
        """Load the records of ``keys`` into the cache :meth:`get_record` reads, in few queries."""
        cache = self._records.setdefault(element, {})
        missing = [k for k in set(keys) if k not in cache]
        if not missing:
            return
        if len(cache) + len(missing) > _CACHE_LIMIT:
            cache.clear()
        layout = self.layouts[element]
        for key, row in self.fetch_rows(conn, element, missing).items():
            cache[key] = row_to_record(layout, row)

    # -- writing -------------------------------------------------------------------------
    def prepare(
        self, element: str, records: Iterable[Mapping[str, Any] | DimensionRecord]
    ) -> list[dict[str, Any]]:
        """Validate records (names, key presence, value types) and return their table rows."""
        layout = self.layout(element)
        return [record_to_row(layout, r) for r in records]

    def check_references(
        self, conn: sa.Connection, element: str, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Check that the required and implied dimension values of ``rows`` have records."""
        layout = self.layouts[element]
        for name in (*self.universe[element].requires, *layout.implied):
            target = self.layouts[name]
            if not set(target.required) <= set(layout.key_columns):
                continue
            columns = (*target.required, name)
            keys = {tuple(r[c] for c in columns) for r in rows if r.get(name) is not None}
            self.require(conn, name, keys)

    def require(
        self, conn: sa.Connection, element: str, keys: Iterable[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        """Check that records exist for ``keys`` and return their implied-dimension values.

        Raises
        ------
        DataIdValueError
            Naming the dimension and the value(s) that have no record.
        """
        layout = self.layouts[element]
        known = self._implied.setdefault(element, {})
        wanted = set(keys)
        missing = [k for k in wanted if k not in known]
        if missing:
            table = self._db.tables.elements[element]
            columns = [table.c[c] for c in (*layout.key_columns, *layout.implied)]
            size = len(layout.key_columns)
            rows = {
                tuple(row[:size]): tuple(row[size:])
                for row in self._select_keys(conn, element, missing, columns)
            }
            absent = [k for k in missing if k not in rows]
            if absent:
                shown = "; ".join(describe_key(layout, k) for k in sorted(absent, key=repr)[:5])
                more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
                raise DataIdValueError(
                    f"No {element} record for {shown}{more}. Insert the dimension records first "
                    f"(insert_dimension_records / sync_dimension_records on {element!r})."
                )
            if len(known) > _CACHE_LIMIT:
                known.clear()
            known.update(rows)
        return {k: known[k] for k in wanted}

    def insert(
        self,
        conn: sa.Connection,
        element: str,
        rows: list[dict[str, Any]],
        *,
        skip_existing: bool = False,
    ) -> int:
        """Insert prepared rows; return how many were new."""
        if not rows:
            return 0
        self.check_references(conn, element, rows)
        layout = self.layouts[element]
        table = self._db.tables.elements[element]
        existing = self.fetch_rows(
            conn, element, [tuple(r[c] for c in layout.key_columns) for r in rows]
        )
        if existing and not skip_existing:
            shown = "; ".join(describe_key(layout, k) for k in list(existing)[:5])
            raise RecordConflictError(
                f"{element} record(s) already exist for {shown}; use skip_existing=True or "
                "sync_dimension_records to ignore identical records."
            )
        new = [r for r in rows if tuple(r[c] for c in layout.key_columns) not in existing]
        if new:
            try:
                with conn.begin_nested():
                    conn.execute(
                        self._db.insert_ignore(table, index_elements=list(layout.key_columns)), new
                    )
            except sa.exc.IntegrityError as err:
                raise RecordConflictError(
                    f"Could not insert {element} records: {err.orig}. An alternate key "
                    f"({self.universe[element].alternate_key}) may already be used by another record."
                ) from err
        return len(new)

    def sync(self, conn: sa.Connection, element: str, rows: list[dict[str, Any]]) -> int:
        """Insert missing rows, verify existing ones are identical; return how many were new.

        Raises
        ------
        RecordConflictError
            Naming the differing fields with both values.
        """
        layout = self.layouts[element]
        keyed = {tuple(r[c] for c in layout.key_columns): r for r in rows}
        existing = self.fetch_rows(conn, element, keyed)
        for key, old in existing.items():
            new = keyed[key]
            diffs = [
                f"{c}: existing {old[c]!r} != given {new[c]!r}"
                for c in layout.columns
                if old[c] != new[c]
            ]
            if diffs:
                raise RecordConflictError(
                    f"{element} record {describe_key(layout, key)} differs from the one in the "
                    f"registry: {'; '.join(diffs)}."
                )
        new_rows = [r for k, r in keyed.items() if k not in existing]
        return self.insert(conn, element, new_rows, skip_existing=True)

    # -- data IDs ------------------------------------------------------------------------
    def _resolve_alternate(
        self, conn: sa.Connection, element: str, field: str, value: Any, given: Mapping[str, Any]
    ) -> Any:
        layout = self.layout(element)
        alternate = self.universe[element].alternate_key
        if field not in (alternate, layout.key_name):
            raise DataIdError(
                f"{element}.{field} cannot identify a {element}: use {element!r} "
                f"or {element}.{alternate or layout.key_name}."
            )
        if field == layout.key_name:
            return value
        table = self._db.tables.elements[element]
        stmt = sa.select(table.c[layout.key_name], *[table.c[r] for r in layout.required]).where(
            table.c[field] == value
        )
        for r in layout.required:
            if r in given:
                stmt = stmt.where(table.c[r] == self.universe.coerce_value(r, given[r]))
        rows = conn.execute(stmt).all()
        if not rows:
            raise DataIdValueError(f"No {element} record with {field}={value!r}.")
        if len(rows) > 1:
            raise DataIdError(
                f"{element}.{field}={value!r} is ambiguous; add {', '.join(layout.required)} "
                "to the data ID."
            )
        return rows[0][0]

    def resolve_alternates(self, conn: sa.Connection, values: Mapping[str, Any]) -> dict[str, Any]:
        """Replace ``element.field`` keys and alternate-key values by the element's key value."""
        out = {k: v for k, v in values.items() if "." not in k}
        for name, value in values.items():
            element, _, field = name.partition(".")
            if field:
                out[element] = self._resolve_alternate(conn, element, field, value, out)
            elif self.is_alternate_value(element, value):
                alternate = self.universe[element].alternate_key
                assert alternate is not None
                out[element] = self._resolve_alternate(conn, element, alternate, value, out)
        return out

    def is_alternate_value(self, element: str, value: Any) -> bool:
        if element not in self.universe or self.universe[element].alternate_key is None:
            return False
        if self.universe[element].key.type != "int" or not isinstance(value, str):
            return False
        return not value.strip().lstrip("-").isdigit()

    def expand(
        self, conn: sa.Connection, values: Mapping[str, Any], dimensions: Iterable[str] | None
    ) -> DataId:
        """Standardise a data ID, fill implied dimensions and attach records."""
        return self._attach_all(conn, self._standardize(conn, values, dimensions), dimensions)

    def _standardize(
        self, conn: sa.Connection, values: Mapping[str, Any], dimensions: Iterable[str] | None
    ) -> dict[str, Any]:
        resolved = self.resolve_alternates(conn, values)
        return self.universe.standardize_data_id(resolved, dimensions=dimensions).to_dict()

    def _attach_all(
        self, conn: sa.Connection, out: dict[str, Any], dimensions: Iterable[str] | None
    ) -> DataId:
        """Fill implied dimensions of a standardised data ID and attach its records."""
        required = self.universe.sorted(out if dimensions is None else dimensions)
        records: dict[str, DimensionRecord] = {}
        for element in required:
            self._attach(conn, element, out, records)
        for element in self.universe.implied(required):
            if element in out:
                self._attach(conn, element, out, records)
        return DataId(out, records=records)

    def prefetch_for(
        self, conn: sa.Connection, data_ids: Iterable[Mapping[str, Any]], elements: Iterable[str]
    ) -> None:
        """Fetch into the cache the records of ``elements`` that these data IDs key fully, in
        few queries (one per required-dimension prefix and 500 keys)."""
        data_ids = list(data_ids)
        for element in elements:
            dims = self.layouts[element].key_dimensions
            keys = {
                tuple(self.universe.coerce_value(d, v[d]) for d in dims)
                for v in data_ids
                if all(d in v for d in dims)
            }
            if keys:
                self.prefetch_records(conn, element, keys)

    def expand_many(
        self,
        conn: sa.Connection,
        items: Iterable[Mapping[str, Any]],
        dimensions: Iterable[str] | None,
    ) -> list[DataId]:
        """:meth:`expand` for many data IDs, fetching the records of each element in few
        queries first (:meth:`prefetch_for`), not one per data ID."""
        dims = None if dimensions is None else tuple(dimensions)
        standardized = [self._standardize(conn, values, dims) for values in items]
        elements = {e for s in standardized for e in s if e in self.layouts}
        self.prefetch_for(conn, standardized, self.universe.sorted(elements))
        return [self._attach_all(conn, values, dims) for values in standardized]

    def _attach(
        self,
        conn: sa.Connection,
        element: str,
        out: dict[str, Any],
        records: dict[str, DimensionRecord],
    ) -> None:
        layout = self.layouts[element]
        key = tuple(out[d] for d in layout.key_dimensions)
        record = self.get_record(conn, element, key)
        if record is None:
            raise DataIdValueError(
                f"Data ID value {element}={out[element]!r} has no dimension record "
                f"({describe_key(layout, key)}); list the known values with `spherex-dask "
                f"query-dimension-records REPO {element}` (Registry.query_dimension_records)."
            )
        records[element] = record
        for implied in layout.implied:
            value = record.values.get(implied)
            if value is None:
                continue
            if implied in out and out[implied] != value:
                raise DataIdValueError(
                    f"Data ID gives {implied}={out[implied]!r} but the {element} record "
                    f"{describe_key(layout, key)} has {implied}={value!r}."
                )
            out[implied] = value
