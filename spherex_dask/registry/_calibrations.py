# SPDX-License-Identifier: BSD-3-Clause
"""CALIBRATION collections: certify datasets with validity ranges, decertify time ranges.

Overlaps are checked inside the certifying transaction after locking the collection's row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write transactions are already exclusive), so
the same code is correct on both backends without exclusion constraints.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..errors import CalibrationConflictError, DatasetTypeError
from ..types import DataId, DatasetRef, DatasetType, Timespan
from ._collections import CollectionRecord
from ._database import Database
from ._datasets import DatasetStore, chunked

__all__ = ["CalibrationStore"]

logger = logging.getLogger(__name__)


class CalibrationStore:
    """Reads and writes the ``dataset_calibration`` table."""

    def __init__(self, db: Database, datasets: DatasetStore) -> None:
        self._db = db
        self._datasets = datasets

    def _lock(self, conn: sa.Connection, collection: CollectionRecord) -> None:
        table = self._db.tables.collection
        conn.execute(sa.select(table.c.id).where(table.c.id == collection.id).with_for_update())

    def _overlapping(
        self,
        conn: sa.Connection,
        collection: CollectionRecord,
        type_ids: Iterable[int],
        timespan: Timespan,
    ) -> list[sa.Row[Any]]:
        calib = self._db.tables.dataset_calibration
        stmt = sa.select(calib).where(
            calib.c.collection_id == collection.id,
            calib.c.dataset_type_id.in_(sorted(set(type_ids))),
            calib.c.validity_begin < timespan.end_ns,
            calib.c.validity_end > timespan.begin_ns,
        )
        return list(conn.execute(stmt))

    def certify(
        self,
        conn: sa.Connection,
        collection: CollectionRecord,
        ids: Sequence[uuid.UUID],
        timespan: Timespan,
    ) -> None:
        """Give datasets the validity range ``timespan`` in a CALIBRATION collection.

        Raises
        ------
        CalibrationConflictError
            If a dataset of the same type and data ID already has an overlapping range.
        """
        refs = self._datasets.require(conn, ids)
        for ref in refs.values():
            if not ref.dataset_type.is_calibration:
                raise DatasetTypeError(
                    f"Dataset type {ref.dataset_type.name!r} is not a calibration type; register "
                    "it with is_calibration=True to certify its datasets."
                )
        self._lock(conn, collection)
        dataset = self._db.tables.dataset
        dims = self._db.tables.dimension_columns
        rows: list[dict[str, Any]] = []
        for chunk in chunked(list(refs)):
            for row in conn.execute(sa.select(dataset).where(dataset.c.id.in_(chunk))):
                values = {d: row._mapping[d] for d in dims}
                rows.append(
                    {
                        "collection_id": collection.id,
                        "dataset_id": row.id,
                        "dataset_type_id": row.dataset_type_id,
                        **values,
                        "validity_begin": timespan.begin_ns,
                        "validity_end": timespan.end_ns,
                    }
                )
        self._check_overlaps(conn, collection, rows, refs, timespan)
        conn.execute(sa.insert(self._db.tables.dataset_calibration), rows)
        logger.debug("Certified %d dataset(s) in %s for %s.", len(rows), collection.name, timespan)

    def _check_overlaps(
        self,
        conn: sa.Connection,
        collection: CollectionRecord,
        rows: list[dict[str, Any]],
        refs: Mapping[uuid.UUID, DatasetRef],
        timespan: Timespan,
    ) -> None:
        dims = self._db.tables.dimension_columns
        seen: dict[tuple[Any, ...], uuid.UUID] = {}
        for row in rows:
            key = (row["dataset_type_id"], *(row[d] for d in dims))
            if key in seen:
                ref = refs[row["dataset_id"]]
                raise CalibrationConflictError(
                    f"Two datasets of type {ref.dataset_type.name!r} with data ID {ref.data_id} "
                    f"({seen[key]} and {row['dataset_id']}) would both be valid for {timespan} "
                    f"in {collection.name!r}. Nothing was certified."
                )
            seen[key] = row["dataset_id"]
        for old in self._overlapping(conn, collection, {k[0] for k in seen}, timespan):
            key = (old.dataset_type_id, *(old._mapping[d] for d in dims))
            if key in seen:
                ref = refs[seen[key]]
                existing = Timespan.from_ns(old.validity_begin, old.validity_end)
                raise CalibrationConflictError(
                    f"Cannot certify {ref.dataset_type.name} {ref.data_id} (id {ref.id}) for "
                    f"{timespan} in {collection.name!r}: dataset {old.dataset_id} is already valid "
                    f"for {existing}, which overlaps. Decertify that range first. Nothing was "
                    "certified."
                )

    def decertify(
        self,
        conn: sa.Connection,
        collection: CollectionRecord,
        type_id: int,
        dataset_type: DatasetType,
        timespan: Timespan,
        data_ids: Sequence[DataId] | None,
    ) -> int:
        """Remove ``timespan`` from matching validity ranges, truncating or splitting them.

        Returns the number of validity ranges changed or removed.
        """
        self._lock(conn, collection)
        calib = self._db.tables.dataset_calibration
        dims = dataset_type.dimensions
        wanted = None if data_ids is None else {tuple(d[k] for k in dims) for d in data_ids}
        changed = 0
        for old in self._overlapping(conn, collection, [type_id], timespan):
            if wanted is not None and tuple(old._mapping[d] for d in dims) not in wanted:
                continue
            changed += 1
            conn.execute(sa.delete(calib).where(calib.c.id == old.id))
            keep = {k: v for k, v in old._mapping.items() if k != "id"}
            pieces = []
            if old.validity_begin < timespan.begin_ns:
                pieces.append({**keep, "validity_end": timespan.begin_ns})
            if old.validity_end > timespan.end_ns:
                pieces.append({**keep, "validity_begin": timespan.end_ns})
            if pieces:
                conn.execute(sa.insert(calib), pieces)
        return changed
