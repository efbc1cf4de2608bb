# SPDX-License-Identifier: BSD-3-Clause
"""Prerequisite (calibration) lookups for many quanta at once.

A prerequisite is found by the dataset type's data ID (taken from the quantum's data ID) and,
in CALIBRATION collections, by the timespan of the quantum's most specific temporal dimension
(the exposure).  Lookups are made for all the quanta of a task together: through the
registry's batched ``find_datasets`` when it has one, else one ``find_dataset`` per distinct
(data ID, timespan).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..types import DatasetRef, Timespan

if TYPE_CHECKING:
    from ..registry import Registry
    from ._connections import ResolvedConnection
    from ._records import RecordCache

__all__ = ["PrerequisiteFinder"]

logger = logging.getLogger(__name__)

Lookup = tuple[tuple[Any, ...], Timespan | None]


class PrerequisiteFinder:
    """Resolve and cache prerequisite refs.

    Parameters
    ----------
    registry
        The registry to search.
    records
        Dimension records giving the timespans of temporal dimensions.
    collections
        The search path.
    """

    def __init__(
        self, registry: Registry, records: RecordCache, collections: Sequence[str]
    ) -> None:
        self.registry = registry
        self.records = records
        self.collections = list(collections)
        self._found: dict[str, dict[Lookup, DatasetRef | None]] = {}

    def lookup(self, conn: ResolvedConnection, data_id: Mapping[str, Any]) -> Lookup:
        """The (data ID key, timespan) a quantum's prerequisite is found by."""
        key = tuple(data_id[d] for d in conn.dimensions)
        return key, self.records.timespan(data_id)

    def prefetch(self, conn: ResolvedConnection, data_ids: Iterable[Mapping[str, Any]]) -> None:
        """Resolve the prerequisite of every data ID in as few registry calls as possible."""
        found = self._found.setdefault(conn.name, {})
        wanted = list(dict.fromkeys(self.lookup(conn, d) for d in data_ids))
        wanted = [w for w in wanted if w not in found]
        if not wanted:
            return
        batch = getattr(self.registry, "find_datasets", None)
        if batch is not None:
            refs = batch(
                conn.name,
                [dict(zip(conn.dimensions, key, strict=True)) for key, _ in wanted],
                collections=self.collections,
                timespans=[timespan for _, timespan in wanted],
            )
        else:
            refs = [self._find_one(conn, key, timespan) for key, timespan in wanted]
        found.update(zip(wanted, refs, strict=True))
        logger.debug("Looked up %d %s prerequisites.", len(wanted), conn.name)

    def _find_one(
        self, conn: ResolvedConnection, key: tuple[Any, ...], timespan: Timespan | None
    ) -> DatasetRef | None:
        return self.registry.find_dataset(
            conn.name,
            dict(zip(conn.dimensions, key, strict=True)),
            collections=self.collections,
            timespan=timespan,
        )

    def find(
        self, conn: ResolvedConnection, data_id: Mapping[str, Any]
    ) -> tuple[DatasetRef | None, Lookup]:
        """The prerequisite ref of one quantum (``None`` if there is none) and its lookup."""
        lookup = self.lookup(conn, data_id)
        found = self._found.setdefault(conn.name, {})
        if lookup not in found:
            found[lookup] = self._find_one(conn, *lookup)
        return found[lookup], lookup
