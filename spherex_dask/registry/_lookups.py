# SPDX-License-Identifier: BSD-3-Clause
"""Batched dataset lookup: :meth:`Registry.find_datasets` in a few set-based queries.

The distinct data IDs are sent in chunks as one derived table (see
:meth:`Database.key_table`) joined to each dataset table of the search path: one query per
collection type and chunk, whatever the number of data IDs.  Calibration rows are fetched for
the hull of the requested timespans and matched to each timespan in Python by bisection, with
the same preferences as :meth:`QueryEngine.find`.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..errors import QueryError
from ..types import CollectionType, DataId, DatasetRef, DatasetType, Timespan
from ._database import Database
from ._datasets import DatasetStore, Key, chunked
from ._queries import SearchPath

__all__ = ["KEY_CHUNK", "DatasetFinder"]

logger = logging.getLogger(__name__)

#: Distinct data IDs per query.
KEY_CHUNK = 5000

#: (rank in the search path, dataset id, run id) of a RUN or TAGGED match.
Match = tuple[int, Any, int]
#: A rank beyond any search path's.
_NO_RANK = 1 << 62


@dataclass(slots=True)
class _Ranges:
    """The validity ranges of one data ID in one CALIBRATION collection, sorted by begin."""

    begins: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    ids: list[tuple[Any, int]] = field(default_factory=list)

    def best(self, begin: int, end: int) -> tuple[Any, int] | None:
        """The range overlapping ``[begin, end)``: the one containing ``begin``, else the
        latest-starting one (ranges of one collection never overlap each other)."""
        j = bisect.bisect_left(self.begins, end) - 1
        if j < 0 or self.ends[j] <= begin:
            return None
        chosen = j
        while j >= 0 and self.ends[j] > begin:
            if self.begins[j] <= begin:
                return self.ids[j]
            j -= 1
        return self.ids[chosen]


class DatasetFinder:
    """Finds the datasets of many data IDs of one dataset type at once."""

    def __init__(self, db: Database, datasets: DatasetStore) -> None:
        self._db = db
        self._datasets = datasets

    def find(
        self,
        conn: sa.Connection,
        type_id: int,
        dataset_type: DatasetType,
        keys: Sequence[Key],
        timespans: Sequence[Timespan | None],
        path: SearchPath,
    ) -> list[DatasetRef | None]:
        """The first dataset of each key in the search path (timespans pick calibrations)."""
        if not keys:
            return []
        distinct = list(dict.fromkeys(keys))
        plain = self._plain_matches(conn, type_id, dataset_type, distinct, path)
        ranges: dict[Key, list[tuple[int, _Ranges]]] = {}
        if dataset_type.is_calibration and path.by_type[CollectionType.CALIBRATION]:
            spans = [t for t in timespans if t is not None]
            if len(spans) != len(timespans):
                raise QueryError(
                    f"Finding {dataset_type.name!r} in CALIBRATION collection(s) needs a "
                    "timespan for every data ID."
                )
            ranges = self._calibration_ranges(conn, type_id, dataset_type, distinct, path, spans)
        return self._choose(conn, dataset_type, keys, timespans, plain, ranges)

    def _choose(
        self,
        conn: sa.Connection,
        dataset_type: DatasetType,
        keys: Sequence[Key],
        timespans: Sequence[Timespan | None],
        plain: dict[Key, Match],
        ranges: dict[Key, list[tuple[int, _Ranges]]],
    ) -> list[DatasetRef | None]:
        refs: dict[Any, DatasetRef] = {}
        out: list[DatasetRef | None] = []
        no_match: Match = (_NO_RANK, None, 0)
        for key, timespan in zip(keys, timespans, strict=True):
            rank, dataset_id, run_id = plain.get(key, no_match)
            if key in ranges and timespan is not None:
                begin, end = timespan.begin_ns, timespan.end_ns
                for calib_rank, collection in ranges[key]:
                    if calib_rank > rank:
                        break
                    found = collection.best(begin, end)
                    if found is not None:
                        dataset_id, run_id = found
                        break
            if dataset_id is None:
                out.append(None)
                continue
            ref = refs.get(dataset_id)
            if ref is None:
                ref = refs[dataset_id] = self._ref(conn, dataset_type, key, dataset_id, run_id)
            out.append(ref)
        return out

    def _ref(
        self, conn: sa.Connection, dataset_type: DatasetType, key: Key, dataset_id: Any, run_id: int
    ) -> DatasetRef:
        return DatasetRef(
            id=dataset_id,
            dataset_type=dataset_type,
            data_id=DataId(dict(zip(dataset_type.dimensions, key, strict=True))),
            run=self._datasets.collections.by_id(conn, run_id).name,
        )

    # -- queries -----------------------------------------------------------------------------
    def _rows(
        self,
        conn: sa.Connection,
        table: sa.Table,
        dimensions: tuple[str, ...],
        keys: Sequence[Key],
        select: sa.Select[Any],
    ) -> list[sa.Row[*tuple[Any, ...]]]:
        """Rows of ``select`` (whose FROM includes ``table``) for ``keys``, chunk by chunk."""
        if not dimensions:
            return list(conn.execute(select))
        rows: list[sa.Row[*tuple[Any, ...]]] = []
        columns = [table.c[d] for d in dimensions]
        for chunk in chunked(keys, KEY_CHUNK):
            wanted = self._db.key_table(columns, chunk)
            on = sa.and_(*[c == wanted.c[c.name] for c in columns])
            rows += conn.execute(select.join(wanted, on))
        return rows

    def _plain_matches(
        self,
        conn: sa.Connection,
        type_id: int,
        dataset_type: DatasetType,
        keys: Sequence[Key],
        path: SearchPath,
    ) -> dict[Key, Match]:
        """The best RUN or TAGGED match of each key: (rank, dataset id, run id)."""
        tables = self._db.tables
        dims = dataset_type.dimensions
        best: dict[Key, Match] = {}
        for kind in (CollectionType.RUN, CollectionType.TAGGED):
            ids = path.by_type[kind]
            if not ids:
                continue
            if kind is CollectionType.RUN:
                table = tables.dataset
                select = sa.select(
                    table.c.id, table.c.run_id.label("collection_id"), table.c.run_id
                )
                collection_column = table.c.run_id
            else:
                table = tables.dataset_tagged
                collection_column = table.c.collection_id
                select = sa.select(
                    table.c.dataset_id, collection_column, tables.dataset.c.run_id
                ).join(tables.dataset, tables.dataset.c.id == table.c.dataset_id)
            select = select.add_columns(*[table.c[d] for d in dims]).where(
                table.c.dataset_type_id == type_id, collection_column.in_(ids)
            )
            for row in self._rows(conn, table, dims, keys, select):
                key, match = tuple(row[3:]), (path.rank[row[1]], row[0], row[2])
                if key not in best or match < best[key]:
                    best[key] = match
        return best

    def _calibration_ranges(
        self,
        conn: sa.Connection,
        type_id: int,
        dataset_type: DatasetType,
        keys: Sequence[Key],
        path: SearchPath,
        timespans: Sequence[Timespan],
    ) -> dict[Key, list[tuple[int, _Ranges]]]:
        """Per key, the validity ranges overlapping any of ``timespans``, by collection rank."""
        tables = self._db.tables
        calib = tables.dataset_calibration
        dims = dataset_type.dimensions
        begin = min(t.begin_ns for t in timespans)
        end = max(t.end_ns for t in timespans)
        select = (
            sa.select(
                calib.c.dataset_id,
                calib.c.collection_id,
                tables.dataset.c.run_id,
                calib.c.validity_begin,
                calib.c.validity_end,
                *[calib.c[d] for d in dims],
            )
            .join(tables.dataset, tables.dataset.c.id == calib.c.dataset_id)
            .where(
                calib.c.dataset_type_id == type_id,
                calib.c.collection_id.in_(path.by_type[CollectionType.CALIBRATION]),
                calib.c.validity_begin < end,
                calib.c.validity_end > begin,
            )
        )
        found: dict[Key, dict[int, list[tuple[int, int, Any, int]]]] = {}
        for row in self._rows(conn, calib, dims, keys, select):
            by_rank = found.setdefault(tuple(row[5:]), {})
            by_rank.setdefault(path.rank[row[1]], []).append((row[3], row[4], row[0], row[2]))
        out: dict[Key, list[tuple[int, _Ranges]]] = {}
        for key, by_rank in found.items():
            out[key] = []
            for rank in sorted(by_rank):
                ranges = _Ranges()
                for b, e, dataset_id, run_id in sorted(by_rank[rank], key=lambda r: r[0]):
                    ranges.begins.append(b)
                    ranges.ends.append(e)
                    ranges.ids.append((dataset_id, run_id))
                out[key].append((rank, ranges))
        return out
