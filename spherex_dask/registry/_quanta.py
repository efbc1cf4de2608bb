# SPDX-License-Identifier: BSD-3-Clause
"""Provenance of executed quanta: what ran, on which data ID, where, when, and how it ended."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..dimensions import DimensionUniverse
from ..errors import QueryError
from ..types import (
    QUANTUM_STATUSES,
    CollectionType,
    DataId,
    QuantumRecord,
    datetime_to_ns,
    ns_to_datetime,
)
from ._collections import CollectionStore
from ._database import Database
from ._datasets import chunked
from ._resolver import DimensionResolver
from ._schema import sentinel_for

__all__ = ["QuantumStore"]

logger = logging.getLogger(__name__)


class QuantumStore:
    """Reads and writes the ``quantum`` and ``quantum_dataset`` tables."""

    def __init__(
        self,
        db: Database,
        universe: DimensionUniverse,
        collections: CollectionStore,
        make_resolver: Callable[[Mapping[str, sa.ColumnElement[Any]]], DimensionResolver],
    ) -> None:
        self._db = db
        self.universe = universe
        self._collections = collections
        self._make_resolver = make_resolver
        self._sentinels = {d: sentinel_for(universe[d].key) for d in db.tables.dimension_columns}

    def _row(self, conn: sa.Connection, record: QuantumRecord) -> dict[str, Any]:
        run = self._collections.get(conn, record.run, expected=CollectionType.RUN)
        data_id = self.universe.standardize_data_id(record.data_id)
        dims = self.universe.sorted(data_id) + self.universe.implied(data_id)
        return {
            "id": record.id,
            "run_id": run.id,
            "task_label": record.task_label,
            "status": record.status,
            "dimensions": ",".join(d for d in dims if d in data_id),
            **self._sentinels,
            **data_id.to_dict(),
            "start_ns": None if record.start is None else datetime_to_ns(record.start),
            "end_ns": None if record.end is None else datetime_to_ns(record.end),
            "worker": record.worker,
            "error": record.error,
        }

    def insert(self, conn: sa.Connection, records: Sequence[QuantumRecord]) -> None:
        """Insert quantum records, replacing earlier records with the same ids (re-runs)."""
        if not records:
            return
        tables = self._db.tables
        unique = {r.id: r for r in records}
        for chunk in chunked(list(unique)):
            links = tables.quantum_dataset
            conn.execute(sa.delete(links).where(links.c.quantum_id.in_(chunk)))
            conn.execute(sa.delete(tables.quantum).where(tables.quantum.c.id.in_(chunk)))
        rows = [self._row(conn, r) for r in unique.values()]
        links_rows = [
            {"quantum_id": r.id, "role": role, "position": i, "dataset_id": dataset_id}
            for r in unique.values()
            for role, ids in (("input", r.inputs), ("output", r.outputs))
            for i, dataset_id in enumerate(ids)
        ]
        conn.execute(sa.insert(tables.quantum), rows)
        if links_rows:
            conn.execute(sa.insert(tables.quantum_dataset), links_rows)
        logger.debug("Recorded %d quanta.", len(rows))

    def select(
        self,
        conn: sa.Connection,
        *,
        collections: str | Sequence[str] | None,
        run: str | None,
        task_label: str | None,
        status: str | None,
        data_id: Mapping[str, Any] | None,
    ) -> sa.Select[Any]:
        """The query for quanta matching every given filter."""
        quantum = self._db.tables.quantum
        conditions: list[sa.ColumnElement[bool]] = []
        if collections is not None:
            runs = [
                r.id
                for r in self._collections.flatten(conn, collections)
                if r.type is CollectionType.RUN
            ]
            conditions.append(quantum.c.run_id.in_(runs))
        if run is not None:  # a filter: a run that no longer exists simply has no quanta
            record = self._collections.find(conn, run)
            conditions.append(quantum.c.run_id == (record.id if record else -1))
        if task_label is not None:
            conditions.append(quantum.c.task_label == task_label)
        if status is not None:
            if status not in QUANTUM_STATUSES:
                raise QueryError(
                    f"Unknown quantum status {status!r}; use one of {', '.join(QUANTUM_STATUSES)}."
                )
            conditions.append(quantum.c.status == status)
        resolver = self._make_resolver({d: quantum.c[d] for d in self._sentinels})
        conditions += resolver.where("", None, data_id)
        return (
            sa.select(quantum)
            .select_from(resolver.apply_joins(quantum))
            .where(*conditions)
            .order_by(quantum.c.run_id, quantum.c.task_label, quantum.c.id)
        )

    def stream(self, statement: sa.Select[Any]) -> Iterator[QuantumRecord]:
        """Stream the records of ``statement``, fetching their dataset links in batches."""
        links = self._db.tables.quantum_dataset
        with self._db.read(streaming=True) as conn:
            result = conn.execute(statement.execution_options(yield_per=500))
            try:
                for rows in result.partitions():
                    ids = [row.id for row in rows]
                    found: dict[Any, dict[str, list[Any]]] = {}
                    stmt = (
                        sa.select(links)
                        .where(links.c.quantum_id.in_(ids))
                        .order_by(links.c.quantum_id, links.c.role, links.c.position)
                    )
                    for link in conn.execute(stmt):
                        roles = found.setdefault(link.quantum_id, {"input": [], "output": []})
                        roles[link.role].append(link.dataset_id)
                    for row in rows:
                        yield self._record(conn, row, found.get(row.id, {}))
            finally:
                result.close()

    def _record(
        self, conn: sa.Connection, row: Any, links: Mapping[str, list[Any]]
    ) -> QuantumRecord:
        mapping = row._mapping
        dims = [d for d in row.dimensions.split(",") if d]
        return QuantumRecord(
            id=row.id,
            run=self._collections.by_id(conn, row.run_id).name,
            task_label=row.task_label,
            data_id=DataId({d: mapping[d] for d in dims}),
            status=row.status,
            start=None if row.start_ns is None else ns_to_datetime(row.start_ns),
            end=None if row.end_ns is None else ns_to_datetime(row.end_ns),
            worker=row.worker,
            error=row.error,
            inputs=tuple(links.get("input", ())),
            outputs=tuple(links.get("output", ())),
        )

    def delete_run(self, conn: sa.Connection, run_id: int) -> None:
        """Delete the quanta of a run (with their dataset links)."""
        quantum, links = self._db.tables.quantum, self._db.tables.quantum_dataset
        in_run = sa.select(quantum.c.id).where(quantum.c.run_id == run_id)
        conn.execute(sa.delete(links).where(links.c.quantum_id.in_(in_run)))
        conn.execute(sa.delete(quantum).where(quantum.c.run_id == run_id))
