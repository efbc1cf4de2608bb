# SPDX-License-Identifier: BSD-3-Clause
"""Dataset types: registration, lookup (including components) and removal."""

from __future__ import annotations

import difflib
import fnmatch
import logging
import re

import sqlalchemy as sa

from ..dimensions import DimensionUniverse
from ..errors import (
    DataIdError,
    DatasetTypeConflictError,
    DatasetTypeError,
    MissingDatasetTypeError,
)
from ..types import DatasetType
from ._database import Database

__all__ = ["DatasetTypeStore"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DatasetTypeStore:
    """Reads and writes the ``dataset_type`` table; definitions are cached (they never change)."""

    def __init__(self, db: Database, universe: DimensionUniverse) -> None:
        self._db = db
        self.universe = universe
        self._by_name: dict[str, tuple[int, DatasetType]] = {}
        self._by_id: dict[int, DatasetType] = {}
        db.on_rollback(self.clear_cache)

    def clear_cache(self) -> None:
        """Forget every cached definition."""
        self._by_name.clear()
        self._by_id.clear()

    def standardize(self, dataset_type: DatasetType) -> DatasetType:
        """Check the name and sort the dimensions in universe order.

        Raises
        ------
        DatasetTypeError
            For an invalid name, a component name or an unknown dimension.
        """
        if dataset_type.component is not None:
            raise DatasetTypeError(
                f"Cannot register component dataset type {dataset_type.name!r}; register its "
                f"parent {dataset_type.parent_name!r} (components resolve automatically)."
            )
        if not _NAME.match(dataset_type.name):
            raise DatasetTypeError(
                f"Invalid dataset type name {dataset_type.name!r}: use letters, digits and '_'."
            )
        try:
            dimensions = self.universe.sorted(dataset_type.dimensions)
        except DataIdError as err:
            raise DatasetTypeError(f"Dataset type {dataset_type.name!r}: {err}") from err
        return DatasetType(
            name=dataset_type.name,
            dimensions=dimensions,
            storage_class=dataset_type.storage_class,
            is_calibration=dataset_type.is_calibration,
        )

    def _row_to_type(self, row: sa.Row[tuple[int, str, str, str, bool]]) -> tuple[int, DatasetType]:
        dataset_type = DatasetType(
            name=row.name,
            dimensions=tuple(d for d in row.dimensions.split(",") if d),
            storage_class=row.storage_class,
            is_calibration=bool(row.is_calibration),
        )
        self._by_name[row.name] = (row.id, dataset_type)
        self._by_id[row.id] = dataset_type
        return row.id, dataset_type

    def _fetch(self, conn: sa.Connection, name: str) -> tuple[int, DatasetType] | None:
        cached = self._by_name.get(name)
        if cached is not None:
            return cached
        table = self._db.tables.dataset_type
        row = conn.execute(sa.select(table).where(table.c.name == name)).first()
        return None if row is None else self._row_to_type(row)

    def register(self, conn: sa.Connection, dataset_type: DatasetType) -> bool:
        """Register a definition; return whether it was new.

        Raises
        ------
        DatasetTypeConflictError
            If the name exists with a different definition.
        """
        wanted = self.standardize(dataset_type)
        table = self._db.tables.dataset_type
        existing = self._fetch(conn, wanted.name)
        if existing is None:
            inserted = conn.execute(
                self._db.insert_ignore(table, index_elements=["name"])
                .values(
                    name=wanted.name,
                    dimensions=",".join(wanted.dimensions),
                    storage_class=wanted.storage_class,
                    is_calibration=wanted.is_calibration,
                )
                .returning(table.c.id)
            ).first()
            current = self._fetch(conn, wanted.name)
            assert current is not None
            if inserted is not None:
                logger.debug("Registered dataset type %s.", wanted.name)
                return True
            existing = current
        if existing[1] != wanted:
            raise DatasetTypeConflictError(
                f"Dataset type {wanted.name!r} is already registered as {existing[1]}, which "
                f"differs from {wanted}. Use another name, or remove the existing type first."
            )
        return False

    def get(self, conn: sa.Connection, name: str) -> tuple[int, DatasetType]:
        """The id and definition of the parent of ``name``; components keep the parent's id.

        Raises
        ------
        MissingDatasetTypeError
            Listing the registered dataset types.
        """
        parent, _, component = name.partition(".")
        found = self._fetch(conn, parent)
        if found is None:
            known = self.names(conn)
            close = difflib.get_close_matches(parent, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise MissingDatasetTypeError(
                f"Dataset type {name!r} is not registered.{hint} Registered types: "
                f"{', '.join(known) or '(none)'}; register it with `spherex-dask "
                "register-dataset-type` (Registry.register_dataset_type)."
            )
        if component:
            return found[0], found[1].component_type(component)
        return found

    def resolve(
        self, conn: sa.Connection, dataset_type: str | DatasetType
    ) -> tuple[int, DatasetType]:
        """Look up a name or check a definition against the registered one."""
        if isinstance(dataset_type, str):
            return self.get(conn, dataset_type)
        type_id, registered = self.get(conn, dataset_type.name)
        parent = registered.parent_type()
        if self.standardize(dataset_type.parent_type()) != parent:
            raise DatasetTypeConflictError(
                f"Dataset type {dataset_type} does not match the registered definition {parent}."
            )
        return type_id, registered

    def by_id(self, conn: sa.Connection, type_id: int) -> DatasetType:
        """The definition with database id ``type_id``."""
        cached = self._by_id.get(type_id)
        if cached is None:
            table = self._db.tables.dataset_type
            row = conn.execute(sa.select(table).where(table.c.id == type_id)).one()
            cached = self._row_to_type(row)[1]
        return cached

    def names(self, conn: sa.Connection) -> list[str]:
        """All registered names, sorted."""
        table = self._db.tables.dataset_type
        return list(conn.scalars(sa.select(table.c.name).order_by(table.c.name)))

    def query(self, conn: sa.Connection, pattern: str) -> list[DatasetType]:
        """Registered types whose names match the glob ``pattern``, sorted by name."""
        table = self._db.tables.dataset_type
        rows = conn.execute(sa.select(table).order_by(table.c.name)).all()
        return [self._row_to_type(r)[1] for r in rows if fnmatch.fnmatchcase(r.name, pattern)]

    def remove(self, conn: sa.Connection, name: str) -> None:
        """Delete a dataset type that has no datasets.

        Raises
        ------
        DatasetTypeError
            If datasets of this type exist.
        """
        type_id, _ = self.get(conn, name)
        dataset = self._db.tables.dataset
        count = conn.scalar(
            sa.select(sa.func.count())
            .select_from(dataset)
            .where(dataset.c.dataset_type_id == type_id)
        )
        if count:
            raise DatasetTypeError(
                f"Cannot remove dataset type {name!r}: {count} dataset(s) of it exist; remove "
                "them first (`spherex-dask prune-datasets` or `remove-runs`; Butler.prune_datasets or "
                "Butler.remove_runs)."
            )
        conn.execute(
            sa.delete(self._db.tables.dataset_type).where(
                self._db.tables.dataset_type.c.id == type_id
            )
        )
        self.clear_cache()
