# SPDX-License-Identifier: BSD-3-Clause
"""Opaque datastore records: where a dataset's bytes live. The registry never interprets them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from ..errors import DatasetConflictError
from ..types import DatasetLocation
from ._database import Database
from ._datasets import DatasetStore, chunked

__all__ = ["LocationStore"]

logger = logging.getLogger(__name__)


class LocationStore:
    """Reads and writes the ``dataset_location`` table."""

    def __init__(self, db: Database, datasets: DatasetStore) -> None:
        self._db = db
        self._datasets = datasets
        table = db.tables.dataset_location
        # Built once: ``get`` of one dataset is on every ``Butler.get``, and building the
        # statement cost as much as running it.
        self._select_by_ids = (
            sa.select(table)
            .where(table.c.dataset_id.in_(sa.bindparam("ids", expanding=True)))
            .order_by(table.c.dataset_id, table.c.component)
        )

    @staticmethod
    def _row(location: DatasetLocation) -> dict[str, object]:
        return {
            "dataset_id": location.dataset_id,
            "component": location.component or "",
            "path": location.path,
            "formatter": location.formatter,
            "size": location.size,
            "checksum": location.checksum,
        }

    @staticmethod
    def _location(row: sa.Row[tuple[object, ...]]) -> DatasetLocation:
        return DatasetLocation(
            dataset_id=row.dataset_id,
            path=row.path,
            formatter=row.formatter,
            size=row.size,
            checksum=row.checksum,
            component=row.component or None,
        )

    def insert(self, conn: sa.Connection, locations: Sequence[DatasetLocation]) -> None:
        """Insert location records; identical existing ones are skipped.

        Raises
        ------
        DatasetNotFoundError
            If a dataset id is not registered.
        DatasetConflictError
            If a different record exists for the same dataset and component.
        """
        if not locations:
            return
        self._datasets.require(conn, {loc.dataset_id for loc in locations})
        existing = self.get(conn, list({loc.dataset_id for loc in locations}))
        by_key = {
            (loc.dataset_id, loc.component): loc for locs in existing.values() for loc in locs
        }
        new: dict[tuple[uuid.UUID, str | None], DatasetLocation] = {}
        for loc in locations:
            old = by_key.get((loc.dataset_id, loc.component)) or new.get(
                (loc.dataset_id, loc.component)
            )
            if old is not None and old != loc:
                raise DatasetConflictError(
                    f"Dataset {loc.dataset_id} (component {loc.component}) already has location "
                    f"{old.path!r} ({old.formatter}); remove it with remove_locations before "
                    f"recording {loc.path!r}."
                )
            if old is None:
                new[(loc.dataset_id, loc.component)] = loc
        if new:
            conn.execute(
                sa.insert(self._db.tables.dataset_location),
                [self._row(loc) for loc in new.values()],
            )

    def get(
        self, conn: sa.Connection, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[DatasetLocation]]:
        """Location records by dataset id; every requested id is a key."""
        out: dict[uuid.UUID, list[DatasetLocation]] = {i: [] for i in ids}
        for chunk in chunked(list(out)):
            for row in conn.execute(self._select_by_ids, {"ids": chunk}):
                out[row.dataset_id].append(self._location(row))
        return out

    def remove(self, conn: sa.Connection, ids: Sequence[uuid.UUID]) -> None:
        """Delete the location records of these datasets."""
        table = self._db.tables.dataset_location
        for chunk in chunked(list(set(ids))):
            conn.execute(sa.delete(table).where(table.c.dataset_id.in_(chunk)))
