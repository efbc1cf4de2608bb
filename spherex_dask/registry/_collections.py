# SPDX-License-Identifier: BSD-3-Clause
"""Collections: RUN, TAGGED, CHAINED and CALIBRATION; chains, flattening and glob queries."""

from __future__ import annotations

import difflib
import fnmatch
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import (
    CollectionCycleError,
    CollectionError,
    CollectionTypeError,
    MissingCollectionError,
)
from ..types import CollectionType
from ._database import Database

__all__ = ["CollectionRecord", "CollectionStore", "is_pattern"]

logger = logging.getLogger(__name__)

_GLOB_CHARS = set("*?[")


def is_pattern(name: str) -> bool:
    """Whether ``name`` is a glob pattern rather than a collection name."""
    return bool(_GLOB_CHARS & set(name))


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    """One row of the ``collection`` table."""

    id: int
    name: str
    type: CollectionType
    doc: str


class CollectionStore:
    """Reads and writes the ``collection`` and ``collection_chain`` tables.

    Collection ids and types never change, so records are cached by name and id; chains are
    always read from the database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_name: dict[str, CollectionRecord] = {}
        self._by_id: dict[int, CollectionRecord] = {}
        db.on_rollback(self.clear_cache)

    def clear_cache(self) -> None:
        """Forget every cached record."""
        self._by_name.clear()
        self._by_id.clear()

    def _cache(self, row: sa.Row[tuple[int, str, str, str]]) -> CollectionRecord:
        record = CollectionRecord(row.id, row.name, CollectionType(row.type), row.doc)
        self._by_name[record.name] = record
        self._by_id[record.id] = record
        return record

    # -- lookup --------------------------------------------------------------------------
    def find(self, conn: sa.Connection, name: str) -> CollectionRecord | None:
        """The record called ``name``, or ``None``."""
        record = self._by_name.get(name)
        if record is None:
            table = self._db.tables.collection
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
            record = None if row is None else self._cache(row)
        return record

    def get(
        self, conn: sa.Connection, name: str, *, expected: CollectionType | None = None
    ) -> CollectionRecord:
        """The record called ``name``.

        Raises
        ------
        MissingCollectionError
            Listing similar names.
        CollectionTypeError
            If ``expected`` is given and the collection has another type.
        """
        record = self.find(conn, name)
        if record is None:
            names = self.names(conn)
            close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
            hint = f" Similar collections: {', '.join(close)}." if close else ""
            raise MissingCollectionError(
                f"Collection {name!r} does not exist.{hint} List the collections with "
                "`spherex-dask query-collections REPO` (Registry.query_collections); a new one "
                "is made by Registry.register_run or register_collection."
            )
        if expected is not None and record.type is not expected:
            raise CollectionTypeError(
                f"Collection {name!r} is {record.type.value}; this operation needs a "
                f"{expected.value} collection."
            )
        return record

    def by_id(self, conn: sa.Connection, collection_id: int) -> CollectionRecord:
        """The record with database id ``collection_id``."""
        record = self._by_id.get(collection_id)
        if record is None:
            table = self._db.tables.collection
            record = self._cache(
                conn.execute(sa.select(table).where(table.c.id == collection_id)).one()
            )
        return record

    def names(self, conn: sa.Connection) -> list[str]:
        """All collection names, sorted."""
        table = self._db.tables.collection
        return list(conn.scalars(sa.select(table.c.name).order_by(table.c.name)))

    # -- registration --------------------------------------------------------------------
    def register(
        self, conn: sa.Connection, name: str, collection_type: CollectionType, doc: str
    ) -> bool:
        """Create a collection; return whether it was new.

        Raises
        ------
        CollectionTypeError
            If it exists with another type.
        """
        collection_type = CollectionType(collection_type)
        if not name or is_pattern(name) or name != name.strip():
            raise CollectionError(
                f"Invalid collection name {name!r}: names must be non-empty, without surrounding "
                "spaces and without glob characters (*?[)."
            )
        table = self._db.tables.collection
        inserted = conn.execute(
            self._db.insert_ignore(table, index_elements=["name"])
            .values(name=name, type=collection_type.value, doc=doc)
            .returning(table.c.id)
        ).first()
        record = self.get(conn, name)
        if record.type is not collection_type:
            raise CollectionTypeError(
                f"Collection {name!r} already exists as {record.type.value}, not "
                f"{collection_type.value}; choose another name."
            )
        created = inserted is not None
        if created:
            logger.debug("Registered %s collection %s.", collection_type.value, name)
        return created

    # -- chains --------------------------------------------------------------------------
    def children(self, conn: sa.Connection, parent: CollectionRecord) -> list[CollectionRecord]:
        """The direct children of a CHAINED collection, in order."""
        chain = self._db.tables.collection_chain
        ids = conn.scalars(
            sa.select(chain.c.child_id)
            .where(chain.c.parent_id == parent.id)
            .order_by(chain.c.position)
        )
        return [self.by_id(conn, i) for i in ids]

    def _leaves(
        self,
        conn: sa.Connection,
        record: CollectionRecord,
        seen: set[int],
        out: dict[int, CollectionRecord],
    ) -> None:
        if record.type is not CollectionType.CHAINED:
            out.setdefault(record.id, record)
            return
        if record.id in seen:
            return
        seen.add(record.id)
        for child in self.children(conn, record):
            self._leaves(conn, child, seen, out)

    def expand(self, conn: sa.Connection, names: str | Iterable[str]) -> list[CollectionRecord]:
        """Resolve names (and glob patterns, matched in name order) to records, keeping order."""
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise CollectionError("No collections given; pass at least one collection name.")
        records: list[CollectionRecord] = []
        for name in names:
            if is_pattern(name):
                records += [
                    self.get(conn, n) for n in self.names(conn) if fnmatch.fnmatchcase(n, name)
                ]
            else:
                records.append(self.get(conn, name))
        return records

    def flatten(self, conn: sa.Connection, names: str | Iterable[str]) -> list[CollectionRecord]:
        """The search path: chains expanded recursively, non-chain collections deduplicated."""
        out: dict[int, CollectionRecord] = {}
        seen: set[int] = set()
        for record in self.expand(conn, names):
            self._leaves(conn, record, seen, out)
        return list(out.values())

    def _contains(self, conn: sa.Connection, record: CollectionRecord, target_id: int) -> bool:
        if record.id == target_id:
            return True
        if record.type is not CollectionType.CHAINED:
            return False
        return any(self._contains(conn, c, target_id) for c in self.children(conn, record))

    def set_chain(
        self, conn: sa.Connection, parent: str, children: Sequence[str], *, flatten: bool
    ) -> None:
        """Replace the children of a CHAINED collection.

        Raises
        ------
        CollectionCycleError
            If the parent would (indirectly) contain itself.
        """
        if isinstance(children, str):
            children = [children]
        record = self.get(conn, parent, expected=CollectionType.CHAINED)
        table = self._db.tables.collection
        conn.execute(sa.select(table.c.id).where(table.c.id == record.id).with_for_update())
        child_records = [self.get(conn, c) for c in children]
        for child in child_records:
            if self._contains(conn, child, record.id):
                raise CollectionCycleError(
                    f"Cannot put {child.name!r} in chain {parent!r}: {child.name!r} is or contains "
                    f"{parent!r}, which would make a cycle."
                )
        if flatten:
            child_records = self.flatten(conn, [c.name for c in child_records])
        unique = list({c.id: c for c in child_records}.values())
        chain = self._db.tables.collection_chain
        conn.execute(sa.delete(chain).where(chain.c.parent_id == record.id))
        if unique:
            conn.execute(
                sa.insert(chain),
                [
                    {"parent_id": record.id, "position": i, "child_id": c.id}
                    for i, c in enumerate(unique)
                ],
            )

    def parents(self, conn: sa.Connection, record: CollectionRecord) -> list[str]:
        """Names of the chains that list ``record`` directly."""
        chain = self._db.tables.collection_chain
        ids = conn.scalars(sa.select(chain.c.parent_id).where(chain.c.child_id == record.id))
        return sorted(self.by_id(conn, i).name for i in set(ids))

    # -- queries and removal -------------------------------------------------------------
    def query(
        self,
        conn: sa.Connection,
        pattern: str | Iterable[str],
        *,
        collection_types: Iterable[CollectionType] | None,
        flatten_chains: bool,
        include_chains: bool,
    ) -> list[str]:
        """Names matching ``pattern`` (sorted), with chains optionally expanded in order."""
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        types = (
            set(CollectionType)
            if collection_types is None
            else {CollectionType(t) for t in collection_types}
        )
        matched = [n for n in self.names(conn) if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        out: dict[str, None] = {}
        for name in matched:
            self._collect(conn, self.get(conn, name), out, flatten_chains, set())
        return [
            n
            for n in out
            if self.get(conn, n).type in types
            and (include_chains or self.get(conn, n).type is not CollectionType.CHAINED)
        ]

    def _collect(
        self,
        conn: sa.Connection,
        record: CollectionRecord,
        out: dict[str, None],
        flatten: bool,
        seen: set[int],
    ) -> None:
        out.setdefault(record.name, None)
        if flatten and record.type is CollectionType.CHAINED and record.id not in seen:
            seen.add(record.id)
            for child in self.children(conn, record):
                self._collect(conn, child, out, flatten, seen)

    def check_unreferenced(self, conn: sa.Connection, record: CollectionRecord) -> None:
        """Raise if a chain lists ``record``."""
        parents = self.parents(conn, record)
        if parents:
            raise CollectionError(
                f"Collection {record.name!r} is a child of chain(s) {', '.join(parents)}; take "
                "it out of them first (`spherex-dask collection-chain REPO CHAIN "
                f"{record.name} --mode remove`, or Registry.set_collection_chain)."
            )

    def delete(self, conn: sa.Connection, record: CollectionRecord) -> None:
        """Delete the collection row (and its chain links)."""
        chain = self._db.tables.collection_chain
        conn.execute(sa.delete(chain).where(chain.c.parent_id == record.id))
        table = self._db.tables.collection
        conn.execute(sa.delete(table).where(table.c.id == record.id))
        self._by_name.pop(record.name, None)
        self._by_id.pop(record.id, None)
